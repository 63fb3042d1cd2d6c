/**
 * The offline text model: topics by lexical cohesion (tiling.ts), keyphrase titles
 * (keyphrases.ts) and extractive summaries (summarize.ts) over pause-delimited segments
 * (segments.ts), action items by cue phrases (actions.ts). Pure computation, no network: the same words always give the same
 * topics, titles and summaries.
 */
import type { ActionItem, Topic, Word } from "../contracts/index.ts";
import type { TextModel } from "../ports.ts";
import { extractActionItemsOffline } from "./actions.ts";
import { createLanguageTools, type LanguageTools } from "./language.ts";
import { extractCandidates, joinPhrases, pickDistinct, scoreCandidates, tfidfWeights, titleCase, type ScoredPhrase } from "./keyphrases.ts";
import { orderWords, segmentWords, type Segment, type SegmentOptions } from "./segments.ts";
import { createSentenceScorer } from "./summarize.ts";
import { topicBoundaries, type TilingOptions } from "./tiling.ts";

/** What a recording without any recognized word is called and summarized as. */
export const EMPTY_TITLE = "Untitled meeting";
export const EMPTY_SUMMARY = "No speech was recognized in this recording.";

/** Topic indexes, most words first (ties: earlier topic first). */
function bySize(groups: readonly Segment[][]): number[] {
  const words = groups.map((g) => g.reduce((n, s) => n + s.words.length, 0));
  return groups.map((_, i) => i).sort((a, b) => words[b]! - words[a]! || a - b);
}

export interface OfflineTextModelOptions {
  segments?: SegmentOptions;
  tiling?: TilingOptions;
  /** keyphrases in a topic title (default 2) and in the meeting title (default 3) */
  topicTitlePhrases?: number;
  meetingTitlePhrases?: number;
  /** word budget of a topic summary and of the short summary (default 60) */
  shortSummaryWords?: number;
}

export function createOfflineTextModel(options: OfflineTextModelOptions = {}): TextModel {
  const languages = new Map<string, LanguageTools>();
  const lang = (code: string): LanguageTools => {
    let l = languages.get(code);
    if (!l) {
      l = createLanguageTools(code);
      languages.set(code, l);
    }
    return l;
  };
  const topicPhrases = options.topicTitlePhrases ?? 2;
  const meetingPhrases = options.meetingTitlePhrases ?? 3;
  const shortWords = options.shortSummaryWords ?? 60;

  /** Ranked keyphrases of each group of segments, with idf over the groups. */
  const rankPhrases = (groups: readonly Segment[][], l: LanguageTools): ScoredPhrase[][] => {
    const weight = tfidfWeights(groups.map((g) => g.flatMap((s) => s.terms)));
    return groups.map((g, d) => scoreCandidates(extractCandidates(g, l), (stem) => weight(d, stem)));
  };
  const topicTitle = (ranked: readonly ScoredPhrase[], n: number): string => {
    const picked = pickDistinct(ranked, topicPhrases);
    return picked.length ? joinPhrases(picked.map((p) => titleCase(p.text))) : `Topic ${n}`;
  };
  /** Segments of each topic, numbered across the whole recording. */
  const topicSegments = (topics: readonly Topic[], l: LanguageTools): { all: Segment[]; groups: Segment[][] } => {
    const all: Segment[] = [];
    const groups = topics.map((t) => {
      const segs = segmentWords(t.words, l, options.segments).map((s) => ({ ...s, index: all.length + s.index }));
      all.push(...segs);
      return segs;
    });
    return { all, groups };
  };

  return {
    name: "offline",

    async detectTopics(words: Word[], language: string): Promise<Topic[]> {
      if (words.length === 0) return [];
      const l = lang(language);
      const segments = segmentWords(words, l, options.segments);
      const starts = [0, ...topicBoundaries(segments, options.tiling)];
      const groups = starts.map((s, i) => segments.slice(s, starts[i + 1] ?? segments.length));
      const ranked = rankPhrases(groups, l);
      const scorer = createSentenceScorer(segments);
      return groups.map((g, i) => {
        const start = g[0]!.start;
        const end = Math.max(...g.map((s) => s.end));
        const summary = scorer
          .best(g.map((s) => s.index), 2, shortWords)
          .map((j) => scorer.sentence(j))
          .join(" ");
        return {
          id: `topic-${i + 1}`,
          title: topicTitle(ranked[i]!, i + 1),
          summary,
          timestamp: start,
          duration: Math.max(0, Math.round((end - start) * 1000) / 1000),
          words: orderWords(g.flatMap((s) => s.words)),
        };
      });
    },

    async generateTitle(topics: Topic[], language: string): Promise<string> {
      const l = lang(language);
      const { groups } = topicSegments(topics, l);
      if (groups.every((g) => g.length === 0)) return EMPTY_TITLE;
      // Round robin over the topics, longest first: every big topic gets a phrase in the
      // title before any topic gets a second one.
      const ranked = rankPhrases(groups, l);
      const order = bySize(groups);
      const picked: ScoredPhrase[] = [];
      const used = new Set<string>();
      for (let round = 0; picked.length < meetingPhrases && order.some((t) => ranked[t]!.length > round); round++) {
        for (const t of order) {
          if (picked.length >= meetingPhrases) break;
          // the topic's own round-th phrase; skipped when another topic already said it
          const next = pickDistinct(ranked[t]!, round + 1)[round];
          if (!next || next.stems.some((s) => used.has(s))) continue;
          picked.push(next);
          for (const s of next.stems) used.add(s);
        }
      }
      return picked.length ? joinPhrases(picked.map((p) => titleCase(p.text))) : EMPTY_TITLE;
    },

    async generateSummary(topics: Topic[], language: string): Promise<{ short_summary: string; long_summary: string }> {
      const l = lang(language);
      const { all, groups } = topicSegments(topics, l);
      if (all.length === 0) return { short_summary: EMPTY_SUMMARY, long_summary: EMPTY_SUMMARY };
      const scorer = createSentenceScorer(all);
      // One sentence each from the two longest topics (two from a single topic), in time order.
      const order = bySize(groups).filter((t) => groups[t]!.length > 0);
      const shortPicks =
        order.length === 1
          ? scorer.best(groups[order[0]!]!.map((s) => s.index), 2, shortWords)
          : order.slice(0, 2).flatMap((t) => scorer.best(groups[t]!.map((s) => s.index), 1, shortWords));
      const short = shortPicks
        .sort((a, b) => a - b)
        .map((i) => scorer.sentence(i))
        .join(" ");
      const paragraphs = groups
        .map((g, t) => {
          if (g.length === 0) return "";
          const k = Math.min(5, Math.max(1, Math.ceil(g.length / 6)));
          const sentences = scorer.best(g.map((s) => s.index), k, 40 * k).map((i) => scorer.sentence(i));
          return `${topics[t]!.title}: ${sentences.join(" ")}`;
        })
        .filter(Boolean);
      return { short_summary: short || EMPTY_SUMMARY, long_summary: paragraphs.join("\n\n") || EMPTY_SUMMARY };
    },

    async extractActionItems(words: Word[], language: string): Promise<ActionItem[]> {
      return extractActionItemsOffline(words, lang(language), options.segments);
    },
  };
}
