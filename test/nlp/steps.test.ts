import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { createOfflineTextModel } from "../../pipeline/nlp/offline.ts";
import type { AsrEngine, AudioTools } from "../../pipeline/ports.ts";
import { runStep, StepInputError, type StepDeps } from "../../pipeline/steps/index.ts";
import { createLocalStorage } from "../../adapters/storage/local.ts";
import { BUDGET, HIRING, RELEASE, timedWords } from "./synthetic.ts";

const dir = mkdtempSync(path.join(os.tmpdir(), "nlp-steps-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The text steps use only the text model; the audio ports refuse to be used. */
const unused = (what: string) => () => {
  throw new Error(`${what} must not be used by the text steps`);
};
const deps: StepDeps = {
  storage: createLocalStorage(dir),
  audio: { decodeToWav: unused("audio"), mixdownMp3: unused("audio") } as AudioTools,
  asr: { name: "none", capabilities: { preload: false, sharedChild: false }, transcribe: unused("asr") } as AsrEngine,
  text: createOfflineTextModel(),
  scratchDir: dir,
  bleedThresholdDb: 10,
};

test("detect_topics → generate_title ∥ generate_summary through the step table, across a JSON boundary", async () => {
  const words = timedWords([...BUDGET, ...HIRING, ...RELEASE], { speakers: [0, 1, 2] });
  const detected = await runStep("detect_topics", JSON.parse(JSON.stringify({ language: "en", words })), deps);
  assert.equal(detected.topics.length, 3);
  // what a Conductor task would receive: plain JSON
  const topics = JSON.parse(JSON.stringify(detected.topics)) as unknown;
  const [title, summary] = await Promise.all([
    runStep("generate_title", { language: "en", topics }, deps),
    runStep("generate_summary", { language: "en", topics }, deps),
  ]);
  assert.ok(title.title.length > 0);
  assert.ok(summary.short_summary.length > 0);
  assert.equal(summary.long_summary.split("\n\n").length, 3);
  // the same input through the model directly gives the same answer
  assert.equal(title.title, await deps.text.generateTitle(detected.topics, "en"));
});

test("extract_action_items through the step table: owner = speaker, start = the sentence's first word", async () => {
  const words = timedWords(["let us start with the budget", "we need to cut travel costs by friday", "agreed"], { speakers: [2, 0, 1] });
  const out = await runStep("extract_action_items", JSON.parse(JSON.stringify({ language: "en", words })), deps);
  const first = words.find((w) => w.text === "we")!;
  assert.deepEqual(out, { action_items: [{ text: "We need to cut travel costs by friday.", speaker: 0, start: first.start }] });
  await assert.rejects(runStep("extract_action_items", { language: "en" }, deps), StepInputError);
  assert.deepEqual(await runStep("extract_action_items", { language: "en", words: [] }, deps), { action_items: [] });
});

test("the text steps reject malformed input before running", async () => {
  await assert.rejects(runStep("detect_topics", { language: "en", words: [{ text: "", start: 0, end: 1, speaker: 0 }] }, deps), StepInputError);
  await assert.rejects(runStep("generate_title", { language: "en", topics: "budget" }, deps), StepInputError);
});

test("an empty transcript flows through all three text steps", async () => {
  const detected = await runStep("detect_topics", { language: "en", words: [] }, deps);
  assert.deepEqual(detected.topics, []);
  const title = await runStep("generate_title", { language: "en", topics: [] }, deps);
  const summary = await runStep("generate_summary", { language: "en", topics: [] }, deps);
  assert.ok(title.title.length > 0);
  assert.ok(summary.short_summary.length > 0 && summary.long_summary.length > 0);
});
