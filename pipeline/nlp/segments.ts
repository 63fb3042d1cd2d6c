/**
 * Pause-delimited segments: the "sentences" of a transcript without punctuation. A new
 * segment starts when the speaker changes, when the gap to the previous word is at least
 * `pauseSeconds`, or when the segment reached `maxWords` (keeps extractive sentences short).
 */
import type { Word } from "../contracts/index.ts";
import { normalizeToken, type LanguageTools } from "./language.ts";

export interface Segment {
  /** position in the transcript's segment list */
  index: number;
  speaker: number;
  start: number;
  end: number;
  words: Word[];
  /** normalized tokens, one per word (may be "" for noise markers) */
  tokens: string[];
  /** stems of the content tokens (stopwords and noise removed) */
  terms: string[];
}

export interface SegmentOptions {
  /** a gap of at least this many seconds between two words splits a segment (default 0.8) */
  pauseSeconds?: number;
  /** longest segment in words (default 40) */
  maxWords?: number;
}

export const DEFAULT_PAUSE_SECONDS = 0.8;
export const DEFAULT_MAX_SEGMENT_WORDS = 40;

/** Words in a stable time order: start, then speaker, then end. */
export function orderWords(words: readonly Word[]): Word[] {
  return [...words].sort((a, b) => a.start - b.start || a.speaker - b.speaker || a.end - b.end);
}

export function segmentWords(words: readonly Word[], lang: LanguageTools, opts: SegmentOptions = {}): Segment[] {
  const pause = opts.pauseSeconds ?? DEFAULT_PAUSE_SECONDS;
  const maxWords = opts.maxWords ?? DEFAULT_MAX_SEGMENT_WORDS;
  const segments: Segment[] = [];
  let current: Word[] = [];
  let lastEnd = -Infinity;
  const flush = (): void => {
    if (current.length === 0) return;
    const tokens = current.map((w) => normalizeToken(w.text));
    const terms = tokens.filter((t) => t.length > 1 && !lang.isStopword(t) && !/^\d+$/.test(t)).map((t) => lang.stem(t));
    segments.push({
      index: segments.length,
      speaker: current[0]!.speaker,
      start: current[0]!.start,
      end: Math.max(...current.map((w) => w.end)),
      words: current,
      tokens,
      terms,
    });
    current = [];
  };
  for (const w of orderWords(words)) {
    const prev = current[current.length - 1];
    if (prev && (prev.speaker !== w.speaker || w.start - lastEnd >= pause || current.length >= maxWords)) flush();
    current.push(w);
    lastEnd = Math.max(current.length === 1 ? w.end : lastEnd, w.end);
  }
  flush();
  return segments;
}

/** A segment as a readable sentence: words joined, first letter upper case, final period. */
export function segmentSentence(seg: Segment): string {
  const text = seg.words
    .map((w) => w.text.replace(/\(\d+\)$/, ""))
    .filter((t) => !/^[<[].*[>\]]$/.test(t))
    .join(" ")
    .replace(/\s+/g, " ")
    .trim();
  if (!text) return "";
  const capital = text.charAt(0).toUpperCase() + text.slice(1);
  return /[.!?…]$/.test(capital) ? capital : `${capital}.`;
}
