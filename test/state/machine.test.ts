/**
 * The pure pipeline state machine, driven with event sequences: exact instruction lists
 * out, no Redis, no timers, no mocks (dask's test_worker_state_machine style).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  EventSchemaError,
  IllegalTransitionError,
  handle,
  initialState,
  replay,
  resume,
  story,
  taskCount,
  taskKey,
  transitionTask,
  type HandleResult,
  type Instruction,
  type PipelineEventInput,
  type PipelineState,
  type RetryPolicy,
  type RunStep,
} from "../../pipeline/state/index.ts";
import { outputFor, pipelineInput } from "./outputs.ts";
import type { Result } from "../../pipeline/contracts/index.ts";
import { Driver, line } from "./driver.ts";

const job = (step: string, track: string | number, attempt = 1) => `rec1/bullmq/${step}/${track}/${attempt}`;

test("accepting a recording starts prepare_track for every track, with deterministic job ids and full inputs", () => {
  const d = new Driver();
  const r = d.accept(2);
  assert.equal(r.outcome, "applied");
  const input = pipelineInput(2);
  assert.deepEqual(r.instructions, [
    { type: "EmitProgress", stimulus_id: "accept", step: "pipeline", status: "started", message: "2 track(s)" },
    {
      type: "RunStep",
      stimulus_id: "accept",
      step: "prepare_track",
      track_index: 0,
      attempt: 1,
      job_id: job("prepare_track", 0),
      input: { recording_id: "rec1", namespace: "bullmq", track: input.tracks[0] },
    },
    { type: "EmitProgress", stimulus_id: "accept", step: "prepare_track", track_index: 0, status: "started", attempt: 1 },
    {
      type: "RunStep",
      stimulus_id: "accept",
      step: "prepare_track",
      track_index: 1,
      attempt: 1,
      job_id: job("prepare_track", 1),
      input: { recording_id: "rec1", namespace: "bullmq", track: input.tracks[1] },
    },
    { type: "EmitProgress", stimulus_id: "accept", step: "prepare_track", track_index: 1, status: "started", attempt: 1 },
  ]);
  assert.equal(d.state.status, "running");
  assert.equal(Object.keys(d.state.tasks).length, 2 + 1 + 2 + 1 + 1 + 1 + 4 + 1);
  assert.equal(Object.keys(d.state.tasks).length, taskCount(2), "the progress total counts the same tasks");
});

test("happy path: joins wait for every track, fan-out follows the plan, finalize finishes with the Result", () => {
  const d = new Driver();
  d.accept(3);
  // tracks complete out of order: the join waits, then receives them ordered by track index
  assert.deepEqual(d.ok("prepare_track[2]").lines, ["progress prepare_track[2] succeeded #1"]);
  assert.deepEqual(d.ok("prepare_track[0]").lines, ["progress prepare_track[0] succeeded #1"]);
  assert.deepEqual(d.ok("prepare_track[1]").lines, [
    "progress prepare_track[1] succeeded #1",
    `run plan_speech #1 job=${job("plan_speech", "-")}`,
    "progress plan_speech started #1",
  ]);
  const plan = d.run("plan_speech").input as { prepared: { track_index: number }[]; expected_tracks: number[] };
  assert.deepEqual(plan.prepared.map((p) => p.track_index), [0, 1, 2]);
  assert.deepEqual(plan.expected_tracks, [0, 1, 2]);

  assert.deepEqual(d.ok("plan_speech").lines, [
    "progress plan_speech succeeded #1",
    `run transcribe_track[0] #1 job=${job("transcribe_track", 0)}`,
    "progress transcribe_track[0] started #1",
    `run transcribe_track[1] #1 job=${job("transcribe_track", 1)}`,
    "progress transcribe_track[1] started #1",
    `run transcribe_track[2] #1 job=${job("transcribe_track", 2)}`,
    "progress transcribe_track[2] started #1",
  ]);
  assert.deepEqual((d.run("transcribe_track[1]").input as { track: { track_index: number } }).track.track_index, 1);

  d.ok("transcribe_track[1]");
  d.ok("transcribe_track[2]");
  assert.deepEqual(d.ok("transcribe_track[0]").lines, [
    "progress transcribe_track[0] succeeded #1",
    `run merge_transcripts #1 job=${job("merge_transcripts", "-")}`,
    "progress merge_transcripts started #1",
  ]);
  const merge = d.run("merge_transcripts").input as { transcripts: { track_index: number }[] };
  assert.deepEqual(merge.transcripts.map((t) => t.track_index), [0, 1, 2]);

  assert.deepEqual(d.ok("merge_transcripts").lines.slice(1), [`run suppress_bleed #1 job=${job("suppress_bleed", "-")}`, "progress suppress_bleed started #1"]);
  assert.deepEqual(d.ok("suppress_bleed").lines.slice(1), [`run detect_topics #1 job=${job("detect_topics", "-")}`, "progress detect_topics started #1"]);
  assert.deepEqual(d.ok("detect_topics").lines, [
    "progress detect_topics succeeded #1",
    `run generate_title #1 job=${job("generate_title", "-")}`,
    "progress generate_title started #1",
    `run generate_summary #1 job=${job("generate_summary", "-")}`,
    "progress generate_summary started #1",
    `run extract_action_items #1 job=${job("extract_action_items", "-")}`,
    "progress extract_action_items started #1",
    `run mixdown #1 job=${job("mixdown", "-")}`,
    "progress mixdown started #1",
  ]);
  assert.deepEqual(d.ok("mixdown").lines, ["progress mixdown succeeded #1"]);
  assert.deepEqual(d.ok("generate_title").lines, ["progress generate_title succeeded #1"]);
  assert.deepEqual(d.ok("extract_action_items").lines, ["progress extract_action_items succeeded #1"]);
  assert.deepEqual(d.ok("generate_summary").lines, [
    "progress generate_summary succeeded #1",
    `run finalize #1 job=${job("finalize", "-")}`,
    "progress finalize started #1",
  ]);
  const fin = d.run("finalize").input as { title: string; audio_key: string; words: unknown[]; duration: number; action_items: unknown[] };
  assert.equal(fin.title, "Greetings all round");
  assert.deepEqual(fin.action_items, [{ text: "Send hello0 the notes.", speaker: 0, start: 0.1 }]);
  assert.equal(fin.audio_key, "recordings/rec1/bullmq/mixdown.mp3");
  assert.equal(fin.words.length, 6);
  assert.equal(fin.duration, 7); // track 2: offset 1 + 6 s

  const last = d.ok("finalize");
  assert.deepEqual(last.lines, ["progress finalize succeeded #1", "progress pipeline completed", 'finish "Greetings all round" words=6']);
  assert.equal(d.state.status, "succeeded");
  assert.deepEqual(d.state.result!.participants.map((p) => p.speaker), [0, 1, 2]);
  assert.deepEqual(d.state.result!.action_items, fin.action_items);
  assert.ok(d.state.log.every((l) => l.outcome === "applied"));
});

test("a duplicate event id is ignored with a note and leaves tasks unchanged", () => {
  const d = new Driver();
  d.accept(2);
  d.ok("prepare_track[0]");
  const before = d.state;
  const again = d.ok("prepare_track[0]");
  assert.equal(again.outcome, "ignored");
  assert.match(again.note!, /duplicate event id \(first handled as event #2\)/);
  assert.deepEqual(again.instructions, []);
  assert.deepEqual(again.state.tasks, before.tasks);
  assert.equal(again.state.seq, before.seq + 1);
  assert.equal(again.state.log.at(-1)!.outcome, "ignored");
});

test("a second result for a finished task under a new id is ignored; a result for a later attempt is rejected", () => {
  const d = new Driver();
  d.accept(2);
  d.ok("prepare_track[0]");
  const late = d.ok("prepare_track[0]", { id: "redelivered" });
  assert.equal(late.outcome, "ignored");
  assert.match(late.note!, /after the task was already succeeded/);
  const future = d.ok("prepare_track[1]", { id: "from-the-future", attempt: 5 });
  assert.equal(future.outcome, "rejected");
  assert.match(future.note!, /attempt 5, but only 1 started/);
  assert.equal(d.state.tasks["prepare_track[1]"]!.status, "running");
});

test("events before RecordingAccepted, for unknown tasks, or for tasks not yet started are rejected or ignored deterministically", () => {
  const d = new Driver();
  const early = d.send({ type: "StepSucceeded", id: "early", step: "prepare_track", track_index: 0, attempt: 1, output: {} });
  assert.equal(early.outcome, "rejected");
  assert.equal(early.note, "no recording accepted yet");
  assert.equal(d.state.status, "new");

  d.accept(2);
  const unknown = d.send({ type: "StepSucceeded", id: "t9", step: "transcribe_track", track_index: 9, attempt: 1, output: {} });
  assert.equal(unknown.outcome, "rejected");
  assert.equal(unknown.note, "no task transcribe_track[9] in this pipeline");
  const notPerTrack = d.send({ type: "StepFailed", id: "m1", step: "merge_transcripts", track_index: 1, attempt: 1, error: "x", retryable: true });
  assert.equal(notPerTrack.note, "no task merge_transcripts[1] in this pipeline");

  // a transcription result arriving before plan_speech ran (e.g. a left-over job of an earlier run)
  const stray = d.send({ type: "StepSucceeded", id: "stray", step: "transcribe_track", track_index: 0, attempt: 1, output: {} });
  assert.equal(stray.outcome, "ignored");
  assert.match(stray.note!, /never started/);
  assert.deepEqual(stray.instructions, []);
  assert.deepEqual(d.state.log.map((l) => l.outcome), ["rejected", "applied", "rejected", "rejected", "ignored"]);
});

test("the same RecordingAccepted input twice is ignored; a different input is rejected", () => {
  const d = new Driver();
  d.accept(2);
  assert.equal(d.accept(2, "accept-again").outcome, "ignored");
  const other = d.accept(3, "accept-other");
  assert.equal(other.outcome, "rejected");
  assert.equal(other.note, "a different input was already accepted for this run");
  assert.equal(d.state.input!.tracks.length, 2);
});

test("a retryable failure backs off exponentially, and retries exhausted give up on the track and the meeting goes on without it", () => {
  const d = new Driver({ max_attempts: 3, base_delay_ms: 100, max_delay_ms: 150 });
  d.accept(2);
  d.ok("prepare_track[0]");
  d.ok("prepare_track[1]");
  d.ok("plan_speech");
  d.ok("transcribe_track[0]");

  assert.deepEqual(d.fail("transcribe_track[1]", "decoder crashed", true).lines, [
    "progress transcribe_track[1] retrying #1: attempt 1 of 3 failed: decoder crashed; next in 100 ms",
    "retry transcribe_track[1] #2 in 100ms",
  ]);
  assert.equal(d.state.tasks["transcribe_track[1]"]!.status, "retry_wait");
  // a timer for the wrong attempt is ignored
  assert.equal(d.timer("transcribe_track[1]", 3, "early-timer").outcome, "ignored");
  assert.deepEqual(d.timer("transcribe_track[1]", 2).lines, [
    `run transcribe_track[1] #2 job=${job("transcribe_track", 1, 2)}`,
    "progress transcribe_track[1] started #2",
  ]);
  // the same timer firing twice (new id) does not start a third attempt
  const dupTimer = d.timer("transcribe_track[1]", 2, "timer-again");
  assert.equal(dupTimer.outcome, "ignored");
  assert.match(dupTimer.note!, /the task is running/);

  assert.deepEqual(d.fail("transcribe_track[1]", "decoder crashed", true).lines, [
    "progress transcribe_track[1] retrying #2: attempt 2 of 3 failed: decoder crashed; next in 150 ms",
    "retry transcribe_track[1] #3 in 150ms",
  ]);
  d.timer("transcribe_track[1]", 3);
  // the third failure gives up on track 1: merge runs with what the other track left
  assert.deepEqual(d.fail("transcribe_track[1]", "[speech_recognition_failed] the speech decoder failed", true).lines, [
    "progress transcribe_track[1] failed #3: [speech_recognition_failed] the speech decoder failed",
    `run merge_transcripts #1 job=${job("merge_transcripts", "-")}`,
    "progress merge_transcripts started #1",
  ]);
  assert.equal(d.state.status, "running");
  const t1 = d.state.tasks["transcribe_track[1]"]!;
  assert.equal(t1.status, "failed");
  assert.deepEqual(t1.output, { track_index: 1, failed: { step: "transcribe_track", code: "speech_recognition_failed", message: "the speech decoder failed" } });
  assert.deepEqual(t1.attempts.map((a) => [a.attempt, a.status, a.job_id]), [
    [1, "failed", job("transcribe_track", 1, 1)],
    [2, "failed", job("transcribe_track", 1, 2)],
    [3, "failed", job("transcribe_track", 1, 3)],
  ]);
  assert.deepEqual(
    story(d.state, "transcribe_track[1]").transitions.map((t) => `${t.from}→${t.to}`),
    ["waiting→running", "running→retry_wait", "retry_wait→running", "running→retry_wait", "retry_wait→running", "running→failed"],
  );
  // merge gets the failure in the track's place; the Result says which track is missing and why
  const mergeInput = d.run("merge_transcripts").input as { transcripts: unknown[] };
  assert.deepEqual(mergeInput.transcripts.map((t) => (t as { failed?: unknown }).failed !== undefined), [false, true]);
  const finish = runToEnd(d);
  assert.equal(d.state.status, "succeeded");
  const result = (finish.instructions.find((i) => i.type === "Finish") as { result: Result }).result;
  assert.deepEqual(new Set(result.words.map((w) => w.speaker)), new Set([0]));
  assert.deepEqual(result.tracks, [
    { speaker: 0, name: "Speaker 0", status: "ok" },
    { speaker: 1, name: "Speaker 1", status: "failed", error: { step: "transcribe_track", code: "speech_recognition_failed", message: "the speech decoder failed" } },
  ]);
});

test("a non-retryable failure of one track gives up on it at once; a late result for it is ignored; the others go on", () => {
  const d = new Driver();
  d.accept(3);
  for (const i of [0, 1, 2]) d.ok(`prepare_track[${i}]`);
  d.ok("plan_speech");
  const r = d.fail("transcribe_track[2]", "unsupported language", false);
  assert.deepEqual(r.lines, ["progress transcribe_track[2] failed #1: unsupported language"]);
  assert.equal(d.state.status, "running");
  assert.equal(d.state.tasks["transcribe_track[0]"]!.status, "running");
  const late = d.ok("transcribe_track[2]");
  assert.equal(late.outcome, "ignored");
  assert.match(late.note!, /after the task was already failed/);
  d.ok("transcribe_track[0]");
  d.ok("transcribe_track[1]");
  const merged = d.ok("merge_transcripts");
  assert.equal(merged.outcome, "applied");
  const out = d.state.tasks["merge_transcripts"]!.output as { track_count: number; track_status: { track_index: number; status: string; failed?: { code: string } }[] };
  assert.equal(out.track_count, 2);
  assert.deepEqual(out.track_status.map((t) => `${t.track_index}:${t.status}:${t.failed?.code ?? ""}`), ["0:ok:", "1:ok:", "2:failed:track_failed"]);
});

test("a track that cannot be prepared leaves the plan: its transcription is skipped, the Result lists it as failed", () => {
  const d = new Driver();
  d.accept(3);
  d.ok("prepare_track[0]");
  d.fail("prepare_track[1]", "[audio_decode_failed] the audio could not be decoded", false);
  const plan = d.ok("prepare_track[2]");
  assert.ok(plan.lines.includes(`run plan_speech #1 job=${job("plan_speech", "-")}`));
  const afterPlan = d.ok("plan_speech");
  // only the prepared tracks are transcribed; track 1's task is skipped, never run
  assert.deepEqual(afterPlan.lines.filter((l) => l.startsWith("run ")), [
    `run transcribe_track[0] #1 job=${job("transcribe_track", 0)}`,
    `run transcribe_track[2] #1 job=${job("transcribe_track", 2)}`,
  ]);
  assert.equal(d.state.tasks["transcribe_track[1]"]!.status, "skipped");
  const planOut = d.state.tasks["plan_speech"]!.output as { tracks: { track_index: number }[]; failed_tracks: { track_index: number }[] };
  assert.deepEqual(planOut.tracks.map((t) => t.track_index), [0, 2]);
  assert.deepEqual(planOut.failed_tracks.map((t) => t.track_index), [1]);
  d.ok("transcribe_track[0]");
  d.ok("transcribe_track[2]");
  const mergeInput = d.run("merge_transcripts").input as { transcripts: unknown[]; failed_tracks: unknown[] };
  assert.equal(mergeInput.transcripts.length, 2, "a skipped task is not in the join, as under Conductor");
  assert.equal(mergeInput.failed_tracks.length, 1);
  const finish = runToEnd(d);
  const result = (finish.instructions.find((i) => i.type === "Finish") as { result: Result }).result;
  assert.deepEqual(result.tracks!.map((t) => `${t.speaker}:${t.status}:${t.error?.step ?? ""}:${t.error?.code ?? ""}`), [
    "0:ok::",
    "1:failed:prepare_track:audio_decode_failed",
    "2:ok::",
  ]);
  assert.deepEqual([...new Set(result.words.map((w) => w.speaker))].sort(), [0, 2]);
});

test("when every track fails the meeting fails, at the step after the fork, with every track's reason", () => {
  const d = new Driver();
  d.accept(2);
  d.ok("prepare_track[0]");
  d.ok("prepare_track[1]");
  d.ok("plan_speech");
  d.fail("transcribe_track[0]", "[speech_recognition_failed] the speech decoder failed", false);
  d.fail("transcribe_track[1]", "[speech_recognition_failed] the speech decoder failed", false);
  // the test driver answers with the step's own work, as a worker would: merge finds no track left
  assert.throws(() => outputFor(d.run("merge_transcripts")), (e: unknown) => e instanceof Error && e.name === "AllTracksFailedError" && /track 0: the speech decoder failed/.test(e.message));
  d.fail("merge_transcripts", "[all_tracks_failed] no track could be processed", false);
  assert.equal(d.state.status, "failed");
  assert.match(d.state.failure!.reason, /merge_transcripts failed \(not retryable\) on attempt 1: \[all_tracks_failed\]/);
  // every prepare failing fails the plan the same way
  const p = new Driver();
  p.accept(1);
  p.fail("prepare_track[0]", "[not_audio] this is not audio", false);
  assert.throws(() => outputFor(p.run("plan_speech")), /no track could be processed: track 0: this is not audio \(not_audio\)/);
});

/** Answers every RunStep the driver has not answered yet until the run ends; returns the last answer. */
function runToEnd(d: Driver): ReturnType<Driver["ok"]> {
  let last: ReturnType<Driver["ok"]> | undefined;
  for (let guard = 0; guard < 50 && d.state.status === "running"; guard++) {
    const pending = [...d.runs.entries()].find(([key]) => d.state.tasks[key]!.status === "running");
    if (!pending) break;
    last = d.ok(pending[0]);
  }
  assert.ok(last, "nothing was left to run");
  return last;
}

test("an output that breaks its contract is a non-retryable failure naming the field", () => {
  const d = new Driver();
  d.accept(1);
  d.ok("prepare_track[0]");
  const r = d.ok("plan_speech", { output: { duration: -1, tracks: [] } });
  assert.equal(d.state.status, "failed");
  assert.match(r.lines.at(-1)!, /^fail plan_speech failed \(not retryable\) on attempt 1: invalid output: duration: /);
  // a plan that forgets a track is refused too (the join must be complete)
  const d2 = new Driver();
  d2.accept(2);
  d2.ok("prepare_track[0]");
  d2.ok("prepare_track[1]");
  const run = d2.run("plan_speech");
  const plan = outputFor(run) as { tracks: unknown[] };
  const r2 = d2.ok("plan_speech", { output: { ...plan, tracks: plan.tracks.slice(0, 1) } });
  assert.match(r2.lines.at(-1)!, /invalid output: plan covers tracks \[0\], expected \[0, 1\]/);
});

test("cancellation fails a running pipeline once; later cancellations are ignored", () => {
  const d = new Driver();
  d.accept(1);
  const r = d.send({ type: "RecordingCancelled", id: "cancel-1", reason: "shutdown" });
  assert.deepEqual(r.lines, ["progress pipeline failed: cancelled: shutdown", "fail cancelled: shutdown"]);
  assert.equal(d.send({ type: "RecordingCancelled", id: "cancel-2", reason: "again" }).outcome, "ignored");
});

test("handle never mutates the state it is given", () => {
  const d = new Driver();
  d.accept(2);
  const frozen = structuredClone(d.state);
  const snapshot = d.state;
  handle(snapshot, { type: "StepSucceeded", id: "x", step: "prepare_track", track_index: 0, attempt: 1, output: outputFor(d.run("prepare_track[0]")) });
  assert.deepEqual(snapshot, frozen);
});

test("a whole run with a retry through deep-frozen states: no state, output or input is ever changed after it was handed out", () => {
  const deepFreeze = <T>(o: T): T => {
    if (o && typeof o === "object" && !Object.isFrozen(o)) {
      Object.freeze(o);
      for (const v of Object.values(o)) deepFreeze(v);
    }
    return o;
  };
  let state = deepFreeze(initialState());
  const pending: RunStep[] = [];
  const feed = (e: PipelineEventInput): void => {
    const r = handle(state, e);
    state = deepFreeze(r.state);
    for (const i of r.instructions) if (i.type === "RunStep") pending.push(deepFreeze(i));
  };
  feed({ type: "RecordingAccepted", id: "a", input: pipelineInput(2) });
  let failedOnce = false;
  while (pending.length) {
    const run = pending.shift()!;
    const base = { step: run.step, ...(run.track_index === undefined ? {} : { track_index: run.track_index }), attempt: run.attempt };
    if (run.step === "merge_transcripts" && !failedOnce) {
      failedOnce = true;
      feed({ type: "StepFailed", id: `f:${run.job_id}`, ...base, error: "flaky", retryable: true });
      feed({ type: "RetryTimerFired", id: `t:${run.job_id}`, ...base, attempt: 2 });
      continue;
    }
    feed({ type: "StepSucceeded", id: `ok:${run.job_id}`, ...base, output: outputFor(run) });
  }
  assert.equal(state.status, "succeeded");
  assert.equal(state.tasks.merge_transcripts!.attempt, 2);
  assert.equal(state.result!.words.length, 4);
});

test("malformed events throw EventSchemaError; illegal transitions throw with the task's history", () => {
  assert.throws(() => handle(initialState(), { type: "StepSucceeded", id: "", step: "nope" } as never), EventSchemaError);
  const d = new Driver();
  d.accept(1);
  d.ok("prepare_track[0]");
  const task = structuredClone(d.state.tasks["prepare_track[0]"]!);
  assert.throws(
    () => transitionTask(task, "running", { seq: 99, event_id: "bad" }),
    (e: unknown) =>
      e instanceof IllegalTransitionError &&
      /illegal transition of task prepare_track\[0\]: succeeded → running on event bad/.test(e.message) &&
      /#2 ok:rec1\/bullmq\/prepare_track\/0\/1: running → succeeded/.test(e.message),
  );
});

test("replaying the event log (through JSON, as stored) rebuilds the exact state and instructions", () => {
  const d = new Driver({ base_delay_ms: 10 });
  const live: Instruction[] = [];
  const rec = (r: HandleResult) => live.push(...r.instructions);
  rec(d.accept(2));
  rec(d.ok("prepare_track[1]"));
  rec(d.ok("prepare_track[1]")); // duplicate
  rec(d.ok("prepare_track[0]"));
  rec(d.ok("plan_speech"));
  rec(d.fail("transcribe_track[0]", "flaky", true));
  rec(d.timer("transcribe_track[0]", 2));
  rec(d.ok("transcribe_track[0]"));
  rec(d.ok("transcribe_track[1]"));
  for (const k of ["merge_transcripts", "suppress_bleed", "detect_topics", "generate_title", "generate_summary", "extract_action_items", "mixdown", "finalize"]) rec(d.ok(k));
  assert.equal(d.state.status, "succeeded");

  const stored = JSON.parse(JSON.stringify(d.events)) as PipelineEventInput[];
  const again = replay(stored);
  assert.deepEqual(again.state, d.state);
  assert.deepEqual(again.instructions, live);
  assert.deepEqual(again.steps.map((s) => s.outcome).filter((o) => o !== "applied"), ["ignored"]);
  // and the state itself survives a JSON round trip (it is what gets stored)
  assert.deepEqual(JSON.parse(JSON.stringify(d.state)), d.state);
});

test("resume re-issues running jobs under the same job ids and re-arms pending retries", () => {
  const d = new Driver({ base_delay_ms: 40 });
  d.accept(2);
  d.ok("prepare_track[0]");
  d.ok("prepare_track[1]");
  d.ok("plan_speech");
  d.fail("transcribe_track[0]", "flaky", true);
  const rebuilt = replay(d.events).state;
  const again = resume(rebuilt, "restart");
  assert.deepEqual(again.map(line), ["retry transcribe_track[0] #2 in 40ms", `run transcribe_track[1] #1 job=${job("transcribe_track", 1)}`]);
  const run = again[1] as RunStep;
  assert.deepEqual(run.input, d.run("transcribe_track[1]").input);
  d.timer("transcribe_track[0]", 2);
  d.finishFromTranscribe(2);
  assert.equal(d.state.status, "succeeded");
  assert.deepEqual(resume(d.state), []);
});
