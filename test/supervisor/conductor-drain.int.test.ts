/**
 * The supervisor running real Conductor worker children (child-main.ts --engine conductor)
 * against a real Conductor server: SIGTERM while a real transcription runs → the task's
 * result reaches Conductor (COMPLETED, stamped with the slot's worker id) before the
 * supervisor exits 0. The Conductor SDK's stopPolling() does not wait for running tasks:
 * this proves the drain does.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { loadConfig } from "../../pipeline/config.ts";
import { createLocalStorage } from "../../adapters/storage/local.ts";
import { createConductorApi, waitForConductor, type ConductorApi } from "../../adapters/conductor/client.ts";
import { ROOT, sleep, startProcess, type Proc } from "./harness.ts";
import { stageSlowTranscription } from "./slow-task.ts";

const dir = mkdtempSync(path.join(os.tmpdir(), "sup-conductor-"));
const procs: Proc[] = [];
let conductorUrl = "";
let stopConductor: (() => Promise<void>) | undefined;
let api: ConductorApi;
const workflowIds: string[] = [];
const workflowDefs: string[] = [];

before(async () => {
  if (process.env.CONDUCTOR_SERVER_URL) conductorUrl = process.env.CONDUCTOR_SERVER_URL;
  else {
    const { startConductor } = await import("../../scripts/conductor.ts");
    const h = await startConductor({ stateDir: path.join(ROOT, ".work", "test-supervisor-conductor"), log: (s: string) => process.stderr.write(`${s}\n`) });
    conductorUrl = h.url;
    stopConductor = h.stop;
  }
  api = createConductorApi(conductorUrl);
  await waitForConductor(api, { timeoutMs: 180_000 });
});

after(async () => {
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
  for (const id of workflowIds) await api?.remove(id).catch(() => {});
  for (const name of workflowDefs) await fetch(`${conductorUrl.replace(/\/+$/, "")}/metadata/workflow/${name}/1`, { method: "DELETE" }).catch(() => {});
  await stopConductor?.();
  rmSync(dir, { recursive: true, force: true });
});

test("SIGTERM during a running Conductor task: its result reaches Conductor before the supervisor exits", async () => {
  const tag = randomBytes(4).toString("hex");
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_ENV: "test",
    LOG_LEVEL: "info",
    WORK_DIR: path.join(dir, "work"),
    STORAGE_DRIVER: "local",
    LOCAL_STORAGE_DIR: path.join(dir, "storage"),
    CONDUCTOR_SERVER_URL: conductorUrl,
    CONDUCTOR_TASKS: "transcribe_track",
    RECONCILER_ENABLED: "false",
    DATABASE_URL: "",
    WORKER_CONCURRENCY: "1",
    DRAIN_TIMEOUT_SECONDS: "60",
    SUP_ENGINE: "conductor",
  };
  const config = loadConfig(env);
  const storage = createLocalStorage(config.LOCAL_STORAGE_DIR);
  const recordingId = `rec-sup-${tag}`;
  const input = await stageSlowTranscription(config, storage, recordingId, 8, "conductor");

  const sup = startProcess(["--import", "tsx", "test/supervisor/fake-supervisor.ts", "1"], env);
  procs.push(sup);
  const ready = await sup.waitFor((l) => l.msg === "worker child ready", 120_000, "the Conductor worker child");
  const workerId = `${os.hostname()}/0/${sup.pid}`;
  assert.equal(ready.worker_id, workerId);

  // a one-task workflow around the real transcribe_track task (its definition was registered by the worker)
  const wfName = `supervisor_drain_${tag}`;
  workflowDefs.push(wfName);
  await api.registerWorkflow({
    name: wfName,
    version: 1,
    schemaVersion: 2,
    ownerEmail: "trackscribe@localhost",
    timeoutSeconds: 600,
    timeoutPolicy: "TIME_OUT_WF",
    inputParameters: ["recording_id", "namespace", "language", "track"],
    outputParameters: { words: "${transcribe.output.words}" },
    tasks: [
      {
        name: "transcribe_track",
        taskReferenceName: "transcribe",
        type: "SIMPLE",
        inputParameters: {
          recording_id: "${workflow.input.recording_id}",
          namespace: "${workflow.input.namespace}",
          language: "${workflow.input.language}",
          track: "${workflow.input.track}",
        },
      },
    ],
  });
  const wfId = await api.startWorkflow(wfName, 1, input as unknown as Record<string, unknown>, recordingId);
  workflowIds.push(wfId);

  // SIGTERM as soon as our worker has taken the task
  const deadline = Date.now() + 60_000;
  for (;;) {
    const wf = await api.getWorkflow(wfId);
    const t = wf.tasks[0];
    if (t?.status === "IN_PROGRESS") break;
    assert.ok(!t || t.status === "SCHEDULED", `task state ${t?.status} before the signal`);
    assert.ok(Date.now() < deadline, "the worker never picked up the task");
    await sleep(50);
  }
  sup.child.kill("SIGTERM");
  const termAt = Date.now();
  const atSignal = (await api.getWorkflow(wfId)).tasks[0]!;
  assert.equal(atSignal.status, "IN_PROGRESS", "the task was still running when SIGTERM arrived");

  const exit = await sup.exited;
  assert.equal(exit.code, 0);
  const wf = await api.getWorkflow(wfId);
  const task = wf.tasks[0]!;
  assert.equal(task.status, "COMPLETED", `task ${task.status}: ${task.reasonForIncompletion ?? ""}`);
  assert.ok(task.workerId?.startsWith(workerId), `completed by ${task.workerId}`);
  assert.equal((task.outputData.worker as { worker_id: string }).worker_id, workerId);
  // the words went to storage; Conductor holds their key and count (workers/conductor/transcripts.ts)
  assert.ok((task.outputData.word_count as number) > 0);
  assert.match(String(task.outputData.words_key), new RegExp(`^recordings/${recordingId}/conductor/transcript/track-0\\.${task.taskId}\\.json$`));
  assert.ok(task.endTime >= termAt - 1000, "the task ended after the signal");
  assert.equal(wf.status, "COMPLETED");
  assert.ok(sup.lines.some((l) => l.msg === "worker child drained"));
  assert.ok(!sup.lines.some((l) => l.msg === "force-killing worker child"));
  process.stderr.write(`  task ran ${task.endTime - task.startTime} ms; SIGTERM→exit ${Date.now() - termAt} ms\n`);
});
