/**
 * Payload sizes on the real server. Words travel between tasks as JSON, so a long meeting's
 * payloads outgrow the server's defaults (3 MB a task): it then moves them to its external
 * payload storage, and the next task's poll comes with an empty input.
 *  - The test run's server (scripts/conductor.ts settings): a 12 MB output reaches the next
 *    task inline, and one above CONDUCTOR_PAYLOAD_LIMIT fails its task with the size.
 *  - A server with its own defaults: a task of ours whose input was moved is failed at once
 *    by the worker with a reason that says so (not a schema error about a missing field).
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { pino } from "pino";
import { loadConfig } from "../../pipeline/config.ts";
import { CONDUCTOR_PAYLOAD_LIMIT, startConductor } from "../../scripts/conductor.ts";
import { createLocalStorage } from "../../adapters/storage/local.ts";
import { createConductorApi } from "../../adapters/conductor/client.ts";
import { WORKFLOW_NAME } from "../../workers/conductor/definitions.ts";
import { followWorkflow } from "../../workers/conductor/engine.ts";
import { startConductorRuntime } from "../../workers/conductor/runtime.ts";
import { createStepPorts } from "../../workers/step-ports.ts";

const url = process.env.CONDUCTOR_SERVER_URL;
const log = pino({ level: "warn" }, pino.destination(2));
const MB = 1024 * 1024;
const limitBytes = Number(/^(\d+)MB$/.exec(CONDUCTOR_PAYLOAD_LIMIT)![1]) * MB;
const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

async function call(base: string, p: string, init: { method?: string; body?: unknown } = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(`${base}${p}`, {
    method: init.method ?? "GET",
    ...(init.body !== undefined ? { headers: { "content-type": "application/json" }, body: JSON.stringify(init.body) } : {}),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    /* plain text (a workflow id) */
  }
  return { status: res.status, body };
}

test("the test run's server keeps a 12 MB transcript inline for the next task; above the limit the task fails with its size", async () => {
  assert.ok(url, "CONDUCTOR_SERVER_URL must point at the test run's Conductor (npm test starts it)");
  const defs = ["ts_payload_probe_a", "ts_payload_probe_b"].map((name) => ({ name, retryCount: 0, timeoutSeconds: 120, responseTimeoutSeconds: 60, ownerEmail: "trackscribe@localhost" }));
  assert.equal((await call(url, "/metadata/taskdefs", { method: "POST", body: defs })).status, 200);
  const wf = {
    name: "ts_payload_probe",
    version: 1,
    schemaVersion: 2,
    ownerEmail: "trackscribe@localhost",
    tasks: [
      { name: "ts_payload_probe_a", taskReferenceName: "a", type: "SIMPLE", inputParameters: {} },
      { name: "ts_payload_probe_b", taskReferenceName: "b", type: "SIMPLE", inputParameters: { words: "${a.output.words}" } },
    ],
    outputParameters: { size: "${b.output.size}" },
  };
  assert.equal((await call(url, "/metadata/workflow", { method: "PUT", body: [wf] })).status, 200);

  /** about `bytes` of JSON in words as our steps pass them (a long meeting's transcript) */
  const wordsOf = (bytes: number): { text: string; start: number; end: number; speaker: number; confidence: number }[] => {
    const one = { text: "meeting", start: 1234.56, end: 1234.98, speaker: 3, confidence: 0.913 };
    return Array.from({ length: Math.ceil(bytes / (JSON.stringify(one).length + 1)) }, (_, i) => ({ ...one, start: i / 3, end: i / 3 + 0.3 }));
  };
  const run = async (bytes: number): Promise<{ id: string; words: number }> => {
    const start = await call(url, "/workflow/ts_payload_probe", { method: "POST", body: {} });
    assert.equal(start.status, 200);
    const id = String(start.body);
    cleanups.push(async () => {
      await call(url, `/workflow/${id}?reason=test+done`, { method: "DELETE" });
      await call(url, `/workflow/${id}/remove`, { method: "DELETE" });
    });
    const a = (await call(url, "/tasks/poll/ts_payload_probe_a?workerid=payload-test")).body;
    assert.equal(a.workflowInstanceId, id);
    const words = wordsOf(bytes);
    const done = await call(url, "/tasks", { method: "POST", body: { taskId: a.taskId, workflowInstanceId: id, status: "COMPLETED", outputData: { words } } });
    assert.equal(done.status, 200, JSON.stringify(done.body).slice(0, 300));
    return { id, words: words.length };
  };

  // 12 MB: above the server's own task threshold (3 MB) and its hard limit (10 MB)
  const ok = await run(12 * MB);
  const b = (await call(url, "/tasks/poll/ts_payload_probe_b?workerid=payload-test")).body;
  assert.equal(b.workflowInstanceId, ok.id);
  assert.equal(b.externalInputPayloadStoragePath ?? null, null, "the input stayed inline");
  assert.equal(b.inputData.words.length, ok.words);
  assert.ok(JSON.stringify(b.inputData).length > 12 * MB);
  await call(url, "/tasks", { method: "POST", body: { taskId: b.taskId, workflowInstanceId: ok.id, status: "COMPLETED", outputData: { size: ok.words } } });
  const done = (await call(url, `/workflow/${ok.id}`)).body;
  assert.equal(done.status, "COMPLETED");
  assert.deepEqual(done.output, { size: ok.words });

  // above the limit: the task fails, and the reason gives the size
  const over = await run(limitBytes + MB);
  const failed = (await call(url, `/workflow/${over.id}?includeTasks=true`)).body;
  assert.equal(failed.status, "FAILED");
  const a = failed.tasks.find((t: { referenceTaskName: string }) => t.referenceTaskName === "a");
  assert.equal(a.status, "FAILED_WITH_TERMINAL_ERROR");
  assert.match(a.reasonForIncompletion, /payload size: \d+ .* greater than the permissible limit/);
});

test("on a server with its default thresholds, a task whose input was moved to external storage fails with a reason that says so", async () => {
  const stateDir = await mkdtemp(path.join(os.tmpdir(), "ts-payload-conductor-"));
  const server = await startConductor({ stateDir, fresh: true, payloadLimit: null, log: () => undefined });
  cleanups.push(async () => {
    await server.stop();
    await rm(stateDir, { recursive: true, force: true });
  });
  const dir = await mkdtemp(path.join(os.tmpdir(), "ts-payload-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const config = loadConfig({
    CONDUCTOR_SERVER_URL: server.url,
    STORAGE_DRIVER: "local",
    LOCAL_STORAGE_DIR: path.join(dir, "storage"),
    WORK_DIR: path.join(dir, "work"),
    LOG_LEVEL: "warn",
    RECONCILER_ENABLED: "false",
  });
  const storage = createLocalStorage(config.LOCAL_STORAGE_DIR);
  // registers our definitions on this server and serves the first step
  const rt = await startConductorRuntime(config, { storage, stepDeps: createStepPorts(config, { storage, log }), log, only: ["plan_tracks"] });
  cleanups.push(() => rt.stop(5000));
  const api = createConductorApi(server.url);
  // a 4 MB workflow input (under the server's 5 MB for workflows) gives plan_tracks a 4 MB input (over its 3 MB for tasks)
  const id = await api.startWorkflow(WORKFLOW_NAME, 1, {
    recording_id: "payload-1",
    language: "en",
    namespace: "conductor",
    tracks: [{ track_index: 0, participant: "p".repeat(4 * MB), offset_seconds: 0, source_key: "recordings/payload-1/tracks/0.wav" }],
  });
  const wf = await followWorkflow(api, id, { recordingId: "payload-1" });
  assert.equal(wf.status, "FAILED");
  const plan = wf.tasks.find((t) => t.referenceTaskName === "plan_tracks")!;
  assert.equal(plan.status, "FAILED_WITH_TERMINAL_ERROR", "no retries: the input will not come back");
  // the reason (what the API shows) is a code and a sentence; the operator's detail is in the task's output
  assert.match(wf.reasonForIncompletion ?? "", /\[payload_too_large\] the step's input is larger than the orchestrator passes inline/);
  assert.match(String((plan as { outputData?: { error?: string } }).outputData?.error), /moved this task's input to its external payload storage .*workers cannot read/);
});
