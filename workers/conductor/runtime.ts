/**
 * One wiring point for everything Conductor-side in a worker process: wait for the server
 * (with back-off), register definitions, start the worker host and the reconciler.
 */
import type { Logger } from "pino";
import { prepareConcurrency, transcribeConcurrency, type Config } from "../../pipeline/config.ts";
import type { Storage } from "../../pipeline/ports.ts";
import type { StepDepsFactory } from "../step-ports.ts";
import { buildInfo, workerIdentity, type WorkerIdentity } from "../identity.ts";
import { createConductorApi, waitForConductor, type ConductorApi } from "../../adapters/conductor/client.ts";
import { FORKED_BY, loadWorkflowDef, registerDefinitions, WORKFLOW_NAME, type TaskDef } from "./definitions.ts";
import { createPollHints, type PollHints } from "./poll-hints.ts";
import { successorMap, type SuccessorMap } from "./successors.ts";
import { CONDUCTOR_TASKS, startConductorWorkerHost, type ConductorHost, type ConductorHostDeps, type ConductorTaskName } from "./host.ts";
import { startReconciler, type Reconciler } from "./reconciler.ts";
import { createSdkClient, type HeldPollOptions } from "./sdk.ts";

export interface ConductorRuntime {
  api: ConductorApi;
  host: ConductorHost;
  reconciler?: Reconciler;
  identity: WorkerIdentity;
  /** wake-ups of this process's held polls; the engine wakes the first step after a start */
  hints: PollHints;
  successors: SuccessorMap;
  stop(drainMs: number): Promise<string[]>;
}

export async function startConductorRuntime(
  config: Config,
  deps: {
    storage: Storage;
    stepDeps: StepDepsFactory;
    log: Logger;
    identity?: WorkerIdentity;
    only?: ConductorHostDeps["only"];
    onTaskEvent?: ConductorHostDeps["onTaskEvent"];
    runStepFn?: ConductorHostDeps["runStepFn"];
    taskOverrides?: Record<string, Partial<TaskDef>>;
    reconciler?: boolean;
    /** this process starts the workflows its workers run (the CLI engine): it wakes their first step */
    startsWorkflows?: boolean;
  },
): Promise<ConductorRuntime> {
  const api = createConductorApi(config.CONDUCTOR_SERVER_URL);
  await waitForConductor(api, { timeoutMs: config.CONDUCTOR_WAIT_SECONDS * 1000, log: (m) => deps.log.info(m) });
  if (config.CONDUCTOR_REGISTER) await registerDefinitions(api, deps.taskOverrides);
  const build = buildInfo(config.BUILD_COMMIT ? { BUILD_COMMIT: config.BUILD_COMMIT } : {}).build;
  const identity = deps.identity ?? workerIdentity(config.WORKER_SLOT, build, undefined, config.WORKER_ID_PID ?? process.pid);
  const hints = createPollHints();
  const successors = successorMap(loadWorkflowDef(), FORKED_BY);
  const only = deps.only ?? (config.CONDUCTOR_TASKS ? parseTaskList(config.CONDUCTOR_TASKS) : undefined);
  const client = await createSdkClient(config.CONDUCTOR_SERVER_URL, heldPollOptions(config, hints, successors, deps.startsWorkflows ?? false, only));
  const host = startConductorWorkerHost({
    client,
    storage: deps.storage,
    stepDeps: deps.stepDeps,
    identity,
    log: deps.log,
    workDir: config.WORK_DIR,
    pollIntervalMs: config.CONDUCTOR_POLL_INTERVAL_MS,
    concurrency: config.WORKER_CONCURRENCY,
    longPollMs: config.CONDUCTOR_LONG_POLL_MS,
    // the per-track steps: every track of a meeting at once (their work is bounded elsewhere:
    // the decoder pool for transcription, the child slots for ffmpeg)
    concurrencyByTask: { transcribe_track: transcribeConcurrency(config), prepare_track: prepareConcurrency(config) },
    only,
    onTaskEvent: deps.onTaskEvent,
    runStepFn: deps.runStepFn,
    hints,
    outageHandbacks: config.STEP_OUTAGE_HANDBACKS,
    outageRetrySeconds: config.STEP_OUTAGE_RETRY_SECONDS,
    retryBudget: taskRetryBudget(api),
  });
  const reconciler =
    (deps.reconciler ?? config.RECONCILER_ENABLED)
      ? startReconciler(api, deps.log, {
          workflowName: WORKFLOW_NAME,
          intervalMs: config.RECONCILER_INTERVAL_SECONDS * 1000,
          stallMs: config.RECONCILER_STALL_SECONDS * 1000,
          onRescue: () => hints.wake(CONDUCTOR_TASKS),
        })
      : undefined;
  return {
    api,
    host,
    reconciler,
    identity,
    hints,
    successors,
    async stop(drainMs) {
      reconciler?.stop();
      return host.stop(drainMs);
    },
  };
}

/**
 * Our task types' polls are held here (sdk.ts) when every task of the type is announced
 * here: the first step only where workflows are started, any other step only when this
 * process runs every step before it. A type whose predecessor runs elsewhere (a host that
 * serves some types, CONDUCTOR_TASKS) would see each of its tasks only at the next slice,
 * up to CONDUCTOR_POLL_IDLE_MAX_MS late: its long poll stays on the server.
 */
export function heldPollOptions(
  config: Pick<Config, "CONDUCTOR_HELD_POLLS" | "CONDUCTOR_POLL_SLICE_MS" | "CONDUCTOR_POLL_IDLE_MAX_MS">,
  hints: PollHints,
  successors: SuccessorMap,
  startsWorkflows = false,
  served: readonly string[] = CONDUCTOR_TASKS,
): HeldPollOptions {
  return {
    ours: new Set(CONDUCTOR_TASKS),
    held: announcedTypes(successors, served, startsWorkflows),
    enabled: config.CONDUCTOR_HELD_POLLS,
    hints,
    successors,
    sliceMs: config.CONDUCTOR_POLL_SLICE_MS,
    idleMaxMs: config.CONDUCTOR_POLL_IDLE_MAX_MS,
  };
}

/** the served types whose tasks a process running `served` learns of as they are scheduled */
export function announcedTypes(successors: SuccessorMap, served: readonly string[], startsWorkflows: boolean): Set<string> {
  const here = new Set(served);
  const first = new Set(successors.start.map((s) => s.type));
  /** a type is announced here when no step before it runs elsewhere */
  const elsewhereBefore = new Set<string>();
  for (const [type, next] of successors.after) if (!here.has(type)) for (const s of next) elsewhereBefore.add(s.type);
  return new Set(served.filter((t) => (startsWorkflows || !first.has(t)) && !elsewhereBefore.has(t)));
}

export function parseTaskList(spec: string): ConductorTaskName[] {
  const names = spec.split(",").map((s) => s.trim()).filter(Boolean);
  const unknown = names.filter((n) => !(CONDUCTOR_TASKS as readonly string[]).includes(n));
  if (unknown.length) throw new Error(`CONDUCTOR_TASKS names unknown task type(s): ${unknown.join(", ")} (known: ${CONDUCTOR_TASKS.join(", ")})`);
  return names as ConductorTaskName[];
}

/**
 * A task type's retryCount as the server has it (read at most every 30 s: an operator or a
 * test may change a definition while workers run).
 */
function taskRetryBudget(api: Pick<ReturnType<typeof createConductorApi>, "getTaskDef">): (taskType: string) => Promise<number | undefined> {
  const cache = new Map<string, { at: number; value: number | undefined }>();
  return async (taskType) => {
    const hit = cache.get(taskType);
    if (hit && Date.now() - hit.at < 30_000) return hit.value;
    const rc = (await api.getTaskDef(taskType))?.retryCount;
    const value = typeof rc === "number" ? rc : undefined;
    cache.set(taskType, { at: Date.now(), value });
    return value;
  };
}
