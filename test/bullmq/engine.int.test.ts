/**
 * The BullMQ engine on real Redis and Postgres, running the real steps on short
 * espeak-ng tracks: a run end to end, its event log replayed to the stored final state,
 * a failing track retried and failed by name, and a re-run that reuses finished jobs
 * (deterministic job ids: a duplicate enqueue is a no-op).
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Job, Queue } from "bullmq";
import type { ProgressEvent } from "../../pipeline/contracts/index.ts";
import { PipelineStepError } from "../../workers/inprocess/inprocess.ts";
import { jobId, replay } from "../../pipeline/state/index.ts";
import { queueName } from "../../workers/bullmq/queues.ts";
import { replayCommand } from "../../bin/commands/replay.ts";
import { bullmqHarness, uid, type Harness } from "./harness.ts";
import { stageSpokenRecording, TWO_SPEAKERS } from "./fixture.ts";

let h: Harness;
before(async () => {
  h = await bullmqHarness({ startWorkers: true, tag: "engine" });
});
after(async () => {
  await h?.close();
});

test("a recording runs end to end on BullMQ and its event log replays to the stored final state", async () => {
  const recordingId = `rec-${uid()}`;
  const input = await stageSpokenRecording(h.storage, h.dir, recordingId, TWO_SPEAKERS);
  const progress: ProgressEvent[] = [];
  const t0 = performance.now();
  const { result, run } = await h.engine.run(input, { onProgress: (e) => progress.push(e) });
  const wallMs = performance.now() - t0;

  assert.equal(run.engine, "bullmq");
  assert.ok(run.workflow_id);
  assert.ok(result.words.length >= 8, `only ${result.words.length} words`);
  assert.deepEqual([...new Set(result.words.map((w) => w.speaker))].sort(), [0, 1]);
  assert.deepEqual(result.participants, [
    { speaker: 0, name: "Alice" },
    { speaker: 1, name: "Bob" },
  ]);
  assert.ok(result.title.length > 0);
  assert.ok(result.topics.length >= 1);

  const stored = await h.eventLog.run(run.workflow_id!);
  assert.equal(stored?.status, "succeeded");
  const events = await h.eventLog.events(run.workflow_id!);
  const rebuilt = replay(events.map((e) => e.event));
  assert.deepEqual(rebuilt.state, stored!.final_state, "replayed state differs from the stored final state");
  assert.equal(rebuilt.state.status, "succeeded");
  assert.deepEqual(rebuilt.state.result, result);

  // one applied result per task: 2 prepare + plan + 2 transcribe + merge + bleed + topics + title + summary + action items + mixdown + finalize
  const applied = events.filter((e) => e.event.type === "StepSucceeded" && e.outcome === "applied");
  assert.equal(applied.length, 13);
  assert.equal(new Set(applied.map((e) => e.event.id)).size, 13);
  assert.deepEqual((rebuilt.state.tasks.extract_action_items!.output as { action_items: unknown }).action_items, result.action_items);
  // outputs were written in the bullmq namespace only
  const derived = (await h.storage.list(`recordings/${recordingId}/`)).filter((k) => !k.includes("/tracks/"));
  assert.ok(derived.length > 0);
  assert.ok(derived.every((k) => k.startsWith(`recordings/${recordingId}/bullmq/`)), derived.join(", "));
  assert.deepEqual(progress.at(-1)?.step, "pipeline");
  assert.deepEqual(progress.at(-1)?.status, "completed");
  // every step records the worker that ran it
  assert.ok(Object.values(rebuilt.state.tasks).every((t) => t.attempts.at(-1)?.worker_id?.includes("/")));
  process.stderr.write(`bullmq end-to-end: ${Math.round(wallMs)} ms, ${events.length} events\n`);

  // `trackscribe replay` on the same log says so too, and prints the instructions
  const saved = { url: process.env.DATABASE_URL, schema: process.env.DATABASE_SCHEMA };
  Object.assign(process.env, h.db.env);
  try {
    let text = "";
    assert.equal(await replayCommand(recordingId, { namespace: "bullmq" }, (s) => void (text += s)), 0);
    assert.match(text, /Replayed state equals the run's stored final state\./);
    assert.match(text, /RunStep transcribe_track\[1\] attempt 1 job /);
    assert.match(text, /Finish "/);
    let json = "";
    await replayCommand(recordingId, { json: true }, (s) => void (json += s));
    const doc = JSON.parse(json) as { matches_final_state: boolean; state: unknown; instructions: unknown[] };
    assert.equal(doc.matches_final_state, true);
    assert.deepEqual(doc.state, stored!.final_state);
    assert.equal(doc.instructions.length, rebuilt.instructions.length);
  } finally {
    for (const [k, v] of [["DATABASE_URL", saved.url], ["DATABASE_SCHEMA", saved.schema]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
});

test("re-running the same recording reuses its finished jobs: no step runs twice", async () => {
  const recordingId = `rec-${uid()}`;
  const input = await stageSpokenRecording(h.storage, h.dir, recordingId, TWO_SPEAKERS.slice(0, 1));
  const first = await h.engine.run(input);
  const id = jobId(recordingId, "bullmq", "transcribe_track", 0, 1);
  const queue = new Queue(queueName("transcribe_track"), { connection: h.redis, prefix: h.prefix });
  try {
    const before = await Job.fromId(queue, id);
    assert.ok(before?.finishedOn, "the first run's transcription job is kept");
    const t0 = performance.now();
    const second = await h.engine.run(input);
    const ms = performance.now() - t0;
    const afterJob = await Job.fromId(queue, id);
    assert.equal(afterJob?.finishedOn, before.finishedOn, "the transcription job was run again");
    assert.deepEqual(second.result, first.result);
    assert.notEqual(second.run.workflow_id, first.run.workflow_id);
    process.stderr.write(`re-run from finished jobs: ${Math.round(ms)} ms\n`);
  } finally {
    await queue.close();
  }
});

test("a track whose source is missing is retried with back-off, then given up: the run completes without it; every track missing fails the run", async () => {
  const recordingId = `rec-${uid()}`;
  const input = await stageSpokenRecording(h.storage, h.dir, recordingId, TWO_SPEAKERS);
  input.tracks[1]!.source_key = `recordings/${recordingId}/tracks/missing.wav`;
  const { result } = await h.engine.run(input);
  // partial results: the other track's words, and the missing one listed as failed with its reason
  assert.ok(result.words.length > 0);
  assert.deepEqual([...new Set(result.words.map((w) => w.speaker))], [0]);
  assert.deepEqual(result.tracks!.map((t) => [t.speaker, t.status, t.error?.step, t.error?.code]), [
    [0, "ok", undefined, undefined],
    [1, "failed", "prepare_track", "object_missing"],
  ]);

  const run = await h.eventLog.latestRun(recordingId, "bullmq");
  assert.equal(run?.status, "succeeded");
  const events = await h.eventLog.events(run!.run_id);
  const failures = events.filter((e) => e.event.type === "StepFailed").map((e) => e.event.id);
  assert.deepEqual(failures, [1, 2, 3].map((a) => `result:${jobId(recordingId, "bullmq", "prepare_track", 1, a)}`));
  const timers = events.filter((e) => e.event.type === "RetryTimerFired").length;
  assert.equal(timers, 2);
  assert.deepEqual(replay(events.map((e) => e.event)).state, run!.final_state);

  // every track missing: nothing is left to plan, the run fails naming the step and why
  const allId = `rec-${uid()}`;
  const all = await stageSpokenRecording(h.storage, h.dir, allId, TWO_SPEAKERS);
  for (const t of all.tracks) t.source_key = `recordings/${allId}/tracks/missing-${t.track_index}.wav`;
  const err = await h.engine.run(all).then(
    () => assert.fail("the run should fail"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof PipelineStepError, String(err));
  assert.equal(err.step, "plan_speech");
  assert.match(err.message, /no track could be processed/);
});