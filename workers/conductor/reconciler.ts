/**
 * A workflow can stop moving (a lost lock or a sweeper gap leaves a JOIN
 * COMPLETED with the next task never scheduled). The reconciler looks at RUNNING workflows
 * of ours; one with no task progress for longer than the threshold gets a forced decision
 * (`PUT /api/workflow/decide/{id}`). Every rescue is logged and counted.
 */
import type { Logger } from "pino";
import type { ConductorApi, WorkflowRecord } from "../../adapters/conductor/client.ts";

export interface ReconcilerOptions {
  workflowName: string;
  intervalMs: number;
  stallMs: number;
  now?: () => number;
  /** after a rescue: the tasks it scheduled were announced by nobody (the worker host wakes its polls) */
  onRescue?: (workflowId: string) => void;
}

/** Latest moment anything happened in the workflow (ms since epoch). */
export function lastProgress(wf: WorkflowRecord): number {
  let t = Math.max(wf.startTime, wf.updateTime);
  for (const task of wf.tasks) t = Math.max(t, task.scheduledTime, task.startTime, task.endTime, task.updateTime);
  return t;
}

const SYSTEM_TASKS = ["JOIN", "FORK_JOIN_DYNAMIC", "FORK_JOIN", "FORK"];

/** seconds past a task's response timeout before the reconciler acts for Conductor's sweeper */
export const ABANDONED_GRACE_MS = 5_000;

/**
 * An in-progress worker task whose worker stopped answering: not updated for longer than its
 * response timeout (a worker holding a long task extends its lease, which updates it).
 * Conductor times such a task out only when it next evaluates the workflow. A poll brings that
 * forward to the task's response timeout, but a sweep that read the workflow just before the
 * poll (the task still SCHEDULED) writes its own postponement after it, up to an hour
 * (`maxPostponeDurationSeconds`): a worker host that died holding finalize right then left its
 * recording `processing` for that hour.
 */
export function abandonedTask(wf: WorkflowRecord, now: number): WorkflowRecord["tasks"][number] | undefined {
  return wf.tasks.find(
    (t) =>
      t.status === "IN_PROGRESS" &&
      !SYSTEM_TASKS.includes(t.taskType) &&
      (t.responseTimeoutSeconds ?? 0) > 0 &&
      now - t.updateTime > ((t.responseTimeoutSeconds ?? 0) + (t.callbackAfterSeconds ?? 0)) * 1000 + ABANDONED_GRACE_MS,
  );
}

/**
 * Pure decision: is this workflow stalled at `now`? RUNNING, and either a worker task was
 * abandoned (above: a forced decision times it out and schedules its retry), or nothing is
 * in progress (a long transcription is progress: its worker holds the task and extends its
 * lease) and nothing changed for longer than the threshold.
 */
export function isStalled(wf: WorkflowRecord, now: number, stallMs: number): boolean {
  if (wf.status !== "RUNNING") return false;
  if (abandonedTask(wf, now)) return true;
  if (wf.tasks.some((t) => t.status === "IN_PROGRESS" && !SYSTEM_TASKS.includes(t.taskType))) return false;
  return now - lastProgress(wf) > stallMs;
}

/** A fingerprint of the workflow's task states, to tell whether a forced decision changed anything. */
export const taskStates = (wf: WorkflowRecord): string =>
  `${wf.status}|${wf.tasks.map((t) => `${t.referenceTaskName}:${t.status}`).join(",")}`;

export interface Reconciler {
  /** how many workflows were rescued since start */
  rescues(): number;
  /** one pass (also run by the timer); returns the ids rescued */
  sweep(): Promise<string[]>;
  stop(): void;
}

export function startReconciler(api: ConductorApi, log: Logger, opts: ReconcilerOptions): Reconciler {
  const now = opts.now ?? Date.now;
  let count = 0;
  let running = false;
  const sweep = async (): Promise<string[]> => {
    if (running) return [];
    running = true;
    const rescued: string[] = [];
    try {
      const ids = await api.runningWorkflowIds(opts.workflowName);
      for (const id of ids) {
        const wf = await api.getWorkflow(id, true);
        if (!isStalled(wf, now(), opts.stallMs)) continue;
        const idle = Math.round((now() - lastProgress(wf)) / 1000);
        const abandoned = abandonedTask(wf, now());
        await api.decide(id);
        const after = await api.getWorkflow(id, true);
        // count a rescue only when the forced decision moved the workflow; a workflow merely
        // waiting for a worker is decided again later but not counted again
        if (taskStates(after) === taskStates(wf)) {
          log.info({ workflow_id: id, idle_seconds: idle }, "reconciler decided an idle workflow; nothing was pending a decision");
          continue;
        }
        count++;
        rescued.push(id);
        opts.onRescue?.(id);
        if (abandoned) log.warn({ workflow_id: id, task: abandoned.referenceTaskName, task_id: abandoned.taskId, worker_id: abandoned.workerId, silent_seconds: Math.round((now() - abandoned.updateTime) / 1000), rescues: count }, "reconciler rescued a stalled workflow (a task's worker stopped answering; forced decide timed it out for a retry)");
        else log.warn({ workflow_id: id, idle_seconds: idle, rescues: count }, "reconciler rescued a stalled workflow (forced decide scheduled its next task)");
      }
    } catch (err) {
      log.warn({ err: (err as Error).message }, "reconciler pass failed; will try again");
    } finally {
      running = false;
    }
    return rescued;
  };
  const timer = setInterval(() => void sweep(), opts.intervalMs);
  timer.unref();
  return { rescues: () => count, sweep, stop: () => clearInterval(timer) };
}
