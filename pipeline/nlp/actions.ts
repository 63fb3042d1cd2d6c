/**
 * Offline action items: sentences in which someone commits to (or asks for) something to
 * be done, found by cue phrases. Pure and deterministic.
 *
 * Sentences are the pause-delimited segments (segments.ts), cut again after a word that
 * ends with `.`, `!` or `?` (recognizers that punctuate). A sentence is an action item
 * when its tokens contain one of these cues:
 *
 *   commitment   a subject pronoun + will / shall / 'll ("we will", "I'll"), not "will not"
 *   obligation   a subject + need(s) / ha(ve|s) / got + to ("we need to"), or + must
 *   intention    I'm / we're / … + going to / gonna
 *   proposal     let's / let us (not "let's see", "let's move on": meeting talk)
 *   deadline     by + a day: monday … sunday, tomorrow, tonight, eod, noon,
 *                end of (the) day/week/month, next week/month/<weekday>
 *   request      can / could / would you … at the start ("can you send the slides")
 *   explicit     "action item", "follow up"
 *
 * Questions are not commitments: a sentence that ends with `?` or starts with any other
 * auxiliary ("will we need to …", "should I …") is skipped. Cues are English: other languages give
 * no items. The owner is the sentence's speaker and `start` its first word's start.
 */
import type { ActionItem, Word } from "../contracts/index.ts";
import { normalizeToken, type LanguageTools } from "./language.ts";
import { segmentSentence, segmentWords, type Segment, type SegmentOptions } from "./segments.ts";

const SUBJECTS = new Set(["i", "we", "you", "they", "he", "she", "someone", "somebody", "everyone", "everybody"]);
const WILL_CONTRACTIONS = new Set(["i'll", "we'll", "you'll", "they'll", "he'll", "she'll"]);
const BE_CONTRACTIONS = new Set(["i'm", "we're", "you're", "they're", "he's", "she's"]);
const OBLIGATION = new Set(["need", "needs", "have", "has", "got"]);
const WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
const DAYS = new Set([...WEEKDAYS, "tomorrow", "tonight", "eod", "noon", "midday"]);
const PERIODS = new Set(["day", "week", "month", "quarter", "year"]);
/** a sentence starting with one of these is a question ("will we …", "should I …") */
const AUXILIARIES = new Set(["will", "shall", "should", "would", "could", "can", "do", "does", "did", "are", "is", "must", "have", "has"]);
/** "let's see", "let's start with …", "let's move on": thinking aloud or steering the meeting, not a proposal */
const LETS_FILLERS = new Set(["see", "say", "hope", "just", "think", "start", "begin", "talk", "discuss", "recap", "continue", "wrap", "get", "go"]);
/** "can you …", "could you please …": a request to the listener */
const REQUESTS = new Set(["can", "could", "would"]);

/** The cue found in a sentence's tokens, or null. */
export function actionCue(tokens: readonly string[]): string | null {
  const t = tokens.filter((x) => x !== "");
  if (t.length === 0) return null;
  const at = (i: number): string => t[i] ?? "";
  if (REQUESTS.has(t[0]!) && at(1) === "you" && at(2) !== "") return `${t[0]} you`;
  if (AUXILIARIES.has(t[0]!)) return null;
  for (let i = 0; i < t.length; i++) {
    const w = t[i]!;
    if (SUBJECTS.has(w) && (at(i + 1) === "will" || at(i + 1) === "shall") && at(i + 2) !== "not") return `${w} ${at(i + 1)}`;
    if (WILL_CONTRACTIONS.has(w) && at(i + 1) !== "not") return w;
    if (SUBJECTS.has(w) && OBLIGATION.has(at(i + 1)) && at(i + 2) === "to") return `${w} ${at(i + 1)} to`;
    if (SUBJECTS.has(w) && at(i + 1) === "must" && at(i + 2) !== "not") return `${w} must`;
    if (BE_CONTRACTIONS.has(w) && ((at(i + 1) === "going" && at(i + 2) === "to") || at(i + 1) === "gonna")) return `${w} going to`;
    const proposal = (next: string, after: string): boolean => next !== "" && !LETS_FILLERS.has(next) && !(next === "move" && after === "on");
    if ((w === "let's" || w === "lets") && proposal(at(i + 1), at(i + 2))) return "let's";
    if (w === "let" && at(i + 1) === "us" && proposal(at(i + 2), at(i + 3))) return "let us";
    if (w === "by") {
      const next = at(i + 1);
      if (DAYS.has(next)) return `by ${next}`;
      if (next === "end" && at(i + 2) === "of") {
        const p = at(i + 3) === "the" ? at(i + 4) : at(i + 3);
        if (PERIODS.has(p)) return `by end of ${p}`;
      }
      if (next === "the" && at(i + 2) === "end" && at(i + 3) === "of" && PERIODS.has(at(i + 4))) return `by the end of ${at(i + 4)}`;
      if (next === "next" && (PERIODS.has(at(i + 2)) || WEEKDAYS.includes(at(i + 2)))) return `by next ${at(i + 2)}`;
    }
    if (w === "action" && (at(i + 1) === "item" || at(i + 1) === "items")) return "action item";
    if (w === "follow" && at(i + 1) === "up") return "follow up";
  }
  return null;
}

/** Segments cut again after words that end a sentence (`.`, `!`, `?`). */
function sentences(segments: readonly Segment[]): { words: Word[]; question: boolean }[] {
  const out: { words: Word[]; question: boolean }[] = [];
  for (const seg of segments) {
    let cur: Word[] = [];
    for (const w of seg.words) {
      cur.push(w);
      if (/[.!?]["')\]]*$/.test(w.text)) {
        out.push({ words: cur, question: /\?["')\]]*$/.test(w.text) });
        cur = [];
      }
    }
    if (cur.length) out.push({ words: cur, question: false });
  }
  return out;
}

export function extractActionItemsOffline(words: readonly Word[], lang: LanguageTools, opts: SegmentOptions = {}): ActionItem[] {
  if (lang.code !== "en" || words.length === 0) return [];
  const items: ActionItem[] = [];
  const seen = new Set<string>();
  for (const s of sentences(segmentWords(words, lang, opts))) {
    if (s.question) continue;
    if (actionCue(s.words.map((w) => normalizeToken(w.text))) === null) continue;
    const first = s.words[0]!;
    const text = segmentSentence({ index: 0, speaker: first.speaker, start: first.start, end: first.end, words: s.words, tokens: [], terms: [] });
    if (!text) continue;
    // the same words said twice by the same person are one item
    const key = `${first.speaker}\u0000${text.toLowerCase()}`;
    if (seen.has(key)) continue;
    seen.add(key);
    items.push({ text, speaker: first.speaker, start: first.start });
  }
  return items;
}
