/**
 * Extractive summaries: the "sentences" are pause-delimited segments. Each segment is a
 * TF-IDF vector (natural's TfIdf over all segments of the recording as documents); a
 * segment's score within a group (a topic, or the whole meeting) is its cosine similarity
 * to the group's centroid, damped for very short segments (× min(1, content terms / 6))
 * so that "yes okay" never wins. The best segments are returned in time order.
 */
import { TfIdf } from "natural/lib/natural/tfidf/index.js";
import { segmentSentence, type Segment } from "./segments.ts";
import { cosine, type TermVector } from "./tiling.ts";

export interface SentenceScorer {
  /** indexes (into the segments given to the scorer) of the best `k` segments of `group`, in time order */
  best(group: readonly number[], k: number, maxWords: number): number[];
  sentence(i: number): string;
}

export const SHORT_SEGMENT_TERMS = 6;

export function createSentenceScorer(segments: readonly Segment[]): SentenceScorer {
  const tfidf = new TfIdf();
  for (const s of segments) tfidf.addDocument([...s.terms]);
  const vectors: TermVector[] = segments.map((s, d) => {
    const v: TermVector = new Map();
    for (const t of new Set(s.terms)) v.set(t, tfidf.tfidf(t, d));
    return v;
  });
  const sentences = segments.map((s) => segmentSentence(s));
  return {
    sentence: (i) => sentences[i] ?? "",
    best(group, k, maxWords) {
      const centroid: TermVector = new Map();
      for (const i of group) for (const [t, x] of vectors[i]!) centroid.set(t, (centroid.get(t) ?? 0) + x);
      const ranked = group
        .filter((i) => sentences[i] !== "")
        .map((i) => ({
          i,
          score: cosine(vectors[i]!, centroid) * Math.min(1, segments[i]!.terms.length / SHORT_SEGMENT_TERMS),
        }))
        .sort((a, b) => b.score - a.score || a.i - b.i);
      const picked: number[] = [];
      let words = 0;
      for (const r of ranked) {
        if (picked.length >= k) break;
        const n = segments[r.i]!.words.length;
        // the first sentence is always taken; later ones only while within the word budget
        if (picked.length > 0 && words + n > maxWords) continue;
        // repeated utterances ("okay let's start") must not fill the summary twice
        if (picked.some((p) => sentences[p] === sentences[r.i])) continue;
        picked.push(r.i);
        words += n;
      }
      return picked.sort((a, b) => a - b);
    },
  };
}
