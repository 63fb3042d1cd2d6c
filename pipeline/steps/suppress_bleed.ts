/** suppress_bleed: drop words whose voice belongs to another track (see pipeline/audio/bleed.ts). */
import type { SuppressBleedInput, SuppressBleedOutput } from "../contracts/index.ts";
import { suppressBleedWords } from "../audio/bleed.ts";
import type { StepDeps } from "./deps.ts";
import { envelopeSources } from "./envelopes.ts";

export async function suppressBleed(input: SuppressBleedInput, deps: StepDeps): Promise<SuppressBleedOutput> {
  const envelopes = await envelopeSources(deps.storage, input.tracks);
  const { kept, dropped } = await suppressBleedWords(input.words, envelopes, deps.bleedThresholdDb);
  const dropped_by_track: Record<string, number> = {};
  for (const t of input.tracks) dropped_by_track[String(t.track_index)] = 0;
  for (const w of dropped) dropped_by_track[String(w.speaker)] = (dropped_by_track[String(w.speaker)] ?? 0) + 1;
  return { words: kept, dropped: dropped.length, dropped_by_track };
}
