/**
 * The pipeline graph: sound as defined, and its checks catch the mistakes that used to be
 * invisible (a step in no stage, an input read from a later stage, a join of a step that
 * does not run per track).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { StepName } from "../../pipeline/contracts/index.ts";
import { bind, graphProblems, NODES, orderedSteps, perTrackSteps, STAGES, taskCount, taskSpecs, type Stage } from "../../pipeline/state/index.ts";
import { pipelineInput } from "./outputs.ts";

test("the graph is sound: every step in one stage, inputs read from earlier stages only", () => {
  assert.deepEqual(graphProblems(), []);
  assert.deepEqual([...orderedSteps()].sort(), [...StepName.options].sort());
  assert.deepEqual([...perTrackSteps].sort(), ["prepare_track", "transcribe_track"]);
});

test("progress totals come from the graph: two tasks per track plus one per other step", () => {
  for (const n of [1, 3, 7]) {
    assert.equal(taskCount(n), taskSpecs(pipelineInput(n)).length);
    assert.equal(taskCount(n), 2 * n + 9);
  }
});

test("each task waits for the stage before it and for every step its input reads", () => {
  const specs = new Map(taskSpecs(pipelineInput(2)).map((s) => [s.key, s]));
  assert.deepEqual(specs.get("prepare_track[0]")!.deps, []);
  assert.deepEqual([...specs.get("plan_speech")!.deps].sort(), ["prepare_track[0]", "prepare_track[1]"]);
  assert.deepEqual(specs.get("transcribe_track[1]")!.deps, ["plan_speech"]);
  assert.deepEqual([...specs.get("extract_action_items")!.deps].sort(), ["detect_topics", "suppress_bleed"]);
  // mixdown reads only plan_speech, and still runs in the stage after detect_topics
  assert.deepEqual([...specs.get("mixdown")!.deps].sort(), ["detect_topics", "plan_speech"]);
  // finalize reads merge_transcripts (every track's outcome: partial results)
  assert.deepEqual(
    [...specs.get("finalize")!.deps].sort(),
    ["detect_topics", "extract_action_items", "generate_summary", "generate_title", "merge_transcripts", "mixdown", "plan_speech", "suppress_bleed"],
  );
});

test("the checks name a step left out of the stages, a read from a later stage and a join of a single task", () => {
  const withoutActions: Stage[] = STAGES.map((s) => (typeof s === "string" ? s : { ...s, steps: s.steps.filter((x) => x !== "extract_action_items") }));
  assert.deepEqual(graphProblems(NODES, withoutActions), ["step extract_action_items is in no stage", "step finalize reads extract_action_items, which does not run in an earlier stage"]);

  const early = { ...NODES, detect_topics: { input: { language: bind.input("language"), words: bind.output("extract_action_items", "action_items") } } };
  assert.deepEqual(graphProblems(early as never), ["step detect_topics reads extract_action_items, which does not run in an earlier stage"]);

  const twoForks = { ...NODES, mixdown: { ...NODES.mixdown, forEachTrack: { from: "output", step: "plan_speech", field: "tracks" } } };
  assert.ok(graphProblems(twoForks as never).includes("more than one per-track step forks over plan_speech"), graphProblems(twoForks as never).join("\n"));

  const badJoin = { ...NODES, merge_transcripts: { input: { expected_tracks: bind.expectedTracks(), transcripts: bind.joined("plan_speech") } } };
  assert.deepEqual(graphProblems(badJoin as never), ["step merge_transcripts.transcripts joins plan_speech, which does not run per track"]);
});
