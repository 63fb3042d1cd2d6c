/**
 * A small typed client for the Conductor REST API calls the product makes besides task
 * polling (which the SDK's TaskManager does): metadata, workflow lifecycle, poll data.
 * Every response that can carry per-item errors is checked (a bulk upsert can answer 200 and still refuse items).
 */
import { z } from "zod/v4";

export class ConductorError extends Error {
  override readonly name = "ConductorError";
  constructor(message: string, readonly status?: number) {
    super(message);
  }
}

export const TaskRecord = z
  .object({
    taskId: z.string(),
    taskType: z.string(),
    referenceTaskName: z.string(),
    status: z.string(),
    workerId: z.string().optional().nullable(),
    retryCount: z.number().default(0),
    pollCount: z.number().optional(),
    scheduledTime: z.number().default(0),
    startTime: z.number().default(0),
    endTime: z.number().default(0),
    updateTime: z.number().default(0),
    reasonForIncompletion: z.string().optional().nullable(),
    responseTimeoutSeconds: z.number().optional(),
    callbackAfterSeconds: z.number().optional(),
    inputData: z.record(z.string(), z.unknown()).default({}),
    outputData: z.record(z.string(), z.unknown()).default({}),
    seq: z.number().optional(),
  })
  .loose();
export type TaskRecord = z.infer<typeof TaskRecord>;

export const WorkflowRecord = z
  .object({
    workflowId: z.string(),
    workflowName: z.string().optional(),
    status: z.enum(["RUNNING", "COMPLETED", "FAILED", "TIMED_OUT", "TERMINATED", "PAUSED"]),
    startTime: z.number().default(0),
    endTime: z.number().default(0),
    updateTime: z.number().default(0),
    reasonForIncompletion: z.string().optional().nullable(),
    input: z.record(z.string(), z.unknown()).default({}),
    output: z.record(z.string(), z.unknown()).default({}),
    tasks: z.array(TaskRecord).default([]),
    correlationId: z.string().optional().nullable(),
  })
  .loose();
export type WorkflowRecord = z.infer<typeof WorkflowRecord>;

export const PollData = z.array(
  z.object({ queueName: z.string().optional(), domain: z.string().optional().nullable(), workerId: z.string().optional().nullable(), lastPollTime: z.number().optional() }).loose(),
);

export interface ConductorApi {
  readonly url: string;
  health(): Promise<boolean>;
  registerTaskDefs(defs: Record<string, unknown>[]): Promise<void>;
  registerWorkflow(def: Record<string, unknown>): Promise<void>;
  getTaskDef(name: string): Promise<Record<string, unknown> | undefined>;
  getWorkflowDef(name: string, version: number): Promise<Record<string, unknown> | undefined>;
  startWorkflow(name: string, version: number, input: unknown, correlationId?: string): Promise<string>;
  getWorkflow(id: string, includeTasks?: boolean): Promise<WorkflowRecord>;
  /** the workflow's status alone (`GET /workflow/{id}/status`: a few dozen bytes, where the workflow without its tasks is ≈ 17 KB) */
  workflowStatus(id: string): Promise<WorkflowRecord["status"]>;
  decide(id: string): Promise<void>;
  retry(id: string): Promise<void>;
  /** run an ended workflow again from its first task, same id and input */
  restart(id: string): Promise<void>;
  terminate(id: string, reason: string): Promise<void>;
  remove(id: string): Promise<void>;
  runningWorkflowIds(name: string, version?: number): Promise<string[]>;
  /** workflows of `name` started with this correlation id, closed ones included, without their tasks */
  correlated(name: string, correlationId: string): Promise<WorkflowRecord[]>;
  pollData(taskType: string): Promise<z.infer<typeof PollData>>;
}

export function createConductorApi(url: string, opts: { timeoutMs?: number } = {}): ConductorApi {
  const base = url.replace(/\/+$/, "");
  const call = async (method: string, path: string, body?: unknown, accept404 = false): Promise<{ status: number; text: string }> => {
    let res: Response;
    try {
      res = await fetch(`${base}${path}`, {
        method,
        headers: body === undefined ? { accept: "application/json" } : { "content-type": "application/json", accept: "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(opts.timeoutMs ?? 15000),
      });
    } catch (err) {
      throw new ConductorError(`Conductor at ${base} unreachable (${method} ${path}): ${(err as Error).message}`);
    }
    const text = await res.text();
    if (accept404 && res.status === 404) return { status: 404, text };
    if (!res.ok) throw new ConductorError(`Conductor ${method} ${path} answered ${res.status}: ${text.slice(0, 500)}`, res.status);
    return { status: res.status, text };
  };
  const json = (text: string): unknown => (text ? JSON.parse(text) : undefined);
  /** A bulk call may answer 200 and still report per-item failures. */
  const checkBulk = (what: string, text: string): void => {
    const body = json(text) as { bulkErrorResults?: Record<string, string> } | undefined;
    const errors = body?.bulkErrorResults ? Object.entries(body.bulkErrorResults) : [];
    if (errors.length) throw new ConductorError(`${what}: ${errors.map(([k, v]) => `${k}: ${v}`).join("; ")}`);
  };
  return {
    url: base,
    async health() {
      try {
        const res = await fetch(`${base.replace(/\/api$/, "")}/health`, { signal: AbortSignal.timeout(3000) });
        return res.ok && ((await res.json()) as { healthy?: boolean }).healthy === true;
      } catch {
        return false;
      }
    },
    async registerTaskDefs(defs) {
      const { text } = await call("POST", "/metadata/taskdefs", defs);
      checkBulk("task definition registration", text);
    },
    async registerWorkflow(def) {
      const { text } = await call("PUT", "/metadata/workflow", [def]);
      checkBulk("workflow registration", text);
    },
    async getTaskDef(name) {
      const r = await call("GET", `/metadata/taskdefs/${encodeURIComponent(name)}`, undefined, true);
      return r.status === 404 || !r.text ? undefined : (json(r.text) as Record<string, unknown>);
    },
    async getWorkflowDef(name, version) {
      const r = await call("GET", `/metadata/workflow/${encodeURIComponent(name)}?version=${version}`, undefined, true);
      return r.status === 404 || !r.text ? undefined : (json(r.text) as Record<string, unknown>);
    },
    async startWorkflow(name, version, input, correlationId) {
      const { text } = await call("POST", "/workflow", { name, version, input, correlationId });
      const id = text.trim().replace(/^"|"$/g, "");
      if (!/^[0-9a-f-]{8,}$/i.test(id)) throw new ConductorError(`unexpected workflow id from Conductor: ${text.slice(0, 200)}`);
      return id;
    },
    async getWorkflow(id, includeTasks = true) {
      const { text } = await call("GET", `/workflow/${encodeURIComponent(id)}?includeTasks=${includeTasks}`);
      return WorkflowRecord.parse(json(text));
    },
    async workflowStatus(id) {
      const { text } = await call("GET", `/workflow/${encodeURIComponent(id)}/status`);
      return WorkflowRecord.shape.status.parse((json(text) as { status?: unknown } | undefined)?.status);
    },
    async decide(id) {
      await call("PUT", `/workflow/decide/${encodeURIComponent(id)}`);
    },
    async retry(id) {
      await call("POST", `/workflow/${encodeURIComponent(id)}/retry?resumeSubworkflowTasks=false`);
    },
    async restart(id) {
      await call("POST", `/workflow/${encodeURIComponent(id)}/restart?useLatestDefinitions=false`);
    },
    async terminate(id, reason) {
      await call("DELETE", `/workflow/${encodeURIComponent(id)}?reason=${encodeURIComponent(reason)}`);
    },
    async remove(id) {
      await call("DELETE", `/workflow/${encodeURIComponent(id)}/remove?archiveWorkflow=false`, undefined, true);
    },
    async runningWorkflowIds(name, version = 1) {
      const { text } = await call("GET", `/workflow/running/${encodeURIComponent(name)}?version=${version}`);
      return z.array(z.string()).parse(json(text) ?? []);
    },
    async correlated(name, correlationId) {
      const { text } = await call("GET", `/workflow/${encodeURIComponent(name)}/correlated/${encodeURIComponent(correlationId)}?includeClosed=true&includeTasks=false`);
      return z.array(WorkflowRecord).parse(json(text) ?? []);
    },
    async pollData(taskType) {
      const { text } = await call("GET", `/tasks/queue/polldata?taskType=${encodeURIComponent(taskType)}`);
      return PollData.parse(json(text) ?? []);
    },
  };
}

/** Wait for the server itself (its health check is slow and flaky at start), with back-off and a clear message. */
export async function waitForConductor(api: ConductorApi, opts: { timeoutMs: number; log?: (msg: string) => void }): Promise<void> {
  const start = Date.now();
  let delay = 500;
  let lastNote = 0;
  for (;;) {
    if (await api.health()) {
      try {
        await api.getTaskDef("plan_tracks");
        return;
      } catch {
        /* metadata API not ready yet */
      }
    }
    const waited = Date.now() - start;
    if (waited >= opts.timeoutMs) {
      throw new ConductorError(`Conductor at ${api.url} is not reachable after ${Math.round(waited / 1000)} s (set CONDUCTOR_SERVER_URL, or CONDUCTOR_WAIT_SECONDS to wait longer)`);
    }
    if (waited - lastNote >= 10000) {
      lastNote = waited;
      opts.log?.(`waiting for Conductor at ${api.url} (${Math.round(waited / 1000)} s)…`);
    }
    await new Promise((r) => setTimeout(r, Math.min(delay, opts.timeoutMs - waited)));
    delay = Math.min(delay * 2, 5000);
  }
}
