/** Shared by ASR engines: which parts of a WAV to decode, as sample ranges. */
import type { Span } from "../contracts/index.ts";
import { frameEnergies, FRAME_SECONDS } from "../audio/envelope.ts";
import { cutLongSpan } from "../audio/planner.ts";
import type { Pcm } from "../audio/wav.ts";

export const MAX_SEGMENT_SECONDS = 25;

/** The given spans (file-local seconds), or the whole file; each cut to ≤ 25 s at quiet points. */
export function segmentsToDecode(pcm: Pcm, spans: readonly Span[] | undefined): Span[] {
  const duration = pcm.samples.length / pcm.sampleRate;
  const env = frameEnergies(pcm.samples, pcm.sampleRate, FRAME_SECONDS);
  const energyAt = (g: number): number => env[g] ?? -100;
  const base = spans ?? (duration > 0 ? [{ start: 0, end: duration }] : []);
  const out: Span[] = [];
  for (const s of base) {
    const clipped = { start: Math.max(0, s.start), end: Math.min(duration, s.end) };
    if (clipped.end - clipped.start < 0.05) continue;
    out.push(...cutLongSpan(clipped, MAX_SEGMENT_SECONDS, energyAt, FRAME_SECONDS));
  }
  return out;
}
