/**
 * Language resources for the offline text model: a stopword list (`stopword`), a stemmer
 * and, for English, a part-of-speech tagger (both from `natural`).
 *
 * `natural` is loaded through its sub-modules on purpose: its top-level index pulls in
 * storage back-ends whose `dotenv` import prints to stdout and reads `.env` into
 * process.env, which would corrupt `trackscribe process --json`.
 */
import { BrillPOSTagger, Lexicon, RuleSet } from "natural/lib/natural/brill_pos_tagger/index.js";
import * as stemmers from "natural/lib/natural/stemmers/index.js";
import * as sw from "stopword";

export interface LanguageTools {
  /** the base language actually used, e.g. `en` */
  readonly code: string;
  isStopword(token: string): boolean;
  stem(token: string): string;
  /** Penn-Treebank-style tags, one per token; undefined when no tagger exists for the language */
  tag?(tokens: string[]): string[];
}

interface Resources {
  stopwords: string[];
  stemmer?: { stem(token: string): string };
  tagger: boolean;
}

const byLanguage: Record<string, () => Resources> = {
  en: () => ({ stopwords: sw.eng, stemmer: stemmers.PorterStemmer, tagger: true }),
  de: () => ({ stopwords: sw.deu, stemmer: stemmers.PorterStemmerDe, tagger: false }),
  fr: () => ({ stopwords: sw.fra, stemmer: stemmers.PorterStemmerFr, tagger: false }),
  es: () => ({ stopwords: sw.spa, stemmer: stemmers.PorterStemmerEs, tagger: false }),
  it: () => ({ stopwords: sw.ita, stemmer: stemmers.PorterStemmerIt, tagger: false }),
  nl: () => ({ stopwords: sw.nld, stemmer: stemmers.PorterStemmerNl, tagger: false }),
  pt: () => ({ stopwords: sw.por, stemmer: stemmers.PorterStemmerPt, tagger: false }),
  ru: () => ({ stopwords: sw.rus, stemmer: stemmers.PorterStemmerRu, tagger: false }),
  sv: () => ({ stopwords: sw.swe, stemmer: stemmers.PorterStemmerSv, tagger: false }),
  no: () => ({ stopwords: sw.nob, stemmer: stemmers.PorterStemmerNo, tagger: false }),
  fa: () => ({ stopwords: sw.fas, stemmer: stemmers.PorterStemmerFa, tagger: false }),
};

/**
 * Filler words and ASR noise that carry no topic, on top of the stopword list (English
 * conversational speech is full of them; pocketsphinx also emits them for noise).
 */
const englishFillers = [
  "uh", "um", "hmm", "mm", "mhm", "ah", "oh", "yeah", "yes", "okay", "ok", "right", "well", "like",
  "just", "really", "actually", "basically", "gonna", "wanna", "gotta", "kind", "sort", "thing", "things",
  "lot", "something", "anything", "everything", "nothing", "know", "think", "mean", "say", "said", "get",
  "got", "go", "going", "went", "come", "came", "make", "made", "let", "see", "look", "want", "need",
  "also", "still", "even", "much", "many", "now", "then", "there", "here", "today",
  // spelled-out numbers (recognizers write numbers as words)
  "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
  "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty", "thirty",
  "forty", "fifty", "sixty", "seventy", "eighty", "ninety", "hundred", "thousand", "million", "percent",
];

/**
 * Build the tools for `language` (`en`, `en-US`, …). Languages without resources fall
 * back to English stopwords for function words and no stemming, which still gives usable
 * lexical cohesion for most Latin-script text.
 */
export function createLanguageTools(language: string): LanguageTools {
  const base = language.toLowerCase().split("-")[0] ?? "en";
  const res = (byLanguage[base] ?? (() => ({ stopwords: sw.eng, stemmer: undefined, tagger: false })))();
  const stop = new Set(res.stopwords.map((w) => w.toLowerCase()));
  if (base === "en") for (const w of englishFillers) stop.add(w);
  const stemmer = res.stemmer;
  let tagger: BrillPOSTagger | undefined;
  if (res.tagger) tagger = new BrillPOSTagger(new Lexicon("EN", "NN"), new RuleSet("EN"));
  const tools: LanguageTools = {
    code: byLanguage[base] ? base : "en",
    isStopword: (t) => stop.has(t),
    stem: (t) => (stemmer ? stemmer.stem(t) : t),
  };
  if (tagger) {
    const tg = tagger;
    tools.tag = (tokens) => (tokens.length === 0 ? [] : tg.tag(tokens).taggedWords.map((w) => w.tag));
  }
  return tools;
}

/**
 * Normalize one recognized word to a token: lower case, letters/digits and inner
 * apostrophes only. ASR alternates like `read(2)` and markers like `<sil>` or `[noise]`
 * become empty strings.
 */
export function normalizeToken(text: string): string {
  const t = text.toLowerCase();
  if (/^[<[].*[>\]]$/.test(t)) return "";
  return t
    .replace(/\(\d+\)$/, "")
    .replace(/[^\p{L}\p{N}']+/gu, "")
    .replace(/^'+|'+$/g, "");
}
