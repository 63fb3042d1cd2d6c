/**
 * The BullMQ engine: `PipelineEngine` on per-step BullMQ queues, coordinated by the pure
 * state machine (pipeline/state) through one RunShell per run. Used by
 * `trackscribe process --engine bullmq` and by shadow mode (server/shadow).
 *
 * One engine serves many runs at once: QueueEvents of every step queue are shared and
 * results are routed to the run that enqueued the job (job ids are unique per recording,
 * namespace, task and attempt). A periodic sweep reads the state of every pending job,
 * so a result whose event was missed (listener not yet reading, reconnect) still arrives.
 */
import { randomUUID } from "node:crypto";
import { QueueEvents } from "bullmq";
import { Redis } from "ioredis";
import pg from "pg";
import { pino, type Logger } from "pino";
import { transcribeConcurrency, type Config } from "../../pipeline/config.ts";
import { PipelineInput, type ProgressEvent, type Result } from "../../pipeline/contracts/index.ts";
import type { Storage } from "../../pipeline/ports.ts";
import type { EngineRun, PipelineEngine } from "../../pipeline/runner/engine.ts";
import { PipelineAbortedError } from "../inprocess/inprocess.ts";
import type { RetryPolicy } from "../../pipeline/state/index.ts";
import type { ResultSink } from "../../pipeline/steps/deps.ts";
import { buildInfo, workerIdentity, type WorkerIdentity } from "../identity.ts";
import type { StepDepsFactory } from "../step-ports.ts";
import { createMemoryEventLog, createPgEventLog, type EventLog } from "./event-log.ts";
import { guardPool } from "../../adapters/postgres/pool.ts";
import { allSteps, createStepQueues, queueName, removeRecordingJobs, type StepQueues } from "./queues.ts";
import { RunShell } from "./run-shell.ts";
import { parsePerturbation, startBullmqWorkerHost, type WorkerHost, type WorkerHostOptions } from "./worker-host.ts";

export interface BullmqEngineOptions {
  storage: Storage;
  /** `log` is what `trackscribe process` passes; `logger` is accepted too */
  log?: Logger;
  logger?: Logger;
  /** Postgres for the event log; when absent and DATABASE_URL is set a pool is opened (and closed) here */
  pool?: pg.Pool;
  /** or any event log (the in-memory one is used when there is no database at all) */
  eventLog?: EventLog;
  /** run BullMQ workers inside this process (default true) */
  startWorkers?: boolean;
  /** shared Redis connection (maxRetriesPerRequest: null); created (and closed) here when absent */
  redis?: Redis;
  /** BullMQ key prefix (default BULLMQ_PREFIX); tests use one per test */
  prefix?: string;
  /** StepDeps for the in-process workers (default: workers/step-ports.ts from config) */
  stepDeps?: StepDepsFactory;
  /** where finalize saves the Result (in-process workers only) */
  results?: ResultSink;
  retryPolicy?: Partial<RetryPolicy>;
}

export interface BullmqEngine extends PipelineEngine {
  readonly name: "bullmq";
  readonly eventLog: EventLog;
  readonly prefix: string;
  /** the in-process worker host, when startWorkers */
  workerHost(): WorkerHost | undefined;
  /** the run id of a run in progress, by recording id and namespace (for shadow bookkeeping) */
  activeRuns(): { run_id: string; recording_id: string; namespace: string }[];
  /** remove every BullMQ job of a deleted recording (queues.ts `removeRecordingJobs`) */
  forgetRecording(recordingId: string): Promise<{ removed: number; running: number }>;
}

export function bullmqRetryPolicy(config: Config): Partial<RetryPolicy> {
  return { max_attempts: config.BULLMQ_MAX_ATTEMPTS, base_delay_ms: config.BULLMQ_RETRY_BASE_MS, max_delay_ms: 30_000 };
}

export function workerHostOptions(config: Config, prefix = config.BULLMQ_PREFIX): WorkerHostOptions {
  return {
    prefix,
    concurrency: config.WORKER_CONCURRENCY,
    concurrencyByStep: { transcribe_track: transcribeConcurrency(config) },
    lockDurationMs: config.BULLMQ_LOCK_MS,
    stalledIntervalMs: config.BULLMQ_STALLED_INTERVAL_MS,
    maxStalledCount: config.BULLMQ_MAX_STALLED,
    outageHandbacks: config.STEP_OUTAGE_HANDBACKS,
    outageRetryMs: config.STEP_OUTAGE_RETRY_SECONDS * 1000,
    workDir: config.WORK_DIR,
    perturb: parsePerturbation(config.SHADOW_TEST_PERTURB, config.NODE_ENV),
  };
}

/** `host/slot/pid`; under the supervisor the pid is the supervisor's (WORKER_ID_PID), so the id survives restarts. */
export function bullmqWorkerIdentity(config: Config): WorkerIdentity {
  const build = buildInfo(config.BUILD_COMMIT ? { BUILD_COMMIT: config.BUILD_COMMIT } : {}).build;
  return workerIdentity(config.WORKER_SLOT, build, undefined, config.WORKER_ID_PID ?? process.pid);
}

/** A Redis connection suitable for every BullMQ class (workers need maxRetriesPerRequest: null). */
export function createBullmqRedis(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: null });
}

export function createBullmqEngine(config: Config, options: BullmqEngineOptions): BullmqEngine {
  const log = (options.log ?? options.logger ?? pino({ level: config.LOG_LEVEL })).child({ engine: "bullmq" });
  const prefix = options.prefix ?? config.BULLMQ_PREFIX;
  const closers: (() => Promise<void>)[] = [];

  const redis = options.redis ?? createBullmqRedis(config.REDIS_URL);
  if (!options.redis) closers.push(async () => void (await redis.quit().catch(() => redis.disconnect())));
  let pool = options.pool;
  if (!options.eventLog && !pool && config.DATABASE_URL) {
    const own = guardPool(new pg.Pool({ connectionString: config.DATABASE_URL, max: 4 }), (err) => log.warn({ err: err.message }, "idle Postgres client error"));
    pool = own;
    closers.push(() => own.end());
  }
  const eventLog = options.eventLog ?? (pool ? createPgEventLog(pool) : createMemoryEventLog());
  const queues: StepQueues = createStepQueues(redis, prefix);
  closers.push(() => queues.close());

  const runs = new Set<RunShell>();
  const routes = new Map<string, RunShell>();
  let host: WorkerHost | undefined;
  let sweeper: NodeJS.Timeout | undefined;
  let closing = false;

  // read events from a little before now: QueueEvents starts at '$' only once its first
  // XREAD is issued, and a job finishing in between would otherwise be seen by the sweep only
  const since = `${Date.now() - 2000}-0`;
  const listeners = allSteps().map((step) => {
    const qe = new QueueEvents(queueName(step), { connection: redis, prefix, lastEventId: since });
    qe.on("completed", ({ jobId, returnvalue }) => routes.get(jobId)?.onJobCompleted(jobId, returnvalue));
    qe.on("failed", ({ jobId, failedReason }) => routes.get(jobId)?.onJobFailed(jobId, failedReason));
    qe.on("error", (err) => log.warn({ err, step }, "queue events error"));
    return qe;
  });
  closers.push(async () => void (await Promise.all(listeners.map((l) => l.close()))));

  const ready = (async () => {
    await Promise.all([...listeners.map((l) => l.waitUntilReady()), ...queues.all().map((q) => q.waitUntilReady())]);
    if (options.startWorkers ?? true) {
      let stepDeps = options.stepDeps;
      if (!stepDeps) {
        const { createStepPorts } = await import("../step-ports.ts");
        stepDeps = createStepPorts(config, { storage: options.storage, log, ...(options.results ? { results: options.results } : {}) });
      }
      host = startBullmqWorkerHost({
        redis,
        stepDeps,
        identity: bullmqWorkerIdentity(config),
        logger: log,
        options: workerHostOptions(config, prefix),
      });
    }
    sweeper = setInterval(() => {
      for (const run of runs) run.sweep().catch((err: unknown) => log.warn({ err, run_id: run.runId }, "sweep failed"));
    }, config.BULLMQ_SWEEP_MS);
    sweeper.unref();
  })();
  ready.catch(() => undefined);

  const policy = options.retryPolicy ?? bullmqRetryPolicy(config);

  return {
    name: "bullmq",
    eventLog,
    prefix,
    workerHost: () => host,
    activeRuns: () =>
      [...runs].map((r) => ({ run_id: r.runId, recording_id: r.snapshot().recording_id ?? "", namespace: r.snapshot().namespace ?? "" })),
    forgetRecording: (recordingId) => removeRecordingJobs(redis, queues, recordingId),

    async run(rawInput: PipelineInput, hooks: { onProgress?: (e: ProgressEvent) => void; signal?: AbortSignal } = {}) {
      if (closing) throw new Error("the bullmq engine is closed");
      const input = PipelineInput.parse(rawInput);
      if (hooks.signal?.aborted) throw new PipelineAbortedError();
      await ready;
      const runId = randomUUID();
      const shell = new RunShell({
        runId,
        queues,
        eventLog,
        log: log.child({ recording_id: input.recording_id, namespace: input.namespace, run_id: runId }),
        ...(hooks.onProgress ? { onProgress: hooks.onProgress } : {}),
        route: (id, r) => routes.set(id, r),
        unroute: (id) => routes.delete(id),
        keepCompletedSeconds: 3600,
        keepFailedSeconds: 24 * 3600,
      });
      runs.add(shell);
      const onAbort = (): void => shell.cancel("the run was aborted");
      hooks.signal?.addEventListener("abort", onAbort, { once: true });
      try {
        const result: Result = await shell.start(input, policy);
        const run: EngineRun = { engine: "bullmq", workflow_id: runId };
        return { result, run };
      } finally {
        hooks.signal?.removeEventListener("abort", onAbort);
        runs.delete(shell);
      }
    },

    async close() {
      if (closing) return;
      closing = true;
      await ready.catch(() => undefined);
      if (sweeper) clearInterval(sweeper);
      for (const run of runs) run.abandon("engine closing");
      if (host) await host.stop(config.DRAIN_TIMEOUT_SECONDS * 1000);
      for (const close of closers.reverse()) {
        await close().catch((err: unknown) => log.warn({ err }, "close failed"));
      }
    },
  };
}
