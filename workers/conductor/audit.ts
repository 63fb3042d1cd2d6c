/**
 * Ghost workers and suspicious results (an old build still polling; a too-fast "result"), as pure functions over what
 * Conductor reports: `inspect` rows per task of a workflow, `audit` rows per poller.
 */
import type { TaskRecord, WorkflowRecord } from "../../adapters/conductor/client.ts";

export interface InspectRow {
  ref: string;
  task: string;
  status: string;
  worker: string;
  build: string;
  duration_ms: number | null;
  retries: number;
  flags: string[];
}

const CONTROL = new Set(["FORK", "FORK_JOIN", "FORK_JOIN_DYNAMIC", "JOIN", "DECISION", "SWITCH"]);

export function inspectWorkflow(wf: WorkflowRecord, opts: { currentBuild: string; fastFloorsMs: Record<string, number> }): InspectRow[] {
  return wf.tasks.map((t: TaskRecord) => {
    const stamp = (t.outputData.worker ?? {}) as { worker_id?: string; build?: string };
    const duration = t.startTime > 0 && t.endTime > 0 ? t.endTime - t.startTime : null;
    const flags: string[] = [];
    const floor = opts.fastFloorsMs[t.taskType];
    if (t.status === "COMPLETED" && duration !== null && floor !== undefined && duration < floor) {
      flags.push(`suspiciously fast (${duration} ms < ${floor} ms)`);
    }
    if (!CONTROL.has(t.taskType) && t.status === "COMPLETED") {
      if (!stamp.build) flags.push("no worker stamp (unknown worker)");
      else if (stamp.build !== opts.currentBuild) flags.push(`other build ${stamp.build}`);
    }
    return {
      ref: t.referenceTaskName,
      task: t.taskType,
      status: t.status,
      worker: stamp.worker_id ?? t.workerId ?? "",
      build: stamp.build ?? "",
      duration_ms: duration,
      retries: t.retryCount,
      flags,
    };
  });
}

export interface AuditRow {
  task: string;
  worker_id: string;
  build: string;
  host: string;
  last_poll: string;
  flags: string[];
}

/** Poll ids are `host/slot/pid#build` (see host.ts): anything else is an unknown worker. */
export function auditPollers(
  task: string,
  polls: { workerId?: string | null; lastPollTime?: number }[],
  opts: { currentBuild: string; knownHosts?: string[]; now: number; recentMs: number },
): AuditRow[] {
  return polls
    .filter((p) => p.workerId)
    .map((p) => {
      const [id = "", build = ""] = String(p.workerId).split("#");
      const host = id.split("/")[0] ?? "";
      const flags: string[] = [];
      if (!build || !/^[^/]+\/\d+\/\d+$/.test(id)) flags.push("unknown worker (id not host/slot/pid#build)");
      else if (build !== opts.currentBuild) flags.push(`other build ${build}`);
      if (opts.knownHosts && opts.knownHosts.length && !opts.knownHosts.includes(host)) flags.push(`unknown host ${host}`);
      const age = p.lastPollTime ? opts.now - p.lastPollTime : Infinity;
      if (age > opts.recentMs) flags.push("not polling recently");
      return { task, worker_id: id, build, host, last_poll: p.lastPollTime ? new Date(p.lastPollTime).toISOString() : "", flags };
    });
}

export function formatTable(rows: Record<string, unknown>[], columns: string[]): string {
  const cell = (v: unknown): string => (Array.isArray(v) ? v.join("; ") : v === null || v === undefined ? "" : String(v));
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]): string => vals.map((v, i) => v.padEnd(widths[i]!)).join("  ").trimEnd();
  return [line(columns), line(widths.map((w) => "-".repeat(w))), ...rows.map((r) => line(columns.map((c) => cell(r[c]))))].join("\n");
}
