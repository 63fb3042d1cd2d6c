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
import { meanDb } from "./envelope.ts";

export interface BleedTrack {
  track_index: number;
  offset_seconds: number;
  frame_seconds: number;
  envelope: Float32Array;
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
  const slack = word.timing === "interpolated" ? INTERPOLATED_TIME_SLACK_SECONDS : 0;
  const from = Math.max(0, word.start - slack);
  const to = word.end + slack;
  const level = (t: BleedTrack): number => meanDb(t.envelope, (from - t.offset_seconds) / t.frame_seconds, (to - t.offset_seconds) / t.frame_seconds);
  const ownDb = level(own);
  let other = -Infinity;
  for (const t of tracks) if (t.track_index !== word.speaker) other = Math.max(other, level(t));
  return other - ownDb;
}

export function suppressBleedWords(
  words: readonly Word[],
  tracks: readonly BleedTrack[],
  thresholdDb: number,
): { kept: Word[]; dropped: Word[] } {
  const kept: Word[] = [];
  const dropped: Word[] = [];
  for (const w of words) (bleedMarginDb(w, tracks) >= thresholdDb ? dropped : kept).push(w);
  return { kept, dropped };
}
