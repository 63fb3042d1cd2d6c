/**
 * A BullMQ worker process killed (SIGKILL) in the middle of a transcription: its jobs'
 * locks lapse, another worker's stalled-job check puts them back, they run again under
 * the same job ids, and the run completes with exactly one result per task. The event
 * log of that run replays to its stored final state.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { QueueEvents } from "bullmq";
import { replay } from "../../pipeline/state/index.ts";
import { queueName } from "../../workers/bullmq/queues.ts";
import { stageSpokenRecording, TWO_SPEAKERS } from "./fixture.ts";
import { bullmqHarness, uid, type Harness } from "./harness.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
let h: Harness;
const children: ChildProcess[] = [];

before(async () => {
  h = await bullmqHarness({ startWorkers: false, tag: "stall", env: { BULLMQ_LOCK_MS: "2000", BULLMQ_STALLED_INTERVAL_MS: "1000" } });
});
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await h?.close();
});

async function startWorkerProcess(slot: number): Promise<{ child: ChildProcess; workerId: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", path.join(here, "worker-process.ts")], {
    env: { ...process.env, ...h.env, WORKER_SLOT: String(slot) },
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.push(child);
  let buf = "";
  const workerId = await new Promise<string>((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      const m = /ready (\S+)/.exec(buf);
      if (m) resolve(m[1]!);
    });
    child.once("exit", (code, sig) => reject(new Error(`worker process exited before it was ready (${code ?? sig})`)));
  });
  return { child, workerId };
}

test("a worker killed mid-transcription is recovered and the run completes with one result", async () => {
  const recordingId = `rec-${uid()}`;
  const input = await stageSpokenRecording(h.storage, h.dir, recordingId, TWO_SPEAKERS);
  const events = new QueueEvents(queueName("transcribe_track"), { connection: h.redis, prefix: h.prefix });
  await events.waitUntilReady();
  const stalled: string[] = [];
  events.on("stalled", ({ jobId }) => stalled.push(jobId));
  try {
    const a = await startWorkerProcess(1);
    const firstActive = once(events, "active");
    const running = h.engine.run(input);
    const [{ jobId: killedJob }] = (await firstActive) as [{ jobId: string }];
    a.child.kill("SIGKILL");
    await once(a.child, "exit");

    const b = await startWorkerProcess(2);
    const { result, run } = await running;
    assert.ok(result.words.length > 0);
    assert.ok(stalled.includes(killedJob), `BullMQ reported no stalled job (saw ${stalled.join(", ") || "none"}), killed ${killedJob}`);

    const logged = await h.eventLog.events(run.workflow_id!);
    const forKilled = logged.filter((e) => e.event.id === `result:${killedJob}`);
    assert.equal(forKilled.length, 1, "exactly one result for the killed job");
    assert.equal(forKilled[0]!.event.type, "StepSucceeded");
    assert.equal(forKilled[0]!.outcome, "applied");
    assert.equal((forKilled[0]!.event as { worker_id?: string }).worker_id, b.workerId, "the surviving worker ran it");
    assert.equal(logged.filter((e) => e.event.type === "StepFailed").length, 0);
    assert.equal(logged.filter((e) => e.event.type === "StepSucceeded" && e.outcome === "applied").length, 13);

    const stored = await h.eventLog.run(run.workflow_id!);
    assert.equal(stored?.status, "succeeded");
    assert.deepEqual(replay(logged.map((e) => e.event)).state, stored!.final_state);
    assert.equal((await h.eventLog.latestRun(recordingId))?.run_id, run.workflow_id);

    b.child.kill("SIGTERM");
    await once(b.child, "exit");
  } finally {
    await events.close();
  }
});
