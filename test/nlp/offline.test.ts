import assert from "node:assert/strict";
import { test } from "node:test";
import { DetectTopicsOutput, GenerateSummaryOutput, GenerateTitleOutput, type Word } from "../../pipeline/contracts/index.ts";
import { createLanguageTools } from "../../pipeline/nlp/language.ts";
import { createOfflineTextModel, EMPTY_SUMMARY, EMPTY_TITLE } from "../../pipeline/nlp/offline.ts";
import { segmentWords } from "../../pipeline/nlp/segments.ts";
import { depthScores, topicBoundaries } from "../../pipeline/nlp/tiling.ts";
import { BUDGET, HIRING, RELEASE, timedWords } from "./synthetic.ts";

const en = createLanguageTools("en");
const w = (text: string, start: number, speaker = 0, end = start + 0.3): Word => ({ text, start, end, speaker });
const rotate = (a: readonly string[], k: number): string[] => [...a.slice(k), ...a.slice(0, k)];

test("segments split on a pause of 0.8 s or more and on a speaker change, not on shorter gaps", () => {
  const words = [w("a", 0), w("b", 0.5), w("c", 1.5), w("d", 2.1, 1), w("e", 2.5, 1), w("f", 3.6, 1)];
  // gaps: a→b 0.2 s, b→c 0.7 s, c→d speaker change, d→e 0.1 s, e→f 0.8 s
  const segs = segmentWords(words, en);
  assert.deepEqual(segs.map((s) => s.words.map((x) => x.text).join("")), ["abc", "de", "f"]);
  assert.deepEqual(segs.map((s) => s.speaker), [0, 1, 1]);
  assert.deepEqual(segs.map((s) => s.start), [0, 2.1, 3.6]);
});

test("segments are capped at maxWords", () => {
  const words = Array.from({ length: 25 }, (_, i) => w(`word${i}`, i * 0.3));
  const segs = segmentWords(words, en, { maxWords: 10 });
  assert.deepEqual(segs.map((s) => s.words.length), [10, 10, 5]);
});

test("depth of a gap is how far cohesion climbs on both sides of it", () => {
  assert.deepEqual(depthScores([0.5, 0.5, 0.5]), [0, 0, 0]);
  const d = depthScores([0.8, 0.5, 0.2, 0.4, 0.6, 0.3]);
  // valley at index 2: climbs to 0.8 on the left, 0.6 on the right
  assert.ok(Math.abs(d[2]! - (0.6 + 0.4)) < 1e-9);
  assert.equal(Math.max(...d), d[2]);
});

test("three parts with different vocabulary become three topics starting where each part starts", async () => {
  const parts = [BUDGET, HIRING, RELEASE];
  const words = timedWords(parts.flat(), { speakers: [0, 1, 2] });
  const model = createOfflineTextModel();
  const topics = DetectTopicsOutput.parse({ topics: await model.detectTopics(words, "en") }).topics;
  assert.equal(topics.length, 3);
  assert.deepEqual(topics.map((t) => t.id), ["topic-1", "topic-2", "topic-3"]);
  // each part's first word (from the same timeline) is where its topic starts
  let offset = 0;
  const partStarts = parts.map((p) => {
    const first = words[offset]!.start;
    offset += p.join(" ").split(/\s+/).length;
    return first;
  });
  assert.deepEqual(topics.map((t) => t.timestamp), partStarts);
  // topics partition the words, in order
  assert.deepEqual(topics.flatMap((t) => t.words), words);
  for (const t of topics) {
    const last = t.words[t.words.length - 1]!;
    assert.ok(Math.abs(t.timestamp + t.duration - last.end) < 1e-6);
  }
  // the titles name each part's dominant vocabulary
  assert.match(topics[0]!.title, /budget|finance/i);
  assert.match(topics[1]!.title, /candidate|interview|hiring|recruiter/i);
  assert.match(topics[2]!.title, /release|mobile|app/i);
});

test("one subject spoken at length stays one topic", async () => {
  const text = [...BUDGET, ...rotate(BUDGET, 3), ...rotate(BUDGET, 5)];
  const topics = await createOfflineTextModel().detectTopics(timedWords(text), "en");
  assert.equal(topics.length, 1);
  assert.equal(topics[0]!.words.length, text.join(" ").split(/\s+/).length);
});

test("boundaries respect the minimum topic size", () => {
  const segs = segmentWords(timedWords([...BUDGET, ...HIRING, ...RELEASE]), en);
  const few = topicBoundaries(segs, { minTopicWords: 150 });
  assert.ok(few.length <= 1, `expected at most one boundary, got ${few.join(",")}`);
  const none = topicBoundaries(segs, { minTopicSeconds: 1000 });
  assert.deepEqual(none, []);
});

test("results are deterministic: same words, same topics, title and summaries", async () => {
  const words = timedWords([...HIRING, ...RELEASE, ...BUDGET]);
  const a = createOfflineTextModel();
  const b = createOfflineTextModel();
  const ta = await a.detectTopics(words, "en");
  const tb = await b.detectTopics([...words].reverse(), "en");
  assert.deepEqual(ta, tb);
  assert.equal(await a.generateTitle(ta, "en"), await b.generateTitle(tb, "en"));
  assert.deepEqual(await a.generateSummary(ta, "en"), await b.generateSummary(tb, "en"));
});

test("summaries are extractive: short is 1–2 transcript sentences, long has one paragraph per topic", async () => {
  const words = timedWords([...BUDGET, ...HIRING, ...RELEASE]);
  const model = createOfflineTextModel();
  const topics = await model.detectTopics(words, "en");
  const sums = GenerateSummaryOutput.parse(await model.generateSummary(topics, "en"));
  const utterances = [...BUDGET, ...HIRING, ...RELEASE].map((s) => s.toLowerCase());
  const sentences = sums.short_summary.split(/(?<=\.)\s+/);
  assert.ok(sentences.length >= 1 && sentences.length <= 2, sums.short_summary);
  for (const s of sentences) assert.ok(utterances.includes(s.replace(/\.$/, "").toLowerCase()), `not from the transcript: ${s}`);
  const paragraphs = sums.long_summary.split("\n\n");
  assert.equal(paragraphs.length, topics.length);
  paragraphs.forEach((p, i) => assert.ok(p.startsWith(`${topics[i]!.title}: `), p));
  for (const t of topics) {
    const ts = t.summary.split(/(?<=\.)\s+/);
    assert.ok(ts.length >= 1 && ts.length <= 2, t.summary);
  }
  const title = GenerateTitleOutput.parse({ title: await model.generateTitle(topics, "en") }).title;
  assert.ok(title.length > 0 && title !== EMPTY_TITLE);
});

test("no words: no topics, and still a valid title and summaries", async () => {
  const model = createOfflineTextModel();
  const topics = await model.detectTopics([], "en");
  assert.deepEqual(topics, []);
  assert.equal(await model.generateTitle(topics, "en"), EMPTY_TITLE);
  assert.deepEqual(await model.generateSummary(topics, "en"), { short_summary: EMPTY_SUMMARY, long_summary: EMPTY_SUMMARY });
  assert.ok(GenerateTitleOutput.safeParse({ title: EMPTY_TITLE }).success);
});

test("a few filler words still give one topic with a non-empty title", async () => {
  const words = [w("uh", 0), w("yeah", 0.4), w("[noise]", 0.8), w("okay", 2, 1)];
  const model = createOfflineTextModel();
  const topics = await model.detectTopics(words, "en");
  assert.equal(topics.length, 1);
  assert.ok(topics[0]!.title.length > 0);
  assert.ok((await model.generateTitle(topics, "en")).length > 0);
  const s = await model.generateSummary(topics, "en");
  assert.ok(s.short_summary.length > 0 && s.long_summary.length > 0);
});

test("other languages use their own stopwords and stemmer", async () => {
  const de = createLanguageTools("de-DE");
  assert.equal(de.code, "de");
  assert.ok(de.isStopword("und"));
  const words = timedWords(["Wir sprechen heute über das Budget", "Das Budget für das nächste Quartal ist zu hoch"]);
  const model = createOfflineTextModel();
  const topics = await model.detectTopics(words, "de");
  assert.equal(topics.length, 1);
  assert.match(topics[0]!.title, /budget/i);
});
