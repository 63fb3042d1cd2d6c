/** Shared by ASR engines: which parts of a WAV to decode, as sample ranges. */
import type { Span } from "../contracts/index.ts";
import { frameEnergies, FRAME_SECONDS, SILENCE_DB } from "../audio/envelope.ts";
import { cutLongSpan } from "../audio/planner.ts";
import type { Pcm, PcmReader } from "../audio/wav.ts";

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

/** frames read per positioned read while a long span's energies are computed (≈ 40 s of audio) */
const FRAMES_PER_READ = 2000;

/**
 * segmentsToDecode over a file read by position: the same segments, with only the spans'
 * own frames read (and those a chunk at a time), so memory does not grow with the track.
 * A span no longer than a segment needs no cut point and reads nothing.
 */
export async function planSegments(reader: PcmReader, spans: readonly Span[] | undefined): Promise<Span[]> {
  const rate = reader.sampleRate;
  const duration = reader.totalSamples / rate;
  const frame = Math.max(1, Math.round(rate * FRAME_SECONDS));
  const frames = Math.ceil(reader.totalSamples / frame);
  const base = spans ?? (duration > 0 ? [{ start: 0, end: duration }] : []);
  const out: Span[] = [];
  for (const s of base) {
    const clipped = { start: Math.max(0, s.start), end: Math.min(duration, s.end) };
    if (clipped.end - clipped.start < 0.05) continue;
    if (clipped.end - clipped.start <= MAX_SEGMENT_SECONDS) {
      out.push(clipped);
      continue;
    }
    // every frame a cut point may be looked for in: those the span touches, and one more
    const first = Math.max(0, Math.floor(clipped.start / FRAME_SECONDS) - 1);
    const last = Math.min(frames - 1, Math.floor(clipped.end / FRAME_SECONDS) + 1);
    const env = new Float32Array(Math.max(0, last - first + 1));
    for (let f = first; f <= last; f += FRAMES_PER_READ) {
      const upto = Math.min(last + 1, f + FRAMES_PER_READ);
      // starts on a frame boundary, so each frame sums the same samples as over the whole file
      env.set(frameEnergies(await reader.read(f * frame, upto * frame), rate, FRAME_SECONDS), f - first);
    }
    const energyAt = (g: number): number => (g >= first && g <= last ? env[g - first]! : g < 0 || g >= frames ? SILENCE_DB : Number.NaN);
    out.push(...cutLongSpan(clipped, MAX_SEGMENT_SECONDS, energyAt, FRAME_SECONDS));
  }
  return out;
}
