/**
 * Word-level mic-bleed rule. In a multitrack meeting each microphone also picks up the
 * other voices, quietly, and a recognizer transcribes that too. A word recognized on track
 * A is bleed when, over the word's own time span, another track is louder than A by at
 * least `thresholdDb`: the voice belongs to that other person.
 *
 * Threshold: 10 dB by default (BLEED_THRESHOLD_DB). Bleed between close-talk or headset
 * microphones is typically 20–30 dB down (our test meeting: 26 dB), while two people
 * really talking over each other are within a few dB of each other on their own mics, so
 * 10 dB drops bleed with a wide margin and keeps genuine overlapping speech.
 */
import { INTERPOLATED_TIME_SLACK_SECONDS, type Word } from "../contracts/index.ts";
import { meanDb, type Frames } from "./envelope.ts";
import { EnvelopeWindow, type EnvelopeSource } from "./envelope-source.ts";

export interface BleedTrack {
  track_index: number;
  offset_seconds: number;
  frame_seconds: number;
  envelope: Frames;
}

/** The frames a word is measured over (its span, widened when interpolated), in seconds. */
function wordWindow(word: Word): { from: number; to: number } {
  const slack = word.timing === "interpolated" ? INTERPOLATED_TIME_SLACK_SECONDS : 0;
  return { from: Math.max(0, word.start - slack), to: word.end + slack };
}

/**
 * dB by which the loudest other track exceeds the word's own track over the word. An
 * interpolated word (timing "interpolated": its time was spread over its segment, not
 * measured) is judged over its span widened by INTERPOLATED_TIME_SLACK_SECONDS on each
 * side, so a time off by a word still covers the voice it belongs to; both tracks are
 * measured over the same window, so the comparison stays fair.
 */
export function bleedMarginDb(word: Word, tracks: readonly BleedTrack[]): number {
  const own = tracks.find((t) => t.track_index === word.speaker);
  if (!own) return -Infinity;
  const { from, to } = wordWindow(word);
  const level = (t: BleedTrack): number => meanDb(t.envelope, (from - t.offset_seconds) / t.frame_seconds, (to - t.offset_seconds) / t.frame_seconds);
  const ownDb = level(own);
  let other = -Infinity;
  for (const t of tracks) if (t.track_index !== word.speaker) other = Math.max(other, level(t));
  return other - ownDb;
}

/**
 * The words split into kept and dropped (each in the order given). The envelopes are read a
 * window at a time: the words are visited in time order, each track's window moved to cover
 * the word before it is measured, so only the frames around the words are in memory.
 */
export async function suppressBleedWords(
  words: readonly Word[],
  tracks: readonly (Omit<BleedTrack, "envelope"> & { envelope: Float32Array | EnvelopeSource })[],
  thresholdDb: number,
  chunkFrames?: number,
): Promise<{ kept: Word[]; dropped: Word[] }> {
  const windowed = tracks.map((t) => ({ ...t, envelope: EnvelopeWindow.of(t.envelope, chunkFrames) }));
  const order = Uint32Array.from(words.keys()).sort((a, b) => words[a]!.start - words[b]!.start || a - b);
  const drop = new Uint8Array(words.length);
  for (const i of order) {
    const w = words[i]!;
    const { from, to } = wordWindow(w);
    for (const t of windowed) await t.envelope.cover((from - t.offset_seconds) / t.frame_seconds, (to - t.offset_seconds) / t.frame_seconds);
    drop[i] = bleedMarginDb(w, windowed) >= thresholdDb ? 1 : 0;
  }
  const kept: Word[] = [];
  const dropped: Word[] = [];
  words.forEach((w, i) => (drop[i] ? dropped : kept).push(w));
  return { kept, dropped };
}
