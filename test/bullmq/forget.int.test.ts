/**
 * Found by `npm run chaos`: a deleted recording's shadow run left its finished BullMQ jobs
 * in Redis until their age-based removal (an hour, a day when failed). removeRecordingJobs
 * removes every job of one recording (waiting, finished, failed; a running one once it has
 * finished), and nothing of another recording. Against the real Redis, own key prefix.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import os from "node:os";
import path from "node:path";
import { Worker } from "bullmq";
import { pino } from "pino";
import { startBullmqWorkerHost } from "../../workers/bullmq/worker-host.ts";
import type { Redis } from "ioredis";
import { createBullmqRedis } from "../../workers/bullmq/engine.ts";
import { createStepQueues, dropPrefix, queueName, removeRecordingJobs, type StepQueues } from "../../workers/bullmq/queues.ts";
import { jobId } from "../../pipeline/state/graph.ts";
import { uid } from "./harness.ts";

let redis: Redis;
let queues: StepQueues;
const prefix = `tsb-forget-${uid()}`;
before(() => {
  redis = createBullmqRedis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
  queues = createStepQueues(redis, prefix);
});
after(async () => {
  await queues.close();
  await dropPrefix(redis, prefix);
  await redis.quit();
});

async function keysOf(recordingId: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*${encodeURIComponent(recordingId)}*`, "COUNT", 1000);
    cursor = next;
    out.push(...keys);
  } while (cursor !== "0");
  return out;
}

test("every job of a deleted recording leaves Redis, a running one once it has finished; other recordings keep theirs", async () => {
  const gone = "rec gone*?";
  const kept = "rec-kept";
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let started!: () => void;
  const running = new Promise<void>((r) => (started = r));
  // merge: finished jobs (one completes, one fails); mixdown: one held running; topics: waiting (no worker)
  const mergeConn = redis.duplicate();
  const mixdownConn = redis.duplicate();
  const merge = new Worker(
    queueName("merge_transcripts"),
    async (job) => {
      if (job.data.fail) throw new Error("bad");
      await job.log("a line of log");
      return { ok: true };
    },
    { connection: mergeConn, prefix },
  );
  const mixdown = new Worker(
    queueName("mixdown"),
    async () => {
      started();
      await held;
      return { ok: true };
    },
    { connection: mixdownConn, prefix, lockDuration: 30_000 },
  );
  try {
    const done = (id: string) =>
      new Promise<void>((resolve) => {
        const check = async (): Promise<void> => {
          const s = await queues.get("merge_transcripts").getJobState(id);
          if (s === "completed" || s === "failed") resolve();
          else setTimeout(() => void check(), 50);
        };
        void check();
      });
    for (const rec of [gone, kept]) {
      for (const ns of ["conductor", "shadow-bullmq"]) {
        await queues.get("merge_transcripts").add("merge_transcripts", {}, { jobId: jobId(rec, ns, "merge_transcripts", null, 1) });
        await queues.get("merge_transcripts").add("merge_transcripts", { fail: true }, { jobId: jobId(rec, ns, "merge_transcripts", null, 2), attempts: 1 });
        await queues.get("detect_topics").add("detect_topics", {}, { jobId: jobId(rec, ns, "detect_topics", null, 1) });
      }
    }
    await queues.get("mixdown").add("mixdown", {}, { jobId: jobId(gone, "shadow-bullmq", "mixdown", null, 1) });
    for (const rec of [gone, kept]) for (const ns of ["conductor", "shadow-bullmq"]) for (const a of [1, 2]) await done(jobId(rec, ns, "merge_transcripts", null, a));
    await running;
    const before = (await keysOf(kept)).sort();
    assert.ok((await keysOf(gone)).length >= 7, "the recording's jobs are in Redis");

    const first = await removeRecordingJobs(redis, queues, gone);
    assert.deepEqual(first, { removed: 6, running: 1 }, "finished and waiting jobs of both namespaces removed; the running one stays");
    const left = await keysOf(gone);
    assert.ok(left.length > 0 && left.every((k) => k.includes(`${queueName("mixdown")}:`)), `only the running job is left: ${left.join(", ")}`);

    release();
    await new Promise<void>((resolve) => {
      const check = async (): Promise<void> => {
        if ((await queues.get("mixdown").getJobState(jobId(gone, "shadow-bullmq", "mixdown", null, 1))) === "completed") resolve();
        else setTimeout(() => void check(), 50);
      };
      void check();
    });
    assert.deepEqual(await removeRecordingJobs(redis, queues, gone), { removed: 1, running: 0 });
    assert.deepEqual(await keysOf(gone), [], "nothing of the recording is left");
    assert.deepEqual((await keysOf(kept)).sort(), before, "another recording's jobs are untouched");
    for (const state of ["completed", "failed", "wait"] as const) {
      const ids = (await Promise.all(queues.all().map((q) => q.getJobs([state])))).flat().map((j) => j.id!);
      assert.ok(ids.every((id) => !id.startsWith(encodeURIComponent(gone))), `no ${state} job of the recording in the queues' sets`);
    }
  } finally {
    release();
    await merge.close();
    await mixdown.close();
    // a connection handed to a Worker stays the caller's to close
    await mergeConn.quit();
    await mixdownConn.quit();
  }
});

test("through the worker host: a job running when its recording is deleted removes itself when it ends, and a waiting one is not run", async () => {
  const gone = `rec-self-${uid()}`;
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let started!: () => void;
  const running = new Promise<void>((r) => (started = r));
  const ran: string[] = [];
  const silent = pino({ level: "silent" });
  const host = startBullmqWorkerHost({
    redis,
    stepDeps: () => ({}) as never,
    identity: { worker_id: "test/0/1", build: "test" } as never,
    logger: silent,
    options: { prefix, concurrency: 1, lockDurationMs: 30_000, stalledIntervalMs: 30_000, maxStalledCount: 1, workDir: path.join(os.tmpdir(), `forget-${uid()}`), steps: ["mixdown", "detect_topics"] },
    runStepFn: (async (step: string) => {
      ran.push(step);
      if (step === "mixdown") {
        started();
        await held;
      }
      return {};
    }) as never,
  });
  const data = (step: "mixdown" | "detect_topics") => ({ run_id: "r1", recording_id: gone, namespace: "shadow-bullmq", step, attempt: 1, input: {} });
  try {
    await queues.get("mixdown").add("mixdown", data("mixdown"), { jobId: jobId(gone, "shadow-bullmq", "mixdown", null, 1) });
    await running;
    assert.deepEqual(await removeRecordingJobs(redis, queues, gone), { removed: 0, running: 1 });
    // enqueued after the deletion (a run shell that had not heard yet): never run
    await queues.get("detect_topics").add("detect_topics", data("detect_topics"), { jobId: jobId(gone, "shadow-bullmq", "detect_topics", null, 1) });
    release();
    const deadline = Date.now() + 20_000;
    while ((await keysOf(gone)).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(await keysOf(gone), [], "both jobs left Redis without another removal call");
    assert.deepEqual(ran, ["mixdown"], "the job enqueued after the deletion did not run its step");
  } finally {
    release();
    await host.stop(5_000);
  }
});
