/**
 * Small real multitrack recordings for the BullMQ tests: espeak-ng speech, one track per
 * speaker, staged into storage as a PipelineInput.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import type { PipelineInput } from "../../pipeline/contracts/index.ts";
import type { Storage } from "../../pipeline/ports.ts";

export interface SpokenTrack {
  participant: string;
  text: string;
  offset_seconds: number;
  voice?: string;
}

export const TWO_SPEAKERS: SpokenTrack[] = [
  { participant: "Alice", text: "good morning everyone, let us look at the budget for next year", offset_seconds: 0, voice: "en-us" },
  { participant: "Bob", text: "thank you, the budget looks fine but travel costs are too high", offset_seconds: 4.5, voice: "en" },
];

export const THREE_SPEAKERS: SpokenTrack[] = [
  ...TWO_SPEAKERS,
  { participant: "Carol", text: "I agree, we should cut travel and spend more on training", offset_seconds: 9, voice: "en-us+f3" },
];

/** Synthesize each track with espeak-ng into `dir`, stage it, and return the pipeline input. */
export async function stageSpokenRecording(
  storage: Storage,
  dir: string,
  recordingId: string,
  tracks: SpokenTrack[],
  namespace = "bullmq",
): Promise<PipelineInput> {
  mkdirSync(dir, { recursive: true });
  const specs = [];
  for (const [i, t] of tracks.entries()) {
    const file = path.join(dir, `${recordingId}-${i}.wav`);
    execFileSync("espeak-ng", ["-v", t.voice ?? "en-us", "-s", "150", "-w", file, t.text], { stdio: "ignore" });
    const key = `recordings/${recordingId}/tracks/${i}.wav`;
    await storage.putFile(key, file);
    specs.push({ track_index: i, participant: t.participant, offset_seconds: t.offset_seconds, source_key: key });
  }
  return { recording_id: recordingId, language: "en", namespace, tracks: specs };
}
