/**
 * The API's view of Conductor (through the SDK's WorkflowExecutor): start the pipeline
 * workflow for a recording, read its state, retry it from the failed task, terminate and
 * remove it. The workflow definition and its registration belong to workflows/ and
 * workers/conductor/; this module only names it.
 */
import { createRequire } from "node:module";
import type * as ConductorSdk from "@io-orkes/conductor-javascript";
import type { Logger } from "pino";
import type { PipelineInput } from "../pipeline/contracts/index.ts";

/**
 * The SDK is loaded through its CommonJS build: under tsx, importing its 1 MB ESM bundle
 * costs the process ~90 MB of resident memory, the CJS build ~15 MB (the API's memory
 * budget is 150 MB while it streams a 500 MB upload).
 */
const loadSdk = (): typeof ConductorSdk => createRequire(import.meta.url)("@io-orkes/conductor-javascript") as typeof ConductorSdk;

/**
 * A client pinned to `serverUrl`: the SDK would otherwise prefer
 * process.env.CONDUCTOR_SERVER_URL over the URL it is given (the same approach as
 * workers/conductor/sdk.ts, whose ESM import this module avoids).
 */
async function createPinnedClient(sdk: typeof ConductorSdk, serverUrl: string): Promise<ConductorSdk.Client> {
  const target = new URL(serverUrl.replace(/\/+$/, "").replace(/\/api$/, ""));
  const pinnedFetch: typeof fetch = (input, init) => {
    const req = input instanceof Request ? input : undefined;
    const url = new URL(req ? req.url : String(input));
    url.protocol = target.protocol;
    url.host = target.host;
    return req ? fetch(new Request(url, req), init) : fetch(url, init);
  };
  return (await sdk.createConductorClient({ serverUrl: target.toString().replace(/\/$/, "") }, pinnedFetch)) as unknown as ConductorSdk.Client;
}

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
}

export interface WorkflowGateway {
  /** start the pipeline for a recording (correlation id = recording id); resolves with the workflow id */
  start(input: PipelineInput): Promise<string>;
  /** undefined when Conductor does not know the workflow */
  get(workflowId: string): Promise<WorkflowSnapshot | undefined>;
  /** Conductor's retry: reschedule the failed task and continue from there */
  retry(workflowId: string): Promise<void>;
  /** terminate if running, then remove the execution; a workflow Conductor does not know is fine */
  remove(workflowId: string, reason: string): Promise<void>;
  /** resolves when Conductor answers its health check */
  ping(signal?: AbortSignal): Promise<void>;
}

export class ConductorUnavailableError extends Error {
  override readonly name = "ConductorUnavailableError";
}

/** HTTP status carried by an SDK error, when there is one. */
export function sdkStatus(err: unknown): number | undefined {
  const e = err as { status?: unknown; _trace?: { status?: unknown; response?: { status?: unknown } } } | undefined;
  const s = e?._trace?.status ?? e?._trace?.response?.status ?? e?.status;
  if (typeof s === "number") return s;
  const m = /\b(40[49]|5\d\d)\b/.exec(String((err as Error)?.message ?? ""));
  return m ? Number(m[1]) : undefined;
}

interface TaskLike {
  status?: string;
  taskDefName?: string;
  taskType?: string;
  referenceTaskName?: string;
  reasonForIncompletion?: string;
}

export function snapshotOf(wf: {
  workflowId?: string;
  status?: string;
  reasonForIncompletion?: string;
  output?: Record<string, unknown>;
  tasks?: TaskLike[];
}): WorkflowSnapshot {
  const failed = (wf.tasks ?? []).filter((t) => t.status && /^(FAILED|FAILED_WITH_TERMINAL_ERROR|TIMED_OUT|CANCELED)$/.test(t.status) && t.taskType !== "JOIN");
  const culprit = failed.find((t) => t.status !== "CANCELED") ?? failed[0];
  const reason = wf.reasonForIncompletion || (culprit ? `${culprit.referenceTaskName ?? culprit.taskDefName}: ${culprit.reasonForIncompletion ?? culprit.status}` : undefined);
  return {
    workflow_id: String(wf.workflowId ?? ""),
    status: (wf.status ?? "RUNNING") as WorkflowState,
    ...(reason ? { reason } : {}),
    ...(culprit?.taskDefName ? { failed_step: culprit.taskDefName } : {}),
    ...(wf.output ? { output: wf.output } : {}),
  };
}

export async function createConductorGateway(opts: { serverUrl: string; log: Logger }): Promise<WorkflowGateway> {
  const sdk = loadSdk();
  const executor = new sdk.WorkflowExecutor(await createPinnedClient(sdk, opts.serverUrl));
  const healthUrl = `${opts.serverUrl.replace(/\/+$/, "").replace(/\/api$/, "")}/health`;
  const log = opts.log.child({ component: "conductor" });

  const get = async (workflowId: string): Promise<WorkflowSnapshot | undefined> => {
    try {
      return snapshotOf(await executor.getWorkflow(workflowId, true));
    } catch (err) {
      if (sdkStatus(err) === 404) return undefined;
      throw err;
    }
  };

  return {
    async start(input) {
      try {
        return await executor.startWorkflow({ name: WORKFLOW_NAME, version: WORKFLOW_VERSION, correlationId: input.recording_id, input });
      } catch (err) {
        throw new ConductorUnavailableError(`could not start workflow ${WORKFLOW_NAME} v${WORKFLOW_VERSION}: ${(err as Error).message}`);
      }
    },
    get,
    async retry(workflowId) {
      await executor.retry(workflowId, false);
    },
    async remove(workflowId, reason) {
      const wf = await get(workflowId);
      if (!wf) return;
      if (wf.status === "RUNNING" || wf.status === "PAUSED") {
        try {
          await executor.terminate(workflowId, reason);
        } catch (err) {
          // it may have ended in between; removal below is what matters
          log.warn({ err, workflow_id: workflowId }, "terminate failed");
        }
      }
      try {
        await executor.deleteWorkflow(workflowId, false);
      } catch (err) {
        if (sdkStatus(err) !== 404) throw err;
      }
    },
    async ping(signal) {
      const res = await fetch(healthUrl, { signal: signal ?? AbortSignal.timeout(3000) });
      if (!res.ok) throw new Error(`Conductor health check answered ${res.status}`);
      const body = (await res.json().catch(() => ({}))) as { healthy?: boolean };
      if (body.healthy === false) throw new Error("Conductor reports itself unhealthy");
    },
  };
}
