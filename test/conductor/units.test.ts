import assert from "node:assert/strict";
import { test } from "node:test";
import { readFileSync } from "node:fs";
import { checkWorkflow } from "../../workflows/check.ts";
import { buildWorkflow, formatWorkflowJson, WORKFLOW_JSON_PATH } from "../../workflows/build.ts";
import { forkPlanFor } from "../../workers/conductor/hooks.ts";
import { loadTaskDefs, loadWorkflowDef } from "../../workers/conductor/definitions.ts";
import { CONDUCTOR_TASKS } from "../../workers/conductor/host.ts";
import { buildForkPlan, ForkPlanError, validateForkPlan } from "../../workers/conductor/fork.ts";
import { ABANDONED_GRACE_MS, abandonedTask, isStalled, startReconciler, taskStates } from "../../workers/conductor/reconciler.ts";
import { pino } from "pino";
import type { ConductorApi } from "../../adapters/conductor/client.ts";
import { auditPollers, inspectWorkflow } from "../../workers/conductor/audit.ts";
import { WorkflowRecord } from "../../adapters/conductor/client.ts";
import { createStepExecutor } from "../../workers/child/executor.ts";
import { StepInputError, type StepDeps } from "../../pipeline/steps/index.ts";

test("the shipped workflow passes the wiring check", () => {
  assert.deepEqual(checkWorkflow(loadWorkflowDef() as never, loadTaskDefs(), CONDUCTOR_TASKS), []);
});

test("the committed workflow JSON is what `trackscribe workflows build` generates from the graph", () => {
  assert.equal(readFileSync(WORKFLOW_JSON_PATH, "utf8"), formatWorkflowJson(buildWorkflow()), "run `trackscribe workflows build`");
  assert.deepEqual(loadWorkflowDef(), buildWorkflow());
});

test("the generated workflow: every step once as a task, per-track steps as dynamic forks with their JOIN, the parallel stage as one fork", () => {
  const wf = buildWorkflow() as { tasks: { name: string; taskReferenceName: string; type: string; forkTasks?: { name: string }[][]; joinOn?: string[]; inputParameters?: Record<string, string> }[]; outputParameters: Record<string, string> };
  assert.deepEqual(
    wf.tasks.map((t) => `${t.taskReferenceName}:${t.type}`),
    [
      "plan_tracks:SIMPLE",
      "prepare_fork:FORK_JOIN_DYNAMIC",
      "prepare_join:JOIN",
      "plan_speech:SIMPLE",
      "transcribe_fork:FORK_JOIN_DYNAMIC",
      "transcribe_join:JOIN",
      "merge_transcripts:SIMPLE",
      "suppress_bleed:SIMPLE",
      "detect_topics:SIMPLE",
      "summaries_fork:FORK_JOIN",
      "summaries_join:JOIN",
      "finalize:SIMPLE",
    ],
  );
  const fork = wf.tasks.find((t) => t.type === "FORK_JOIN")!;
  assert.deepEqual(fork.forkTasks!.map((b) => b.map((t) => t.name)), [["generate_title"], ["generate_summary"], ["extract_action_items"], ["mixdown"]]);
  assert.deepEqual(wf.tasks.find((t) => t.taskReferenceName === "summaries_join")!.joinOn, ["generate_title", "generate_summary", "extract_action_items", "mixdown"]);
  assert.equal(fork.forkTasks![2]![0]!.name, "extract_action_items");
  assert.deepEqual((fork.forkTasks![2]![0]! as { inputParameters?: Record<string, string> }).inputParameters, {
    language: "${workflow.input.language}",
    words: "${suppress_bleed.output.words}",
  });
  assert.equal(wf.tasks.find((t) => t.name === "merge_transcripts")!.inputParameters!.transcripts, "${transcribe_join.output}");
  assert.equal(wf.outputParameters.action_items, "${finalize.output.action_items}");
  assert.deepEqual(checkWorkflow(wf as never, loadTaskDefs(), CONDUCTOR_TASKS), []);
});

test("the fork lists are built from the graph: the forked task's input as the other engines build it", () => {
  const tracks = [0, 1].map((i) => ({ track_index: i, participant: `P${i}`, offset_seconds: 0, source_key: `k/${i}.wav` }));
  const input = { recording_id: "r1", namespace: "conductor", language: "en", tracks };
  const plan = {
    duration: 3,
    track_seconds: 6,
    planned_seconds: 2,
    tracks: [1, 0].map((i) => ({ track_index: i, offset_seconds: 0, pcm_key: `p/${i}.wav`, envelope_key: `p/${i}.env`, frame_seconds: 0.02, duration_seconds: 3, spans: i === 0 ? [{ start: 0, end: 2 }] : [] })),
  };
  const fork = forkPlanFor("transcribe_track", input, { plan_speech: plan });
  assert.deepEqual(fork.fork_tasks.map((t) => t.taskReferenceName), ["transcribe_track_1", "transcribe_track_0"]);
  // the meeting's tracks go along (participants' names: a speech server's prompt)
  assert.deepEqual(fork.fork_inputs.transcribe_track_0, { recording_id: "r1", namespace: "conductor", language: "en", track: plan.tracks[1], speech_tracks: 1, participants: tracks });
  assert.throws(() => forkPlanFor("transcribe_track", input, {}), /output of plan_speech is not available/);
});

test("a renamed output field fails the wiring check, naming task and field", () => {
  const wf = JSON.parse(JSON.stringify(loadWorkflowDef()).replace("${suppress_bleed.output.words}", "${suppress_bleed.output.kept_words}"));
  const problems = checkWorkflow(wf, loadTaskDefs(), CONDUCTOR_TASKS);
  assert.ok(problems.some((p) => /suppress_bleed\.output\.kept_words.*suppress_bleed's output schema/.test(p)), problems.join("\n"));
});

test("wiring check catches unknown workflow inputs, missing required inputs, missing defs and workers", () => {
  const wf = loadWorkflowDef() as unknown as { tasks: { taskReferenceName: string; inputParameters?: Record<string, unknown> }[] };
  const copy = JSON.parse(JSON.stringify(wf)) as typeof wf;
  const plan = copy.tasks.find((t) => t.taskReferenceName === "plan_speech")!;
  plan.inputParameters!.language = "${workflow.input.lang}";
  delete plan.inputParameters!.expected_tracks;
  const problems = checkWorkflow(copy as never, loadTaskDefs().filter((d) => d.name !== "finalize"), CONDUCTOR_TASKS.filter((t) => t !== "mixdown"));
  const text = problems.join("\n");
  assert.match(text, /workflow\.input\.lang.*not a field of the workflow input/);
  assert.match(text, /plan_speech: inputParameters miss required input key\(s\) expected_tracks/);
  assert.match(text, /no task definition for 'finalize'/);
  assert.match(text, /no worker serves 'mixdown'/);
});

test("task definitions: explicit timeouts, response ≤ total, exponential retries, transcribe longest", () => {
  const defs = loadTaskDefs();
  for (const d of defs) {
    assert.ok(d.responseTimeoutSeconds > 0 && d.responseTimeoutSeconds <= d.timeoutSeconds, d.name);
    assert.equal(d.retryLogic, "EXPONENTIAL_BACKOFF", d.name);
    assert.ok(d.retryCount >= 1, d.name);
  }
  const t = defs.find((d) => d.name === "transcribe_track")!;
  assert.equal(Math.max(...defs.map((d) => d.timeoutSeconds)), t.timeoutSeconds);
});

test("fork plans: refs unique and matching, reserved keys refused, expressions escaped", () => {
  const plan = buildForkPlan("prepare_track", [
    { track_index: 10, input: { track: { participant: "Eve ${workflow.input.secret}" } } },
    { track_index: 2, input: { track: { participant: "Bob" } } },
  ]);
  assert.deepEqual(plan.fork_tasks.map((t) => t.taskReferenceName), ["prepare_track_10", "prepare_track_2"]);
  assert.deepEqual(Object.keys(plan.fork_inputs).sort(), ["prepare_track_10", "prepare_track_2"]);
  assert.equal((plan.fork_inputs.prepare_track_10!.track as { participant: string }).participant, "Eve $${workflow.input.secret}");
  assert.throws(() => buildForkPlan("t", [{ track_index: 0, input: { optional: true } }]), /task fields: optional/);
  assert.throws(
    () => validateForkPlan({ fork_tasks: [{ name: "t", taskReferenceName: "t_0", type: "SIMPLE" }], fork_inputs: { t_1: {} } }),
    (e: unknown) => e instanceof ForkPlanError && /no input for \[t_0\].*input without task \[t_1\]/.test(e.message),
  );
  assert.throws(
    () => validateForkPlan({ fork_tasks: [{ name: "t", taskReferenceName: "t_0", type: "SIMPLE" }, { name: "t", taskReferenceName: "t_0", type: "SIMPLE" }], fork_inputs: { t_0: {} } }),
    /duplicate fork reference names: t_0/,
  );
  assert.throws(() => buildForkPlan("t", []), /no tracks/);
});

const wf = (tasks: { status: string; taskType?: string; updateTime: number; responseTimeoutSeconds?: number; callbackAfterSeconds?: number }[]): WorkflowRecord =>
  WorkflowRecord.parse({
    workflowId: "w",
    status: "RUNNING",
    startTime: 1000,
    updateTime: 1000,
    tasks: tasks.map((t, i) => ({ taskId: `t${i}`, taskType: t.taskType ?? "x", referenceTaskName: `r${i}`, status: t.status, updateTime: t.updateTime, responseTimeoutSeconds: t.responseTimeoutSeconds, callbackAfterSeconds: t.callbackAfterSeconds })),
  });

test("reconciler: stalled = running, nothing in progress, idle past the threshold", () => {
  assert.equal(isStalled(wf([{ status: "COMPLETED", updateTime: 2000 }]), 2000 + 5001, 5000), true);
  assert.equal(isStalled(wf([{ status: "COMPLETED", updateTime: 2000 }]), 2000 + 4000, 5000), false);
  assert.equal(isStalled(wf([{ status: "IN_PROGRESS", updateTime: 2000 }]), 2000 + 60000, 5000), false, "a long-running task is progress");
  assert.equal(isStalled(wf([{ status: "IN_PROGRESS", taskType: "JOIN", updateTime: 2000 }]), 2000 + 60000, 5000), true);
  assert.notEqual(taskStates(wf([{ status: "COMPLETED", updateTime: 1 }])), taskStates(wf([{ status: "COMPLETED", updateTime: 1 }, { status: "SCHEDULED", updateTime: 2 }])));
});

test("reconciler: an in-progress task silent past its response timeout (its worker is gone) is stalled, whatever Conductor's sweep schedule", () => {
  const held = { status: "IN_PROGRESS", updateTime: 2000, responseTimeoutSeconds: 20 };
  assert.equal(isStalled(wf([held]), 2000 + 20_000 + ABANDONED_GRACE_MS - 1, 5000), false, "within its response timeout (+ grace): progress");
  assert.equal(isStalled(wf([held]), 2000 + 20_000 + ABANDONED_GRACE_MS + 1, 5000), true, "past it: abandoned");
  assert.equal(abandonedTask(wf([{ status: "COMPLETED", updateTime: 1 }, held]), 2000 + 60_000)?.referenceTaskName, "r1");
  assert.equal(isStalled(wf([{ ...held, callbackAfterSeconds: 60 }]), 2000 + 60_000, 5000), false, "a task handed back with a callback delay is waited for");
  assert.equal(isStalled(wf([{ ...held, responseTimeoutSeconds: 0 }]), 2000 + 600_000, 5000), false, "no response timeout: never abandoned");
  assert.equal(isStalled(wf([{ ...held, taskType: "JOIN", updateTime: 2000 + 59_000 }]), 2000 + 60_000, 5000), false, "a JOIN is not a worker's task");
});

test("reconciler pass: a forced decision that moves a stalled workflow counts as a rescue and is announced (onRescue); one that moves nothing is neither", async () => {
  // the REST calls the reconciler makes, answered from a table (the rescue itself runs against the real server in conductor.int.test.ts)
  const states = new Map<string, WorkflowRecord[]>([
    ["moved", [wf([{ status: "COMPLETED", updateTime: 2000 }]), wf([{ status: "COMPLETED", updateTime: 2000 }, { status: "SCHEDULED", updateTime: 9000 }])]],
    ["waiting", [wf([{ status: "COMPLETED", updateTime: 2000 }]), wf([{ status: "COMPLETED", updateTime: 2000 }])]],
  ]);
  const decided: string[] = [];
  const api = {
    runningWorkflowIds: async () => [...states.keys()],
    getWorkflow: async (id: string) => ({ ...states.get(id)![decided.includes(id) ? 1 : 0]!, workflowId: id }),
    decide: async (id: string) => void decided.push(id),
  } as unknown as ConductorApi;
  const announced: string[] = [];
  const r = startReconciler(api, pino({ level: "silent" }), { workflowName: "w", intervalMs: 3_600_000, stallMs: 5000, now: () => 60_000, onRescue: (id) => announced.push(id) });
  try {
    assert.deepEqual(await r.sweep(), ["moved"]);
    assert.deepEqual(decided.sort(), ["moved", "waiting"], "both stalled workflows were decided");
    assert.deepEqual(announced, ["moved"]);
    assert.equal(r.rescues(), 1);
  } finally {
    r.stop();
  }
});

test("inspect flags suspiciously fast tasks and other builds; audit flags unknown pollers", () => {
  const rec = WorkflowRecord.parse({
    workflowId: "w",
    status: "COMPLETED",
    tasks: [
      { taskId: "a", taskType: "transcribe_track", referenceTaskName: "transcribe_track_0", status: "COMPLETED", startTime: 1000, endTime: 1010, outputData: { worker: { worker_id: "h/0/1", build: "0.1.0+abc" } } },
      { taskId: "b", taskType: "transcribe_track", referenceTaskName: "transcribe_track_1", status: "COMPLETED", startTime: 1000, endTime: 9000, outputData: { worker: { worker_id: "h/1/1", build: "0.0.9+old" } } },
      { taskId: "c", taskType: "mixdown", referenceTaskName: "mixdown", status: "COMPLETED", startTime: 1000, endTime: 5000, outputData: {} },
    ],
  });
  const rows = inspectWorkflow(rec, { currentBuild: "0.1.0+abc", fastFloorsMs: { transcribe_track: 200 } });
  assert.match(rows[0]!.flags.join(), /suspiciously fast \(10 ms < 200 ms\)/);
  assert.match(rows[1]!.flags.join(), /other build 0\.0\.9\+old/);
  assert.match(rows[2]!.flags.join(), /no worker stamp/);
  const audit = auditPollers(
    "transcribe_track",
    [
      { workerId: "h/0/1#0.1.0+abc", lastPollTime: 9_000 },
      { workerId: "h/1/1#0.0.9+old", lastPollTime: 9_000 },
      { workerId: "python-worker-7", lastPollTime: 9_000 },
      { workerId: "h/2/1#0.1.0+abc", lastPollTime: 1_000 },
    ],
    { currentBuild: "0.1.0+abc", now: 10_000, recentMs: 5_000 },
  );
  assert.deepEqual(audit[0]!.flags, []);
  assert.match(audit[1]!.flags.join(), /other build/);
  assert.match(audit[2]!.flags.join(), /unknown worker/);
  assert.match(audit[3]!.flags.join(), /not polling recently/);
});

test("a track starting to prepare warms the recognizer where transcription will run", async () => {
  // in-process host (no child runner): this process's engine is warmed
  let warmed = 0;
  const deps = { asr: { warm: () => void (warmed += 1) } } as unknown as StepDeps;
  const exec = createStepExecutor({ runner: null });
  await assert.rejects(exec("prepare_track", { not: "a track" }, deps), StepInputError);
  assert.equal(warmed, 1);
  await assert.rejects(exec("merge_transcripts", { not: "a dict" }, deps), StepInputError);
  assert.equal(warmed, 1, "other steps do not warm it");
  // child runner: the shared child is asked instead
  let shared = 0;
  const runner = { warmShared: () => void (shared += 1) } as unknown as Parameters<typeof createStepExecutor>[0]["runner"];
  await assert.rejects(createStepExecutor({ runner })("prepare_track", {}, deps), StepInputError);
  assert.equal(shared, 1);
  assert.equal(warmed, 1);
});

test("worker hosts load their decoders at start when they keep them loaded and serve transcribe_track", async () => {
  const { preloadsDecoders } = await import("../../workers/supervisor/engine-hosts.ts");
  const { loadConfig } = await import("../../pipeline/config.ts");
  const base = loadConfig({});
  assert.equal(base.ASR_IDLE_SECONDS, 0, "kept loaded by default");
  assert.equal(preloadsDecoders("conductor", base), true);
  assert.equal(preloadsDecoders("bullmq", base), true);
  assert.equal(preloadsDecoders("conductor", loadConfig({ CONDUCTOR_TASKS: "plan_tracks,transcribe_track" })), true);
  assert.equal(preloadsDecoders("conductor", loadConfig({ CONDUCTOR_TASKS: "merge_transcripts,detect_topics" })), false, "a host without transcribe_track");
  assert.equal(preloadsDecoders("conductor", loadConfig({ ASR_IDLE_SECONDS: "60" })), false, "decoders that exit when idle load on demand");
  assert.equal(preloadsDecoders("conductor", loadConfig({ ASR_ENGINE: "openai", ASR_URL: "http://127.0.0.1:9/" })), false, "no local decoders");
  assert.throws(() => loadConfig({ ASR_IDLE_SECONDS: "-1" }), /ASR_IDLE_SECONDS/);
});

test("a follower without workers looks at a workflow every 100 ms at first, then every 1 % of the time followed, at most every second", async () => {
  const { followPollMs } = await import("../../workers/conductor/engine.ts");
  assert.equal(followPollMs(0), 100);
  assert.equal(followPollMs(5_000), 100);
  assert.equal(followPollMs(30_000), 300);
  assert.equal(followPollMs(60_000), 600);
  assert.equal(followPollMs(3_600_000), 1000);
  // the looks an hour-long run costs, and how late its end can be seen: each wait is at most 1 % of the time so far (or 100 ms)
  let t = 0;
  let looks = 0;
  let worst = 0;
  while (t < 3_600_000) {
    const wait = followPollMs(t);
    worst = Math.max(worst, wait / Math.max(t, 10_000));
    t += wait;
    looks++;
  }
  assert.ok(looks < 4000, `${looks} looks in an hour (36,000 at a steady 100 ms)`);
  assert.ok(worst <= 0.0101, `a wait of up to ${(worst * 100).toFixed(2)} % of the time followed`);
});
