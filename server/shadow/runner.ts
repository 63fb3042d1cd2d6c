/**
 * Shadow mode: Conductor stays authoritative; for sampled recordings the BullMQ engine
 * runs the same input in parallel, writing only to namespace `bullmq` (storage keys
 * `recordings/{id}/bullmq/…`, results row engine 'bullmq'). When both have ended (or
 * one failed) the two runs are compared per step and per track and the report is
 * stored. Nothing here touches what the user sees: no progress events, no status.
 */
import { randomUUID } from "node:crypto";
import type pg from "pg";
import type { Logger } from "pino";
import type { Config } from "../../pipeline/config.ts";
import type { PipelineInput } from "../../pipeline/contracts/index.ts";
import type { Storage } from "../../pipeline/ports.ts";
import type { PipelineEngine } from "../../pipeline/runner/engine.ts";
import { replay, type PipelineState } from "../../pipeline/state/index.ts";
import type { ResultSink } from "../../pipeline/steps/deps.ts";
import type { EventLog } from "../../workers/bullmq/event-log.ts";
import { compareRuns, rulesFromConfig, type ShadowReport } from "./compare.ts";
import { bullmqSnapshot, conductorSnapshot, type ConductorWorkflowJson } from "./snapshots.ts";
import { createShadowStore, type ShadowStore } from "./store.ts";
import { loadTranscript } from "../../workers/conductor/transcripts.ts";
import { loadCarried } from "../../workers/conductor/carried.ts";

export const SHADOW_NAMESPACE = "bullmq";
/** Conductor workflow name (workflows/multitrack_diarization.json) */
export const CONDUCTOR_WORKFLOW_NAME = "multitrack_diarization";

export interface ShadowDeps {
  config: Config;
  engine: Pick<PipelineEngine, "run">;
  eventLog: EventLog;
  store: ShadowStore;
  log: Logger;
  /** the authoritative run's execution (default: the Conductor HTTP API at CONDUCTOR_SERVER_URL) */
  conductorWorkflow?: ConductorLookup;
  /** where Conductor's transcripts are (its tasks carry their keys); the default lookup reads them back */
  storage?: Pick<Storage, "get">;
  /** where the shadow's Result is saved (engine 'bullmq') */
  results?: ResultSink;
  /** poll interval while waiting for Conductor (default 1000 ms) */
  pollMs?: number;
  /** aborts comparisons still waiting (server shutdown) */
  signal?: AbortSignal;
  /** shadow runs in progress, by recording id (so that deleting a recording can stop its run) */
  active?: Map<string, { abort: AbortController; done: Promise<unknown> }>;
  /** removes a deleted recording's BullMQ jobs (finished ones outlive a run until their age-based removal) */
  forget?: (recordingId: string) => Promise<{ removed: number; running: number }>;
}

export type ConductorLookup = (recordingId: string, workflowId?: string) => Promise<ConductorWorkflowJson | null>;

export interface ShadowHandle {
  sampled: boolean;
  /** resolves with the stored report (null when not sampled or when the comparison failed) */
  done: Promise<ShadowReport | null>;
}

/** FNV-1a of the recording id in [0, 1): the same recording is always sampled the same way. */
export function sampleFraction(recordingId: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < recordingId.length; i++) {
    h ^= recordingId.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h / 2 ** 32;
}

export function shouldShadow(config: Pick<Config, "SHADOW_MODE" | "SHADOW_SAMPLE_RATE">, recordingId: string): boolean {
  return config.SHADOW_MODE === "bullmq" && config.SHADOW_SAMPLE_RATE > 0 && sampleFraction(recordingId) < config.SHADOW_SAMPLE_RATE;
}

/**
 * Start the shadow run of a recording whose Conductor workflow has just been started.
 * Returns at once; the run and the comparison continue in the background (`done`).
 */
export function startShadowRun(deps: ShadowDeps, recordingId: string, input: PipelineInput, opts: { workflowId?: string } = {}): ShadowHandle {
  if (!shouldShadow(deps.config, recordingId)) return { sampled: false, done: Promise.resolve(null) };
  const log = deps.log.child({ recording_id: recordingId, shadow: SHADOW_NAMESPACE });
  const abort = new AbortController();
  const signal = deps.signal ? AbortSignal.any([deps.signal, abort.signal]) : abort.signal;
  const done = runAndCompare({ ...deps, signal }, recordingId, { ...input, namespace: SHADOW_NAMESPACE }, opts.workflowId, log)
    .catch(async (err: unknown) => {
      if (abort.signal.aborted) {
        log.info("shadow run cancelled");
        return null;
      }
      const message = err instanceof Error ? err.message : String(err);
      log.error({ err }, "shadow comparison failed");
      await deps.store.saveError(recordingId, message).catch(() => undefined);
      return null;
    })
    .finally(() => {
      if (deps.active?.get(recordingId)?.abort === abort) deps.active.delete(recordingId);
    });
  deps.active?.set(recordingId, { abort, done });
  return { sampled: true, done };
}

/**
 * Stop the shadow run of a recording (it is being deleted): its jobs are removed from Redis
 * (waiting and finished; a running one once it has finished), no comparison is stored, and
 * this resolves once the run has stopped, so that the caller can then remove what it wrote.
 * A step already running on a worker finishes first; what it writes afterwards is removed by
 * the API's storage sweeper, which sweeps a deleted recording's prefix again on a schedule
 * (adapters/storage/sweeper.ts).
 */
export async function cancelShadowRun(deps: ShadowDeps, recordingId: string): Promise<boolean> {
  const run = deps.active?.get(recordingId);
  if (run) {
    run.abort.abort(new Error(`recording ${recordingId} deleted`));
    await run.done;
  }
  // its jobs, finished or waiting, whichever process ran it; a job still running is removed
  // by the sweeper's later passes (server/app.ts passes `forget` to it)
  await deps.forget?.(recordingId).catch((err: unknown) => deps.log.warn({ err, recording_id: recordingId }, "could not remove the shadow run's jobs; the sweeper will"));
  return Boolean(run);
}

async function runAndCompare(deps: ShadowDeps, recordingId: string, input: PipelineInput, workflowId: string | undefined, log: Logger): Promise<ShadowReport> {
  await deps.store.begin(recordingId);
  if (workflowId) await deps.store.setRunIds(recordingId, { conductor_workflow_id: workflowId });
  log.info("shadow run started");
  let knownRunId: string | undefined;
  try {
    const { result, run } = await deps.engine.run(input, deps.signal ? { signal: deps.signal } : {});
    knownRunId = run.workflow_id;
    await deps.results?.saveResult(recordingId, SHADOW_NAMESPACE, result);
  } catch (err) {
    deps.signal?.throwIfAborted(); // cancelled (recording deleted, or shutdown): nothing to compare
    // a failed shadow run is compared like any other: its failure is part of the report
    log.warn({ err }, "shadow run failed");
  }
  const { state, runId } = await shadowState(deps.eventLog, recordingId, knownRunId);
  await deps.store.setRunIds(recordingId, { bullmq_run_id: runId });

  const lookup = deps.conductorWorkflow ?? conductorHttpLookup(deps.config.CONDUCTOR_SERVER_URL, deps.storage);
  const wf = await waitForConductor(lookup, recordingId, workflowId, deps.config.SHADOW_WAIT_SECONDS * 1000, deps.pollMs ?? 1000, deps.signal);
  const report = compareRuns(conductorSnapshot(wf), bullmqSnapshot(state, runId), rulesFromConfig(deps.config));
  await deps.store.saveReport(recordingId, report);
  log.info({ verdict: report.verdict, ...report.counts }, "shadow comparison stored");
  return report;
}

/** The shadow run's state: its stored final state, or a replay of its event log. */
export async function shadowState(eventLog: EventLog, recordingId: string, runId?: string): Promise<{ state: PipelineState; runId: string }> {
  const run = runId ? await eventLog.run(runId) : await eventLog.latestRun(recordingId, SHADOW_NAMESPACE);
  if (!run) throw new Error(`no ${SHADOW_NAMESPACE} run was logged for recording ${recordingId}`);
  const state = run.final_state ?? replay((await eventLog.events(run.run_id)).map((e) => e.event)).state;
  return { state, runId: run.run_id };
}

/**
 * Poll until the workflow has ended. Conductor being briefly unreachable is not an error
 * (it can be slow or away for a while): failed look-ups are retried until the deadline.
 */
async function waitForConductor(
  lookup: ConductorLookup,
  recordingId: string,
  workflowId: string | undefined,
  timeoutMs: number,
  pollMs: number,
  signal?: AbortSignal,
): Promise<ConductorWorkflowJson> {
  const deadline = Date.now() + timeoutMs;
  let last: ConductorWorkflowJson | null = null;
  let lastError: unknown;
  for (;;) {
    signal?.throwIfAborted();
    last = await lookup(recordingId, workflowId).catch((err: unknown) => {
      lastError = err;
      return last;
    });
    if (last && last.status !== "RUNNING" && last.status !== "PAUSED") return last;
    if (Date.now() >= deadline) {
      if (last) return last; // compared as still running: every unfinished task shows up as a status mismatch
      const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : "";
      throw new Error(`no Conductor workflow found for recording ${recordingId} within ${Math.round(timeoutMs / 1000)} s${why}`);
    }
    await sleep(pollMs, signal);
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason instanceof Error ? signal!.reason : new Error("aborted"));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Conductor's HTTP API: by workflow id, or the newest workflow correlated with the recording id. */
export function conductorHttpLookup(baseUrl: string, storage?: Pick<Storage, "get">, workflowName = CONDUCTOR_WORKFLOW_NAME): ConductorLookup {
  const base = baseUrl.replace(/\/+$/, "");
  // Conductor carries a track's words as a storage key (workers/conductor/transcripts.ts): read them back
  const withWords = async (wf: ConductorWorkflowJson | null): Promise<ConductorWorkflowJson | null> => {
    if (!wf || !storage) return wf;
    const tasks = await Promise.all(
      (wf.tasks ?? []).map(async (t) =>
        t.outputData && t.status === "COMPLETED" ? { ...t, outputData: await loadCarried(storage, (await loadTranscript(storage, t.outputData)) as Record<string, unknown>) } : t,
      ),
    );
    // and the merged words and topics, finalize's (the workflow output) included: workers/conductor/carried.ts
    return { ...wf, tasks, ...(wf.output ? { output: await loadCarried(storage, wf.output) } : {}) };
  };
  return async (recordingId, workflowId) => {
    if (workflowId) {
      const res = await fetch(`${base}/workflow/${encodeURIComponent(workflowId)}?includeTasks=true`);
      if (res.status === 404) return null;
      if (!res.ok) throw new Error(`Conductor answered ${res.status} for workflow ${workflowId}`);
      return withWords((await res.json()) as ConductorWorkflowJson);
    }
    const res = await fetch(
      `${base}/workflow/${encodeURIComponent(workflowName)}/correlated/${encodeURIComponent(recordingId)}?includeClosed=true&includeTasks=true`,
    );
    if (!res.ok) throw new Error(`Conductor answered ${res.status} for workflows correlated with ${recordingId}`);
    const list = (await res.json()) as (ConductorWorkflowJson & { startTime?: number })[];
    return withWords(list.sort((a, b) => (b.startTime ?? 0) - (a.startTime ?? 0))[0] ?? null);
  };
}

/**
 * Wiring for the API server: the BullMQ engine (workers inside the API process unless
 * SHADOW_WORKERS_IN_API=false), its Postgres event log and the shadow store, as the
 * `deps` of startShadowRun. Returns undefined when SHADOW_MODE is off. Close it on shutdown.
 */
export async function createShadowDeps(
  config: Config,
  opts: { storage: Storage; pool: pg.Pool; log: Logger; results?: ResultSink },
): Promise<(ShadowDeps & { close(): Promise<void> }) | undefined> {
  if (config.SHADOW_MODE !== "bullmq") return undefined;
  const { createBullmqEngine } = await import("../../workers/bullmq/engine.ts");
  const engine = createBullmqEngine(config, {
    storage: opts.storage,
    log: opts.log,
    pool: opts.pool,
    startWorkers: config.SHADOW_WORKERS_IN_API,
    ...(opts.results ? { results: opts.results } : {}),
  });
  const shutdown = new AbortController();
  return {
    config,
    engine,
    eventLog: engine.eventLog,
    // this process's runs carry its id and heartbeat (a run whose process died is failed by another)
    store: createShadowStore(opts.pool, { runner: randomUUID() }),
    log: opts.log,
    storage: opts.storage,
    signal: shutdown.signal,
    active: new Map(),
    forget: (recordingId) => engine.forgetRecording(recordingId),
    ...(opts.results ? { results: opts.results } : {}),
    close: async () => {
      shutdown.abort(new Error("shadow mode shutting down"));
      await engine.close();
    },
  };
}
