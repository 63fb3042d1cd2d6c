/**
 * The supervisor running real BullMQ worker children (child-main.ts --engine bullmq):
 * SIGTERM while a real transcription runs → the job's result reaches BullMQ (completed,
 * stamped with the slot's worker id) before the supervisor exits 0.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { Queue, QueueEvents } from "bullmq";
import { loadConfig } from "../../pipeline/config.ts";
import { createLocalStorage } from "../../adapters/storage/local.ts";
import { createBullmqRedis } from "../../workers/bullmq/engine.ts";
import { StepJobResult, type StepJobData } from "../../workers/bullmq/job-data.ts";
import { dropPrefix, queueName } from "../../workers/bullmq/queues.ts";
import { startProcess, type Proc } from "./harness.ts";
import { stageSlowTranscription } from "./slow-task.ts";

const dir = mkdtempSync(path.join(os.tmpdir(), "sup-bullmq-"));
const procs: Proc[] = [];
const cleanups: (() => Promise<unknown>)[] = [];
/** the Redis key prefixes of this file's tests: every key under them goes at the end */
const prefixes: string[] = [];
after(async () => {
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
  for (const c of cleanups.reverse()) await c().catch(() => {});
  const redis = createBullmqRedis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
  for (const p of prefixes) await dropPrefix(redis, p).catch(() => 0);
  await redis.quit();
  rmSync(dir, { recursive: true, force: true });
});

test("SIGTERM during a running BullMQ job: the job completes and its result is stored before the supervisor exits", async () => {
  const prefix = `tss-${randomBytes(4).toString("hex")}`;
  prefixes.push(prefix);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_ENV: "test",
    LOG_LEVEL: "info",
    WORK_DIR: path.join(dir, "work"),
    STORAGE_DRIVER: "local",
    LOCAL_STORAGE_DIR: path.join(dir, "storage"),
    REDIS_URL: process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
    BULLMQ_PREFIX: prefix,
    WORKER_CONCURRENCY: "1",
    DRAIN_TIMEOUT_SECONDS: "60",
    SUP_ENGINE: "bullmq",
  };
  const config = loadConfig(env);
  const storage = createLocalStorage(config.LOCAL_STORAGE_DIR);
  const recordingId = `rec-${randomBytes(3).toString("hex")}`;
  const input = await stageSlowTranscription(config, storage, recordingId, 8, "bullmq");

  const redis = createBullmqRedis(config.REDIS_URL);
  cleanups.push(async () => redis.quit());
  const queue = new Queue(queueName("transcribe_track"), { connection: redis, prefix });
  const events = new QueueEvents(queueName("transcribe_track"), { connection: redis, prefix });
  cleanups.push(async () => {
    await queue.obliterate({ force: true });
    await queue.close();
    await events.close();
  });
  await events.waitUntilReady();

  const sup = startProcess(["--import", "tsx", "test/supervisor/fake-supervisor.ts", "1"], env);
  procs.push(sup);
  await sup.waitFor((l) => l.msg === "worker child ready", 60_000, "the BullMQ worker child");

  const jobId = `${recordingId}-transcribe-0`;
  const active = new Promise<void>((resolve) => events.on("active", ({ jobId: id }) => id === jobId && resolve()));
  const completed = new Promise<{ value: unknown; at: number }>((resolve) =>
    events.on("completed", ({ jobId: id, returnvalue }) => {
      if (id === jobId) resolve({ value: typeof returnvalue === "string" ? JSON.parse(returnvalue) : returnvalue, at: Date.now() });
    }),
  );
  const data: StepJobData = { run_id: "run-1", recording_id: recordingId, namespace: "bullmq", step: "transcribe_track", track_index: 0, attempt: 1, input };
  await queue.add("transcribe_track", data, { jobId });
  await active;
  sup.child.kill("SIGTERM");
  const state = await (await queue.getJob(jobId))!.getState();
  assert.equal(state, "active", "the job was still running when SIGTERM arrived");

  const done = await completed;
  const exit = await sup.exited;
  const exitAt = Date.now();
  assert.equal(exit.code, 0);
  assert.ok(done.at <= exitAt, "the result reached BullMQ before the supervisor exited");
  const result = StepJobResult.parse(done.value);
  assert.ok(result.ok, `the job succeeded: ${JSON.stringify(result).slice(0, 300)}`);
  assert.equal(result.worker_id, `${os.hostname()}/0/${sup.pid}`);
  assert.ok((result.output as { words: unknown[] }).words.length > 0);
  assert.ok(sup.lines.some((l) => l.msg === "worker child drained"));
  assert.ok(!sup.lines.some((l) => l.msg === "force-killing worker child"));
});

test("`trackscribe workers --engine bullmq -j 2`: a child killed with -9 comes back in its slot with the same worker id", async () => {
  const prefix = `tss-${randomBytes(4).toString("hex")}`;
  prefixes.push(prefix);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_ENV: "test",
    LOG_LEVEL: "info",
    WORK_DIR: path.join(dir, "work-cli"),
    STORAGE_DRIVER: "local",
    LOCAL_STORAGE_DIR: path.join(dir, "storage"),
    REDIS_URL: process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
    BULLMQ_PREFIX: prefix,
    SUPERVISOR_BACKOFF_SCALE: "0.1",
    DRAIN_TIMEOUT_SECONDS: "10",
  };
  const cli = startProcess(["bin/trackscribe.mjs", "workers", "--engine", "bullmq", "-j", "2"], env);
  procs.push(cli);
  const ready = await Promise.all([0, 1].map((slot) => cli.waitFor((l) => l.msg === "worker child ready" && l.slot === slot, 90_000, `slot ${slot}`)));
  assert.deepEqual(
    ready.map((r) => r.worker_id),
    [0, 1].map((slot) => `${os.hostname()}/${slot}/${cli.pid}`),
  );
  const victim = Number(ready[1]!.pid);
  process.kill(victim, "SIGKILL");
  const exit = await cli.waitFor((l) => l.msg === "worker child exited" && l.pid === victim, 10_000);
  assert.equal(exit.signal, "SIGKILL");
  assert.equal(exit.restart_in_ms, 100);
  const again = await cli.waitFor((l) => l.msg === "worker child ready" && l.slot === 1 && l.pid !== victim, 90_000, "slot 1 again");
  assert.equal(again.worker_id, `${os.hostname()}/1/${cli.pid}`);
  cli.child.kill("SIGTERM");
  const end = await cli.exited;
  assert.equal(end.code, 0);
  assert.equal(cli.lines.filter((l) => l.msg === "worker child drained").length, 2);
});
