/**
 * Topic boundaries by lexical cohesion, after Hearst's TextTiling (1997), with
 * pause-delimited segments as the token sequences:
 *
 * 1. For every gap between two segments, compare a block of about `blockTerms` content
 *    terms before the gap with a block after it (cosine of term-count vectors).
 * 2. Smooth the gap scores with a moving average of width 3.
 * 3. Depth of a gap = (highest score reached climbing left) − score + (highest score
 *    reached climbing right) − score: a deep valley means vocabulary changes there.
 * 4. Candidate boundaries are gaps whose depth exceeds mean + `cutoffSd` × standard
 *    deviation of all depths (and `minDepth`); they are accepted deepest first, ties by
 *    position, as long as every resulting topic keeps at least `minTopicWords` words and
 *    `minTopicSeconds` seconds.
 *
 * Everything is arithmetic on the input: the same words always give the same boundaries.
 */
import type { Segment } from "./segments.ts";

export interface TilingOptions {
  /** content terms per comparison block on each side of a gap (default 30) */
  blockTerms?: number;
  /** depth cutoff in standard deviations above the mean depth (default 0.5) */
  cutoffSd?: number;
  /** absolute minimum depth of a boundary (default 0.4) */
  minDepth?: number;
  /** smallest topic, in words (default 60) */
  minTopicWords?: number;
  /** shortest topic, in seconds (default 30) */
  minTopicSeconds?: number;
}

export const TILING_DEFAULTS: Required<TilingOptions> = {
  blockTerms: 30,
  cutoffSd: 0.5,
  minDepth: 0.4,
  minTopicWords: 60,
  minTopicSeconds: 30,
};

export type TermVector = Map<string, number>;

export function countTerms(terms: Iterable<string>, into: TermVector = new Map()): TermVector {
  for (const t of terms) into.set(t, (into.get(t) ?? 0) + 1);
  return into;
}

export function cosine(a: TermVector, b: TermVector): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (const [t, x] of a) {
    na += x * x;
    const y = b.get(t);
    if (y !== undefined) dot += x * y;
  }
  for (const y of b.values()) nb += y * y;
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

/** Lexical cohesion across each gap: scores[g] compares segments ≤ g with segments > g. */
export function gapScores(segments: readonly Segment[], blockTerms: number): number[] {
  const scores: number[] = [];
  for (let g = 0; g < segments.length - 1; g++) {
    const left: TermVector = new Map();
    let n = 0;
    for (let i = g; i >= 0 && n < blockTerms; i--) {
      countTerms(segments[i]!.terms, left);
      n += segments[i]!.terms.length;
    }
    const right: TermVector = new Map();
    n = 0;
    for (let i = g + 1; i < segments.length && n < blockTerms; i++) {
      countTerms(segments[i]!.terms, right);
      n += segments[i]!.terms.length;
    }
    scores.push(cosine(left, right));
  }
  return scores;
}

export function smooth(values: readonly number[]): number[] {
  return values.map((_, i) => {
    const window = values.slice(Math.max(0, i - 1), i + 2);
    return window.reduce((s, v) => s + v, 0) / window.length;
  });
}

export function depthScores(scores: readonly number[]): number[] {
  return scores.map((s, i) => {
    let left = s;
    for (let j = i - 1; j >= 0 && scores[j]! >= left; j--) left = scores[j]!;
    let right = s;
    for (let j = i + 1; j < scores.length && scores[j]! >= right; j++) right = scores[j]!;
    return left - s + (right - s);
  });
}

/**
 * Indexes of the segments that start a new topic (the first topic starts at 0 and is not
 * listed). Empty when the transcript is one topic.
 */
export function topicBoundaries(segments: readonly Segment[], options: TilingOptions = {}): number[] {
  const o = { ...TILING_DEFAULTS, ...options };
  if (segments.length < 2) return [];
  const depths = depthScores(smooth(gapScores(segments, o.blockTerms)));
  const mean = depths.reduce((s, d) => s + d, 0) / depths.length;
  const sd = Math.sqrt(depths.reduce((s, d) => s + (d - mean) ** 2, 0) / depths.length);
  const cutoff = Math.max(o.minDepth, mean + o.cutoffSd * sd);
  // gap g separates segment g from g+1: a boundary at gap g starts a topic at segment g+1
  const candidates = depths
    .map((depth, g) => ({ depth, start: g + 1 }))
    .filter((c) => c.depth > cutoff)
    .sort((a, b) => b.depth - a.depth || a.start - b.start);

  const wordsBefore: number[] = [0];
  for (const s of segments) wordsBefore.push(wordsBefore[wordsBefore.length - 1]! + s.words.length);
  const bigEnough = (from: number, to: number): boolean =>
    wordsBefore[to]! - wordsBefore[from]! >= o.minTopicWords && segments[to - 1]!.end - segments[from]!.start >= o.minTopicSeconds;

  const accepted: number[] = [];
  for (const c of candidates) {
    const prev = Math.max(0, ...accepted.filter((b) => b < c.start));
    const next = Math.min(segments.length, ...accepted.filter((b) => b > c.start));
    if (bigEnough(prev, c.start) && bigEnough(c.start, next)) accepted.push(c.start);
  }
  return accepted.sort((a, b) => a - b);
}
