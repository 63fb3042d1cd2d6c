/**
 * The Conductor worker host: one TaskManager polling every task type of the workflow,
 * each task run as "before hook → parse input with its zod schema → step → validate output
 * → after hook → stamp with the worker's identity" (hooks.ts: the per-step table, and the
 * fork lists built from the graph). Invalid input is a terminal failure whose reason names the
 * field; any other error fails the attempt and Conductor retries per the task definition.
 * stop() stops polling and then WAITS for in-flight tasks (the SDK's stopPolling does not).
 */
import { mkdir, rm } from "node:fs/promises";
import path from "node:path";
import { TaskManager, TaskRunner, type ConductorWorker, type TaskRunnerEventsListener } from "@io-orkes/conductor-javascript";
import type { Logger } from "pino";
import { formatFailure, isInvalidInput, publicFailure } from "../../pipeline/failures.ts";
import type { TaskAttemptEvent } from "../../pipeline/contracts/progress.ts";
import type { StepName } from "../../pipeline/contracts/index.ts";
import { forkSources, perTrackSteps } from "../../pipeline/state/index.ts";
import { runStep, type StepTable } from "../../pipeline/steps/index.ts";
import type { Storage } from "../../pipeline/ports.ts";
import type { StepDepsFactory } from "../step-ports.ts";
import type { WorkerIdentity } from "../identity.ts";
import type { SdkClient } from "./sdk.ts";
import type { PollHints } from "./poll-hints.ts";
import { isDependencyOutage } from "../outage.ts";
import { afterStep, beforeStep, forkPlanFor, planTracks, type HookDeps } from "./hooks.ts";
import { CONDUCTOR_TASKS, type ConductorTaskName } from "./definitions.ts";
import { PLAN_TRACKS } from "./contracts.ts";
export { CONDUCTOR_TASKS, type ConductorTaskName };
export { UnknownStorageKeyError } from "./hooks.ts";

/** What the host reports about each task it runs (the API writes these as events). */
export type TaskEvent = TaskAttemptEvent<ConductorTaskName>;

export interface ConductorHostDeps {
  client: SdkClient;
  storage: Storage;
  stepDeps: StepDepsFactory;
  identity: WorkerIdentity;
  log: Logger;
  workDir: string;
  pollIntervalMs?: number;
  concurrency?: number;
  /** per task type, instead of `concurrency` (transcribe_track: see transcribeConcurrency) */
  concurrencyByTask?: Partial<Record<ConductorTaskName, number>>;
  /** batch poll timeout: the server holds an empty poll this long (default 100 ms) */
  longPollMs?: number;
  /** serve only these task types (default: all) */
  only?: readonly ConductorTaskName[];
  onTaskEvent?: (e: TaskEvent) => void | Promise<void>;
  /** run a step; the supervisor swaps in a child-process runner for heavy steps */
  runStepFn?: typeof runStep;
  /** the wake-ups of the held polls (sdk.ts): closed on stop so held polls end at once */
  hints?: PollHints;
  /** a task failing because a dependency is down is handed back this many times (its poll count), not failed (default 0) */
  outageHandbacks?: number;
  /** … to be offered again after this many seconds (default 5) */
  outageRetrySeconds?: number;
  /** the retries a task type's definition allows on the server (its retryCount), when known: a per-track task's last attempt gives its track up instead of failing */
  retryBudget?: (taskType: string) => Promise<number | undefined>;
}

export interface ConductorHost {
  readonly pollWorkerId: string;
  inFlight(): string[];
  /** stop polling, let in-flight tasks finish until the deadline; returns the task ids cut off */
  stop(drainMs: number): Promise<string[]>;
}

/**
 * A task whose input the server moved to its external payload storage (input above its
 * `taskInputPayloadSizeThreshold`): the poll hands over an empty input and a path into a
 * store workers cannot read. Our server settings keep every payload inline up to
 * CONDUCTOR_PAYLOAD_LIMIT (scripts/conductor.ts); a server without them fails such a task
 * with this reason instead of a schema error about a missing field.
 */
export class ExternalPayloadError extends Error {
  override readonly name = "ExternalPayloadError";
  readonly retryable = false;
}

/** The id a worker polls with: `host/slot/pid#build`, so poll data shows the build (ghost workers of an old build stand out). */
export const pollWorkerId = (identity: WorkerIdentity): string => `${identity.worker_id}#${identity.build}`;

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * The SDK's update-v2 endpoint hands the worker its next task in the same call; after
 * stopPolling() such a chained task is dropped although the server has assigned it, so it
 * waits out its response timeout. Results go through the plain update endpoint instead.
 */
function disableUpdateChaining(): void {
  (TaskRunner as unknown as { updateV2Available: boolean | null }).updateV2Available = false;
}

export function startConductorWorkerHost(deps: ConductorHostDeps): ConductorHost {
  disableUpdateChaining();
  /** tasks executing or whose result is not yet acknowledged by Conductor */
  const inflight = new Map<string, ConductorTaskName>();
  let pollsInFlight = 0;
  const stamp = { worker_id: deps.identity.worker_id, build: deps.identity.build };
  const run = deps.runStepFn ?? runStep;

  const hookDeps: HookDeps = { storage: deps.storage };

  async function handle(name: ConductorTaskName, input: Record<string, unknown>, scratchDir: string, attempt: string): Promise<Record<string, unknown>> {
    if (name === PLAN_TRACKS) return planTracks(input, deps.storage);
    const step = name as StepName;
    const stepInput = await beforeStep(step, input, hookDeps);
    const out = (await run(step as keyof StepTable, stepInput, deps.stepDeps(scratchDir, { log: deps.log }))) as Record<string, unknown>;
    const carried = await afterStep(step, out, stepInput, { ...hookDeps, attempt });
    // a step whose output lists a per-track step's items also hands Conductor that fork list
    const forked = forkSources().find((f) => f.source === step);
    return forked ? { ...carried, ...forkPlanFor(forked.step, stepInput, { [step]: out }) } : carried;
  }

  const workers: ConductorWorker[] = (deps.only ?? CONDUCTOR_TASKS).map((name) => ({
    taskDefName: name,
    concurrency: deps.concurrencyByTask?.[name] ?? deps.concurrency ?? 1,
    pollInterval: deps.pollIntervalMs ?? 100,
    // long steps extend their lease (heartbeat), so response timeouts can stay short and a
    // dead worker's task is retried quickly
    leaseExtendEnabled: true,
    execute: async (task) => {
      const taskId = task.taskId ?? "unknown";
      const input = (task.inputData ?? {}) as Record<string, unknown>;
      const track = (input.track as { track_index?: number } | undefined)?.track_index;
      const base = {
        task: name,
        task_id: taskId,
        workflow_id: task.workflowInstanceId ?? "",
        recording_id: typeof input.recording_id === "string" ? input.recording_id : undefined,
        namespace: typeof input.namespace === "string" ? input.namespace : undefined,
        track_index: typeof track === "number" ? track : undefined,
        worker_id: deps.identity.worker_id,
      };
      const log = deps.log.child({ task: name, task_id: taskId, workflow_id: base.workflow_id, recording_id: base.recording_id });
      inflight.set(taskId, name);
      const started = Date.now();
      const scratch = path.join(deps.workDir, "scratch", taskId);
      await deps.onTaskEvent?.({ ...base, status: "started" });
      try {
        if (task.externalInputPayloadStoragePath) {
          throw new ExternalPayloadError(
            `the server moved this task's input to its external payload storage (${task.externalInputPayloadStoragePath}), which workers cannot read: ` +
              "start Conductor with its payload thresholds raised (conductor.app.taskInputPayloadSizeThreshold and the others: see CONDUCTOR_PAYLOAD_LIMIT in scripts/conductor.ts)",
          );
        }
        await mkdir(scratch, { recursive: true });
        const out = await handle(name, input, scratch, taskId);
        const outputData = { ...out, worker: stamp };
        const duration_ms = Date.now() - started;
        log.info({ duration_ms }, "task completed");
        await deps.onTaskEvent?.({ ...base, status: "succeeded", duration_ms });
        return { status: "COMPLETED" as const, outputData };
      } catch (err) {
        // the reason Conductor keeps (and the API shows) is a code and a client-fit message;
        // the error's own text (an upstream's address or body, a child's log tail) stays in
        // this log and in the task's output, which only operators read
        const failure = publicFailure(err);
        const terminal = (err as { retryable?: boolean }).retryable === false || isInvalidInput(failure);
        const detail = errorText(err);
        const reason = formatFailure(failure);
        const polls = typeof task.pollCount === "number" ? task.pollCount : 1;
        if (!terminal && isDependencyOutage(err) && polls <= (deps.outageHandbacks ?? 0)) {
          // a dependency is down, not the step's fault: hand the task back for later; Conductor
          // offers it again after the delay and counts none of the task's retries
          const after = deps.outageRetrySeconds ?? 5;
          log.warn({ err: detail, polls, of: deps.outageHandbacks, callback_after_seconds: after }, "a dependency is down: task handed back to Conductor (no retry spent)");
          await deps.onTaskEvent?.({ ...base, status: "failed", terminal: false, message: `a service the step needs is unavailable; it runs again in ${after} s`, duration_ms: Date.now() - started });
          return { status: "IN_PROGRESS" as const, callbackAfterSeconds: after, outputData: { worker: stamp, handed_back: polls, error: detail.slice(0, 4000) } };
        }
        log.warn({ err: detail, code: failure.code, terminal }, "task failed");
        await deps.onTaskEvent?.({ ...base, status: "failed", terminal, message: reason, duration_ms: Date.now() - started });
        // a per-track task also says which track it gave up on, as a FailedTrack: when this
        // was its last attempt, the server completes the (optional) fork task with errors and
        // the JOIN hands this output on, so the meeting goes on without the track
        if (typeof track === "number" && perTrackSteps.has(name as StepName)) {
          // a per-track task's last attempt (no retry left, or an error no retry fixes) gives
          // its track up: it completes with a FailedTrack, and the meeting goes on without the
          // track. A task that times out (its host died) is not one of these: Conductor and the
          // API's infrastructure budget retry it.
          const budget = terminal ? 0 : await deps.retryBudget?.(name).catch(() => undefined);
          const attempt = typeof task.retryCount === "number" ? task.retryCount : 0;
          if (budget !== undefined && attempt >= budget) {
            return {
              status: "COMPLETED" as const,
              outputData: { worker: stamp, error: detail.slice(0, 4000), error_code: failure.code, track_index: track, failed: { step: name, code: failure.code, message: failure.message } },
            };
          }
        }
        return {
          status: terminal ? ("FAILED_WITH_TERMINAL_ERROR" as const) : ("FAILED" as const),
          reasonForIncompletion: reason.slice(0, 1000),
          outputData: { worker: stamp, error: detail.slice(0, 4000), error_code: failure.code },
        };
      } finally {
        // the task stays in flight until the SDK reports its result delivered (listener below)
        await rm(scratch, { recursive: true, force: true });
      }
    },
  }));

  const sdkLog = {
    info: (...a: unknown[]) => deps.log.debug({ sdk: a.map(String).join(" ") }, "conductor sdk"),
    debug: (...a: unknown[]) => deps.log.trace({ sdk: a.map(String).join(" ") }, "conductor sdk"),
    warn: (...a: unknown[]) => deps.log.warn({ sdk: a.map(String).join(" ") }, "conductor sdk"),
    error: (...a: unknown[]) => deps.log.error({ sdk: a.map(String).join(" ") }, "conductor sdk"),
  };
  const id = pollWorkerId(deps.identity);
  const delivered = (e: { taskId: string }): void => {
    inflight.delete(e.taskId);
  };
  const listener: TaskRunnerEventsListener = {
    onPollStarted: () => {
      pollsInFlight++;
    },
    onPollCompleted: () => {
      pollsInFlight = Math.max(0, pollsInFlight - 1);
    },
    onPollFailure: () => {
      pollsInFlight = Math.max(0, pollsInFlight - 1);
    },
    onTaskUpdateCompleted: delivered,
    onTaskUpdateFailure: (e) => {
      deps.log.error({ task_id: e.taskId, err: e.cause?.message }, "could not deliver a task result to Conductor");
      delivered(e);
    },
  };
  const manager = new TaskManager(deps.client, workers, {
    logger: sdkLog,
    eventListeners: [listener],
    options: { workerID: id, pollInterval: deps.pollIntervalMs ?? 100, concurrency: deps.concurrency ?? 1, batchPollingTimeout: deps.longPollMs ?? 100 },
  });
  manager.startPolling();
  deps.log.info({ worker_id: deps.identity.worker_id, build: deps.identity.build, tasks: workers.map((w) => w.taskDefName) }, "conductor worker host polling");

  return {
    pollWorkerId: id,
    inFlight: () => [...inflight.keys()],
    async stop(drainMs) {
      await manager.stopPolling();
      // polls held in this process end now (none is on the wire to the server for long)
      deps.hints?.close();
      const deadline = Date.now() + drainMs;
      // wait for running tasks AND their result delivery, and for polls already sent (a poll
      // in flight can still hand over a task, which then runs and is reported too)
      while ((inflight.size > 0 || pollsInFlight > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const cut = [...inflight.entries()].map(([taskId, name]) => `${name}:${taskId}`);
      if (cut.length) deps.log.warn({ cut_off: cut }, "drain deadline passed with tasks still running");
      return cut;
    },
  };
}
