import assert from "node:assert/strict";
import { test } from "node:test";
import { clock, formatResult, transcriptLines } from "../../pipeline/render/format-result.ts";
import { renderTranscript } from "../../server/transcript.ts";
import type { Result, Word } from "../../pipeline/contracts/index.ts";

const w = (text: string, start: number, speaker: number): Word => ({ text, start, end: start + 0.3, speaker });

test("clock shows minutes, seconds and tenths, and hours past an hour", () => {
  assert.equal(clock(0), "00:00.0");
  assert.equal(clock(12.34), "00:12.3");
  assert.equal(clock(59.96), "01:00.0");
  assert.equal(clock(754.25), "12:34.3");
  assert.equal(clock(3723.4), "1:02:03.4");
});

test("consecutive words of one speaker form a line; a speaker change or a long pause starts a new one", () => {
  const words = [w("hello", 0, 0), w("there", 0.4, 0), w("hi", 1, 1), w("so", 1.5, 0), w("anyway", 4.5, 0), w("ok", 4.9, 0)];
  assert.deepEqual(
    transcriptLines(words).map((l) => [l.speaker, l.start, l.text]),
    [
      [0, 0, "hello there"],
      [1, 1, "hi"],
      [0, 1.5, "so"],
      [0, 4.5, "anyway ok"],
    ],
  );
});

test("the readable result names speakers and lists topics, title and summaries", () => {
  const result: Result = {
    duration: 65,
    participants: [
      { speaker: 0, name: "Alice" },
      { speaker: 1, name: "Bob" },
    ],
    words: [w("budget", 12.3, 0), w("yes", 13, 1)],
    topics: [{ id: "topic-1", title: "Budget", summary: "Budget talk.", timestamp: 12.3, duration: 1, words: [] }],
    title: "Budget Review",
    short_summary: "Budget talk.",
    long_summary: "Budget: Budget talk.",
    action_items: [{ text: "We will send the budget by Friday.", speaker: 1, start: 13 }],
  };
  const text = formatResult(result);
  assert.match(text, /Action items:\n- \[00:13\.0\] Bob: We will send the budget by Friday\.$/m);
  assert.match(formatResult({ ...result, action_items: [] }), /Action items:\n {2}\(none\)/);
  assert.match(text, /^\[00:12\.3\] Alice: budget$/m);
  assert.match(text, /^\[00:13\.0\] Bob: yes$/m);
  assert.match(text, /^\[00:12\.3–00:13\.3\] Budget$/m);
  assert.match(text, /^Title: Budget Review$/m);
  assert.match(text, /Short summary:\nBudget talk\./);
  assert.match(text, /Long summary:\nBudget: Budget talk\./);
});

test("transcripts carry the action items: a section after the text transcript (only when there are any), named owners in JSON; the cue formats leave them out", () => {
  const result: Result = {
    duration: 20,
    participants: [
      { speaker: 0, name: "Alice" },
      { speaker: 1, name: "Bob" },
    ],
    words: [w("we", 1, 0), w("ship", 1.3, 0), w("okay", 5, 1)],
    topics: [],
    title: "Release",
    short_summary: "s",
    long_summary: "l",
    action_items: [{ text: "We ship on Friday.", speaker: 0, start: 1 }],
  };
  assert.equal(renderTranscript(result, "text"), "[00:01.0] Alice: we ship\n[00:05.0] Bob: okay\n\nAction items:\n- [00:01.0] Alice: We ship on Friday.\n");
  assert.equal(renderTranscript({ ...result, action_items: [] }, "text"), "[00:01.0] Alice: we ship\n[00:05.0] Bob: okay\n");
  assert.deepEqual(JSON.parse(renderTranscript(result, "json")).action_items, [{ text: "We ship on Friday.", speaker: 0, start: 1, name: "Alice" }]);
  assert.doesNotMatch(renderTranscript(result, "vtt"), /Friday/);
  assert.doesNotMatch(renderTranscript(result, "srt"), /Friday/);
});
