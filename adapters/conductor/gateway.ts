/**
 * The API's view of Conductor: start the pipeline workflow for a recording, read its
 * state, retry it from the failed task, terminate and remove it. The workflow definition
 * and its registration belong to workflows/ and workers/conductor/; this module only names
 * it. Calls go through the project's typed REST client (adapters/conductor/client.ts) rather
 * than the SDK's WorkflowExecutor: loading the SDK bundle costs the API ~15 MB of resident
 * memory (~90 MB through tsx's ESM loader) against a 150 MB budget, for four REST calls.
 */
import type { Logger } from "pino";
import type { PipelineInput } from "../../pipeline/contracts/index.ts";
import { ConductorError, createConductorApi, type ConductorApi, type WorkflowRecord } from "./client.ts";

export const WORKFLOW_NAME = "multitrack_diarization";
export const WORKFLOW_VERSION = 1;

export type WorkflowState = "RUNNING" | "COMPLETED" | "FAILED" | "TIMED_OUT" | "TERMINATED" | "PAUSED";

export interface WorkflowSnapshot {
  workflow_id: string;
  status: WorkflowState;
  /** why it did not complete (Conductor's reasonForIncompletion or the failed task's reason) */
  reason?: string;
  /** the step (task definition name) that failed, when one did */
  failed_step?: string;
  output?: Record<string, unknown>;
  /** every worker task attempt so far, in order (system tasks left out): what infraRescue reads */
  attempts?: TaskAttempt[];
}

/** One attempt of a worker task as Conductor keeps it. */
export interface TaskAttempt {
  step: string;
  ref: string;
  status: string;
}

export interface WorkflowGateway {
  /** start the pipeline for a recording (correlation id = recording id); resolves with the workflow id */
  start(input: PipelineInput): Promise<string>;
  /**
   * The newest workflow started for a recording (correlation id = recording id), if any:
   * how a start that timed out but did start is found, instead of starting a second one.
   */
  findByCorrelation(recordingId: string): Promise<string | undefined>;
  /** undefined when Conductor does not know the workflow */
  get(workflowId: string): Promise<WorkflowSnapshot | undefined>;
  /** Conductor's retry: reschedule the failed task and continue from there */
  retry(workflowId: string): Promise<void>;
  /**
   * Conductor's restart: run the ended workflow again from its first task (same id and
   * input). For a meeting whose every track failed: its tracks' tasks ended as failed
   * tracks (optional fork tasks), so a retry of the step that found none left would only
   * fail again; the tracks must run again.
   */
  restart?(workflowId: string): Promise<void>;
  /** terminate if running, then remove the execution; a workflow Conductor does not know is fine */
  remove(workflowId: string, reason: string): Promise<void>;
  /** resolves when Conductor answers its health check */
  ping(signal?: AbortSignal): Promise<void>;
  /** the retries a task type's definition allows (its retryCount on the server), when known */
  retryBudget?(step: string): Promise<number | undefined>;
}

export class ConductorUnavailableError extends Error {
  override readonly name = "ConductorUnavailableError";
}

interface TaskLike {
  status?: string;
  taskDefName?: unknown;
  taskType?: string;
  referenceTaskName?: string;
  reasonForIncompletion?: string | null;
}

export function snapshotOf(wf: {
  workflowId?: string;
  status?: string;
  reasonForIncompletion?: string | null;
  output?: Record<string, unknown>;
  tasks?: TaskLike[];
}): WorkflowSnapshot {
  const failed = (wf.tasks ?? []).filter((t) => t.status && /^(FAILED|FAILED_WITH_TERMINAL_ERROR|TIMED_OUT|CANCELED)$/.test(t.status) && t.taskType !== "JOIN");
  const culprit = failed.find((t) => t.status !== "CANCELED") ?? failed[0];
  const reason = wf.reasonForIncompletion || (culprit ? `${culprit.referenceTaskName ?? culprit.taskDefName}: ${culprit.reasonForIncompletion ?? culprit.status}` : undefined);
  const system = /^(JOIN|FORK|FORK_JOIN|FORK_JOIN_DYNAMIC|DECISION|SWITCH|INLINE|SET_VARIABLE|TERMINATE|SUB_WORKFLOW)$/;
  const attempts = (wf.tasks ?? [])
    .filter((t) => t.status && !system.test(t.taskType ?? "") && typeof t.taskDefName === "string")
    .map((t) => ({ step: t.taskDefName as string, ref: t.referenceTaskName ?? (t.taskDefName as string), status: t.status! }));
  return {
    workflow_id: String(wf.workflowId ?? ""),
    status: (wf.status ?? "RUNNING") as WorkflowState,
    ...(reason ? { reason } : {}),
    ...(typeof culprit?.taskDefName === "string" ? { failed_step: culprit.taskDefName } : {}),
    ...(wf.output ? { output: wf.output } : {}),
    ...(attempts.length ? { attempts } : {}),
  };
}

/**
 * Where a workflow stands shortly after Conductor's `retry`:
 *  - `lost`: it failed again before the retried tasks ran. The server's retry (v3.32)
 *    puts a canceled JOIN back on the JOIN queue *before* it creates the retried branch
 *    tasks; a JOIN evaluated in between sees the old failed branch, fails, and fails the
 *    workflow, and the fresh branch task is canceled unrun. Seen in a CI run: the JOIN
 *    failed 12 ms after the retry, the branch task was created 48 ms later. Another retry
 *    is safe: the JOIN is now FAILED, and the server reschedules a failed JOIN together
 *    with its branch tasks, queueing it after they exist.
 *  - `started`: a task scheduled by the retry has started or ended (the JOIN now sees it),
 *    or the workflow is in any other state than RUNNING/FAILED: nothing to watch.
 *  - `pending`: the retried tasks are scheduled and not started yet.
 */
export function retryOutcome(wf: WorkflowRecord): "lost" | "started" | "pending" {
  const at = Number((wf as { lastRetriedTime?: unknown }).lastRetriedTime) || 0;
  if (wf.status !== "RUNNING" && wf.status !== "FAILED") return "started";
  const since = wf.tasks.filter((t) => t.scheduledTime >= at && t.taskType !== "JOIN");
  const joinFailedSince = wf.tasks.some((t) => t.taskType === "JOIN" && t.status === "FAILED" && t.endTime >= at);
  if (wf.status === "FAILED" && joinFailedSince && since.some((t) => t.status === "CANCELED" && t.startTime === 0)) return "lost";
  if (wf.status === "FAILED" || since.length === 0 || since.some((t) => t.startTime > 0)) return "started";
  return "pending";
}

/**
 * Conductor's retry, made safe against the server's JOIN race (see retryOutcome): after
 * each retry, watch the workflow until a retried task has started (at most `watchMs`);
 * when the race was lost, retry again, up to `attempts` retries in all.
 */
export async function retryWorkflow(
  api: Pick<ConductorApi, "retry" | "getWorkflow">,
  workflowId: string,
  log: Pick<Logger, "warn">,
  opts: { attempts?: number; watchMs?: number; stepMs?: number } = {},
): Promise<void> {
  const attempts = opts.attempts ?? 3;
  for (let attempt = 1; ; attempt++) {
    await api.retry(workflowId);
    const deadline = Date.now() + (opts.watchMs ?? 2000);
    let outcome = retryOutcome(await api.getWorkflow(workflowId, true));
    while (outcome === "pending" && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, opts.stepMs ?? 25));
      outcome = retryOutcome(await api.getWorkflow(workflowId, true));
    }
    if (outcome !== "lost") return;
    if (attempt >= attempts) throw new Error(`workflow ${workflowId} failed again before its retried tasks ran, ${attempts} times`);
    log.warn({ workflow_id: workflowId, attempt }, "a JOIN failed on the old branch before the retried task existed (server race); retrying again");
  }
}

export async function createConductorGateway(opts: { serverUrl: string; log: Logger; timeoutMs?: number }): Promise<WorkflowGateway> {
  const api = createConductorApi(opts.serverUrl, { timeoutMs: opts.timeoutMs ?? 10_000 });
  const log = opts.log.child({ component: "conductor" });
  const healthUrl = `${api.url.replace(/\/api$/, "")}/health`;
  /** task definitions' retryCount, read once per type */
  const budgets = new Map<string, number>();

  const get = async (workflowId: string): Promise<WorkflowSnapshot | undefined> => {
    try {
      return snapshotOf(await api.getWorkflow(workflowId, true));
    } catch (err) {
      if (err instanceof ConductorError && err.status === 404) return undefined;
      throw err;
    }
  };

  return {
    async start(input) {
      try {
        return await api.startWorkflow(WORKFLOW_NAME, WORKFLOW_VERSION, input, input.recording_id);
      } catch (err) {
        throw new ConductorUnavailableError(`could not start workflow ${WORKFLOW_NAME} v${WORKFLOW_VERSION}: ${(err as Error).message}`);
      }
    },
    async findByCorrelation(recordingId) {
      const list = await api.correlated(WORKFLOW_NAME, recordingId);
      return list.sort((a, b) => b.startTime - a.startTime)[0]?.workflowId;
    },
    get,
    async retry(workflowId) {
      await retryWorkflow(api, workflowId, log);
    },
    async restart(workflowId) {
      await api.restart(workflowId);
    },
    async remove(workflowId, reason) {
      const wf = await get(workflowId);
      if (!wf) return;
      if (wf.status === "RUNNING" || wf.status === "PAUSED") {
        try {
          await api.terminate(workflowId, reason);
        } catch (err) {
          // it may have ended in between; removal below is what matters
          log.debug({ err, workflow_id: workflowId }, "terminate failed");
        }
      }
      await api.remove(workflowId);
    },
    async retryBudget(step) {
      if (!budgets.has(step)) {
        const rc = (await api.getTaskDef(step).catch(() => undefined))?.retryCount;
        if (typeof rc !== "number") return undefined;
        budgets.set(step, rc);
      }
      return budgets.get(step);
    },
    async ping(signal) {
      const res = await fetch(healthUrl, { signal: signal ?? AbortSignal.timeout(3000) });
      if (!res.ok) throw new Error(`Conductor health check answered ${res.status}`);
      const body = (await res.json().catch(() => ({}))) as { healthy?: boolean };
      if (body.healthy === false) throw new Error("Conductor reports itself unhealthy");
    },
  };
}
