/**
 * The transcript as a person reads it: consecutive words of one speaker form a turn, split
 * at a pause of 2 s or more (the API's text, VTT and SRT use the same rule), and the word
 * under the playhead.
 */
import type { Participant, Word } from "../api/client";

export const TURN_PAUSE_SECONDS = 2;

export interface Turn {
  speaker: number;
  name: string;
  start: number;
  end: number;
  /** index of the first word in the Result's words */
  first: number;
  words: Word[];
}

export function groupTurns(words: readonly Word[], participants: readonly Participant[]): Turn[] {
  const names = new Map(participants.map((p) => [p.speaker, p.name]));
  const turns: Turn[] = [];
  words.forEach((w, i) => {
    const last = turns[turns.length - 1];
    if (last && last.speaker === w.speaker && w.start - last.end < TURN_PAUSE_SECONDS) {
      last.words.push(w);
      last.end = Math.max(last.end, w.end);
    } else {
      turns.push({ speaker: w.speaker, name: names.get(w.speaker) ?? `Speaker ${w.speaker + 1}`, start: w.start, end: w.end, first: i, words: [w] });
    }
  });
  return turns;
}

/**
 * The index of the word being spoken at `t` (its start ≤ t < its end), or -1 in a pause.
 * Words are in time order; overlapping speech picks the latest word that started.
 */
export function activeWordIndex(words: readonly Word[], t: number): number {
  let lo = 0;
  let hi = words.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (words[mid]!.start <= t) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  // the latest started word may have ended while an earlier, longer one still runs
  for (let i = found; i >= 0 && i > found - 8; i--) if (t < words[i]!.end) return i;
  return -1;
}

/** A speaker's colour: distinct hues, readable on light and dark backgrounds. */
export const SPEAKER_COLOURS = ["#2563eb", "#c2410c", "#15803d", "#9333ea", "#be123c", "#0e7490", "#a16207", "#4d7c0f"];
export const speakerColour = (speaker: number): string => SPEAKER_COLOURS[speaker % SPEAKER_COLOURS.length]!;

/** 83.4 → "01:23" (or "1:01:23" past an hour). */
export function clock(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  const mm = String(m).padStart(2, "0");
  const ss = String(r).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** 812 → "812 ms", 4200 → "4.2 s", 95000 → "1 min 35 s". */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}
