/**
 * Keyphrases for titles: noun-phrase candidates scored with TF-IDF.
 *
 * Candidates (English): maximal runs of adjectives/nouns/gerunds ending in a noun, as
 * tagged by natural's Brill POS tagger, and every sub-run of 1–3 tokens that also ends
 * in a noun; stopwords, fillers and numbers break runs. Other languages: runs of 1–3
 * non-stopword tokens. A candidate is keyed by its stems, so "budget" and "budgets" count
 * together; it is shown in its most frequent surface form.
 *
 * Score of a candidate p in a topic: (Σ over its stems of tf·idf) / √|p| × √freq(p), with
 * tf·idf from natural's TfIdf over the topics as documents. Picking is greedy, best score
 * first (ties: earlier first occurrence, then alphabetical), skipping candidates that
 * share a stem with one already picked.
 */
import { TfIdf } from "natural/lib/natural/tfidf/index.js";
import type { LanguageTools } from "./language.ts";
import type { Segment } from "./segments.ts";

export interface Candidate {
  key: string;
  stems: string[];
  freq: number;
  /** order of first occurrence in the text */
  first: number;
  surfaces: Map<string, number>;
}

const NOUN = /^NN/;
const MODIFIER = /^(NN|JJ|VBG)/;

function tokenOk(t: string, lang: LanguageTools): boolean {
  return t.length > 1 && !lang.isStopword(t) && !/^\d+$/.test(t);
}

/** All candidate phrases of a list of segments, keyed by their stems. */
export function extractCandidates(segments: readonly Segment[], lang: LanguageTools): Map<string, Candidate> {
  const out = new Map<string, Candidate>();
  let order = 0;
  const add = (tokens: string[]): void => {
    const stems = tokens.map((t) => lang.stem(t));
    const key = stems.join(" ");
    const surface = tokens.join(" ");
    let c = out.get(key);
    if (!c) {
      c = { key, stems, freq: 0, first: order++, surfaces: new Map() };
      out.set(key, c);
    }
    c.freq++;
    c.surfaces.set(surface, (c.surfaces.get(surface) ?? 0) + 1);
  };
  for (const seg of segments) {
    const tokens = seg.tokens.filter((t) => t !== "");
    const tags = lang.tag ? lang.tag(tokens) : undefined;
    const usable = tokens.map((t, i) => tokenOk(t, lang) && (!tags || MODIFIER.test(tags[i] ?? "")));
    const isHead = (i: number): boolean => !tags || NOUN.test(tags[i] ?? "");
    for (let i = 0; i < tokens.length; i++) {
      if (!usable[i]) continue;
      // every run ending at i (length 1..3) whose last token is a noun
      if (!isHead(i)) continue;
      for (let len = 1; len <= 3 && i - len + 1 >= 0; len++) {
        const from = i - len + 1;
        if (!usable[from]) break;
        add(tokens.slice(from, i + 1));
      }
    }
  }
  return out;
}

export function bestSurface(c: Candidate): string {
  return [...c.surfaces.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))[0]![0];
}

export interface ScoredPhrase {
  text: string;
  stems: string[];
  score: number;
  first: number;
}

/** Term weights for each document (topic): stem → tf·idf, from natural's TfIdf. */
export function tfidfWeights(documents: readonly string[][]): ((docIndex: number, stem: string) => number) {
  const tfidf = new TfIdf();
  for (const terms of documents) tfidf.addDocument([...terms]);
  const cache = new Map<string, number>();
  return (d, stem) => {
    const k = `${d}\u0000${stem}`;
    let v = cache.get(k);
    if (v === undefined) {
      v = tfidf.tfidf(stem, d);
      cache.set(k, v);
    }
    return v;
  };
}

export function scoreCandidates(candidates: Map<string, Candidate>, weight: (stem: string) => number): ScoredPhrase[] {
  return [...candidates.values()]
    .map((c) => ({
      text: bestSurface(c),
      stems: c.stems,
      first: c.first,
      score: (c.stems.reduce((s, st) => s + weight(st), 0) / Math.sqrt(c.stems.length)) * Math.sqrt(c.freq),
    }))
    .filter((p) => p.score > 0)
    .sort((a, b) => b.score - a.score || a.first - b.first || (a.text < b.text ? -1 : a.text > b.text ? 1 : 0));
}

/** Greedy pick of up to `k` phrases that share no stem. */
export function pickDistinct(ranked: readonly ScoredPhrase[], k: number): ScoredPhrase[] {
  const used = new Set<string>();
  const out: ScoredPhrase[] = [];
  for (const p of ranked) {
    if (out.length >= k) break;
    if (p.stems.some((s) => used.has(s))) continue;
    out.push(p);
    for (const s of p.stems) used.add(s);
  }
  return out;
}

export function titleCase(phrase: string): string {
  return phrase
    .split(" ")
    .map((w) => (w ? w.charAt(0).toUpperCase() + w.slice(1) : w))
    .join(" ");
}

/** "A", "A and B", "A, B and C" */
export function joinPhrases(phrases: readonly string[]): string {
  if (phrases.length <= 1) return phrases[0] ?? "";
  return `${phrases.slice(0, -1).join(", ")} and ${phrases[phrases.length - 1]}`;
}
