/** Offline action items: cue phrases in realistic meeting sentences, owner and time from the words. */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Word } from "../../pipeline/contracts/index.ts";
import { actionCue, extractActionItemsOffline } from "../../pipeline/nlp/actions.ts";
import { createLanguageTools } from "../../pipeline/nlp/language.ts";
import { createOfflineTextModel } from "../../pipeline/nlp/offline.ts";
import { timedWords } from "./synthetic.ts";

const en = createLanguageTools("en");
const tokens = (s: string): string[] => s.toLowerCase().split(/\s+/);

/** One line per utterance: `speaker: text`, said in this order with a pause between them. */
function meeting(lines: string[]): Word[] {
  const words: Word[] = [];
  let t = 3;
  for (const line of lines) {
    const [who, text] = line.split(": ") as [string, string];
    for (const w of text.split(/\s+/)) {
      words.push({ text: w, start: Math.round(t * 1000) / 1000, end: Math.round((t + 0.25) * 1000) / 1000, speaker: Number(who) });
      t += 0.3;
    }
    t += 1.2;
  }
  return words;
}

const STANDUP = [
  "0: good morning everyone thanks for joining",
  "1: the build was red most of yesterday",
  "0: we need to fix the flaky login test before the release",
  "1: i'll ask the platform team about the runners",
  "2: the weather will be terrible tomorrow",
  "0: let's see what else is on the list",
  "2: let's move the release review to thursday afternoon",
  "1: will we need to update the changelog",
  "2: can you send the slides to marketing by friday",
  "0: we will not ship the beta this week",
  "1: i'm going to write the migration guide",
  "0: we needed to roll back last week",
  "2: okay that sounds good",
];

test("cue phrases: commitments, obligations, proposals and deadlines are found; statements, questions and negations are not", () => {
  const found = (s: string) => actionCue(tokens(s));
  assert.equal(found("we need to fix the flaky login test"), "we need to");
  assert.equal(found("i'll ask the platform team"), "i'll");
  assert.equal(found("she will review the pull request"), "she will");
  assert.equal(found("let's move the release review to thursday"), "let's");
  assert.equal(found("send the slides to marketing by friday"), "by friday");
  assert.equal(found("the report is due by the end of week"), "by the end of week");
  assert.equal(found("i'm going to write the migration guide"), "i'm going to");
  assert.equal(found("somebody has to own the rollout"), "somebody has to");
  assert.equal(found("that's an action item for bob"), "action item");
  assert.equal(found("could you please draft the announcement"), "could you");

  assert.equal(found("the weather will be terrible tomorrow"), null, "'will' without a person is a forecast");
  assert.equal(found("will we need to update the changelog"), null, "a question");
  assert.equal(found("we will not ship the beta"), null, "a negation");
  assert.equal(found("we needed to roll back last week"), null, "the past");
  assert.equal(found("let's see what else is on the list"), null, "thinking aloud");
  assert.equal(found("let's start with the budget"), null, "steering the meeting");
  assert.equal(found("let's move on to hiring"), null, "steering the meeting");
  assert.equal(found("we stood by the decision"), null, "'by' without a deadline");
});

test("a stand-up: the action items in time order, each owned by its speaker and starting at its first word", () => {
  const words = meeting(STANDUP);
  const items = extractActionItemsOffline(words, en);
  assert.deepEqual(
    items.map((i) => [i.speaker, i.text]),
    [
      [0, "We need to fix the flaky login test before the release."],
      [1, "I'll ask the platform team about the runners."],
      [2, "Let's move the release review to thursday afternoon."],
      [2, "Can you send the slides to marketing by friday."],
      [1, "I'm going to write the migration guide."],
    ],
  );
  for (const item of items) {
    const first = words.find((w) => w.start === item.start)!;
    assert.ok(first, `an item starts at a word (${item.start})`);
    assert.equal(first.speaker, item.speaker);
    assert.equal(item.text.split(" ")[0]!.toLowerCase(), first.text);
  }
  assert.deepEqual(items.map((i) => i.start), [...items.map((i) => i.start)].sort((a, b) => a - b));
});

test("punctuated words split sentences: only the sentence with the cue becomes the item; questions are skipped", () => {
  const words = meeting(["1: Thanks everyone. We will send the budget draft to finance. Any questions?", "0: Should we ship on Monday?", "2: Can you do it by Friday?"]);
  const items = extractActionItemsOffline(words, en);
  assert.deepEqual(items.map((i) => i.text), ["We will send the budget draft to finance."]);
  assert.equal(items[0]!.speaker, 1);
  assert.equal(items[0]!.start, words.find((w) => w.text === "We")!.start);
});

test("the same words said twice by one person are one item; said by two people, two items", () => {
  const items = extractActionItemsOffline(meeting(["0: i will book the room", "1: sorry", "0: i will book the room", "1: i will book the room"]), en);
  assert.deepEqual(items.map((i) => [i.speaker, i.text]), [[0, "I will book the room."], [1, "I will book the room."]]);
});

test("no words, no cues, or a language without cue lists: no items", async () => {
  assert.deepEqual(extractActionItemsOffline([], en), []);
  assert.deepEqual(extractActionItemsOffline(timedWords(["the budget grew by ten percent", "hiring is on track"]), en), []);
  assert.deepEqual(extractActionItemsOffline(meeting(["0: we need to fix the build"]), createLanguageTools("de")), []);
  // through the text model port, deterministic
  const model = createOfflineTextModel();
  const words = meeting(STANDUP);
  assert.deepEqual(await model.extractActionItems(words, "en"), await model.extractActionItems(words, "en-US"));
  assert.equal((await model.extractActionItems(words, "en")).length, 5);
});
