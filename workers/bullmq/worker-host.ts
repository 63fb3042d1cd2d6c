/**
 * BullMQ workers: one Worker per step queue, each running the SAME step functions as the
 * in-process runner and the Conductor workers (`runStep` from pipeline/steps). A worker
 * killed mid-job stops renewing its lock; BullMQ's stalled-job check (run by every live
 * worker of that queue) puts the job back in the wait list under the same id, so it is
 * run again and its result still reaches the coordinator once.
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import path from "node:path";
import { DelayedError, Worker, type Job } from "bullmq";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import type { StepName } from "../../pipeline/contracts/index.ts";
import { runStep } from "../../pipeline/steps/index.ts";
import type { WorkerIdentity } from "../identity.ts";
import type { StepDepsFactory } from "../step-ports.ts";
import { StepJobData, type StepJobResult } from "./job-data.ts";
import { allSteps, isForgotten, queueName } from "./queues.ts";
import { publicFailure } from "../../pipeline/failures.ts";
import { isDependencyOutage } from "../outage.ts";

/** Test-only switch (SHADOW_TEST_PERTURB, honoured only when NODE_ENV=test): alter one task's output. */
export interface Perturbation {
  step: StepName;
  track_index?: number;
}

export interface WorkerHostOptions {
  /** BullMQ key prefix */
  prefix: string;
  /** jobs run at once per step queue */
  concurrency: number;
  /** per step, instead of `concurrency` (transcribe_track: see transcribeConcurrency) */
  concurrencyByStep?: Partial<Record<StepName, number>>;
  lockDurationMs: number;
  stalledIntervalMs: number;
  maxStalledCount: number;
  /** where per-job scratch directories are made */
  workDir: string;
  /** the steps this host serves (all by default) */
  steps?: StepName[];
  perturb?: Perturbation | null;
  /** a job failing because a dependency is down goes back to delayed this many times before it fails as usual (default 0) */
  outageHandbacks?: number;
  /** … for this long each time (default 5000) */
  outageRetryMs?: number;
}

export interface WorkerHostDeps {
  redis: Redis;
  /** StepDeps for one job run (workers/step-ports.ts `createStepPorts`) */
  stepDeps: StepDepsFactory;
  identity: WorkerIdentity;
  logger: Logger;
  options: WorkerHostOptions;
  /** runs a step (default runStep; workers/child runs heavy steps in a child process) */
  runStepFn?: typeof runStep;
}

export interface WorkerHost {
  readonly workers: readonly Worker[];
  /** ids of jobs being processed right now */
  active(): string[];
  /**
   * Stop taking jobs, let running ones finish until `drainMs`, then abort and force-close.
   * Returns the jobs that were cut off (their locks lapse and BullMQ runs them again).
   */
  stop(drainMs: number): Promise<{ cutOff: string[] }>;
}

/** Parse `step` or `step:track` (SHADOW_TEST_PERTURB). */
export function parsePerturbation(spec: string | undefined, nodeEnv: string): Perturbation | null {
  if (!spec || nodeEnv !== "test") return null;
  const [step, track] = spec.split(":");
  if (!allSteps().includes(step as StepName)) throw new Error(`SHADOW_TEST_PERTURB: unknown step '${step}'`);
  return { step: step as StepName, ...(track === undefined ? {} : { track_index: Number(track) }) };
}

/** Change the first word of a words-bearing output so the shadow comparison must notice. */
export function perturbOutput(output: unknown): unknown {
  const o = output as { words?: { text: string }[] };
  if (!Array.isArray(o?.words) || o.words.length === 0) return output;
  return { ...o, words: [{ ...o.words[0]!, text: "perturbed" }, ...o.words.slice(1)] };
}

export function startBullmqWorkerHost(deps: WorkerHostDeps): WorkerHost {
  const { redis, stepDeps, identity, logger, options } = deps;
  const abort = new AbortController();
  const running = new Set<string>();
  const scratchRoot = path.resolve(options.workDir, "scratch", "bullmq");

  const processJob = async (job: Job, token?: string): Promise<StepJobResult> => {
    const data = StepJobData.parse(job.data);
    const log = logger.child({
      recording_id: data.recording_id,
      namespace: data.namespace,
      step: data.step,
      track_index: data.track_index,
      attempt: data.attempt,
      job_id: job.id,
      worker_id: identity.worker_id,
    });
    const stamp = { worker_id: identity.worker_id, build: identity.build };
    if (await isForgotten(redis, options.prefix, data.recording_id).catch(() => false)) {
      // its recording was deleted: nothing to run for it (the job is removed once it ends)
      log.info("recording deleted: job not run");
      return { ok: false, error: "the recording was deleted", error_name: "RecordingDeletedError", retryable: false, duration_ms: 0, ...stamp };
    }
    const started = performance.now();
    running.add(job.id!);
    await mkdir(scratchRoot, { recursive: true });
    const scratchDir = await mkdtemp(path.join(scratchRoot, `${data.step}-`));
    try {
      log.debug("step started");
      let output: unknown = await (deps.runStepFn ?? runStep)(data.step, data.input, stepDeps(scratchDir, { log, signal: abort.signal }));
      const p = options.perturb;
      if (p && p.step === data.step && (p.track_index === undefined || p.track_index === data.track_index)) {
        log.warn("SHADOW_TEST_PERTURB: altering this output on purpose");
        output = perturbOutput(output);
      }
      const duration_ms = Math.round(performance.now() - started);
      log.info({ duration_ms }, "step succeeded");
      return { ok: true, output, duration_ms, ...stamp };
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      const retryable = (e as { retryable?: unknown }).retryable !== false;
      const duration_ms = Math.round(performance.now() - started);
      const handedBack = Number((job.data as { outage_handbacks?: unknown }).outage_handbacks) || 0;
      if (retryable && token && isDependencyOutage(e) && handedBack < (options.outageHandbacks ?? 0)) {
        // a dependency is down, not the step's fault: the same job (same attempt) runs again
        // later; the machine's attempts stay for the step's own errors
        const delay = options.outageRetryMs ?? 5000;
        let moved = false;
        try {
          await job.updateData({ ...(job.data as object), outage_handbacks: handedBack + 1 });
          await job.moveToDelayed(Date.now() + delay, token);
          moved = true;
        } catch (moveErr) {
          log.warn({ err: moveErr }, "could not hand the job back (Redis down too?): the failure is reported instead");
        }
        if (moved) {
          log.warn({ err: e.message, handed_back: handedBack + 1, of: options.outageHandbacks, delay_ms: delay }, "a dependency is down: job handed back (no attempt spent)");
          throw new DelayedError();
        }
      }
      log.warn({ err: e, retryable, duration_ms }, "step failed");
      return { ok: false, error: e.message, error_name: e.name, retryable, failure: publicFailure(e), duration_ms, ...stamp };
    } finally {
      running.delete(job.id!);
      await rm(scratchDir, { recursive: true, force: true });
    }
  };

  const workers = (options.steps ?? allSteps()).map((step) => {
    const w = new Worker(queueName(step), processJob, {
      connection: redis,
      prefix: options.prefix,
      concurrency: options.concurrencyByStep?.[step] ?? options.concurrency,
      lockDuration: options.lockDurationMs,
      stalledInterval: options.stalledIntervalMs,
      maxStalledCount: options.maxStalledCount,
      name: identity.worker_id,
    });
    w.on("error", (err) => logger.error({ err, step }, "bullmq worker error"));
    w.on("stalled", (jobId) => logger.warn({ job_id: jobId, step }, "stalled job recovered: it will run again"));
    // a job of a recording deleted while the job ran (queues.ts markForgotten) leaves with it
    const removeIfForgotten = (job: Job | undefined): void => {
      const recordingId = (job?.data as { recording_id?: unknown } | undefined)?.recording_id;
      if (!job || typeof recordingId !== "string") return;
      void isForgotten(redis, options.prefix, recordingId)
        .then(async (gone) => {
          if (gone) await job.remove();
        })
        .catch((err: unknown) => logger.warn({ err, job_id: job.id }, "could not remove a deleted recording's finished job; the storage sweeper will"));
    };
    w.on("completed", (job) => removeIfForgotten(job));
    w.on("failed", (job) => removeIfForgotten(job));
    return w;
  });
  logger.info({ worker_id: identity.worker_id, build: identity.build, prefix: options.prefix, queues: workers.length }, "bullmq workers started");

  return {
    workers,
    active: () => [...running],
    async stop(drainMs) {
      const graceful = Promise.all(workers.map((w) => w.close()));
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<"deadline">((resolve) => {
        timer = setTimeout(() => resolve("deadline"), drainMs);
      });
      const how = await Promise.race([graceful.then(() => "drained" as const), deadline]);
      clearTimeout(timer);
      if (how === "drained") return { cutOff: [] };
      const cutOff = [...running];
      logger.warn({ cut_off: cutOff, drain_ms: drainMs }, "drain deadline passed: aborting running jobs");
      abort.abort(new Error("worker host stopping"));
      await Promise.all(workers.map((w) => w.close(true)));
      return { cutOff };
    },
  };
}
