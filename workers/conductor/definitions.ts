/** The workflow and task definitions shipped in workflows/, and their idempotent registration. */
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { forkSources, orderedSteps } from "../../pipeline/state/index.ts";
import { PLAN_TRACKS } from "./contracts.ts";
import type { ConductorApi } from "../../adapters/conductor/client.ts";
import { ConductorError } from "../../adapters/conductor/client.ts";

const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "workflows");

/** Every task type the worker host serves (here, not in host.ts, so commands can list them without loading the SDK). */
export const CONDUCTOR_TASKS = [PLAN_TRACKS, ...orderedSteps()] as const;
export type ConductorTaskName = (typeof CONDUCTOR_TASKS)[number];

/**
 * The task type each fork-list builder forks, from the graph: `{plan_tracks: "prepare_track",
 * plan_speech: "transcribe_track"}` (hooks.ts builds the lists; successors.ts reads it to
 * know what a FORK_JOIN_DYNAMIC starts).
 */
export const FORKED_BY: Readonly<Record<string, ConductorTaskName>> = Object.fromEntries(forkSources().map((f) => [f.source ?? PLAN_TRACKS, f.step]));

export const WORKFLOW_NAME = "multitrack_diarization";
export const WORKFLOW_VERSION = 1;

export interface TaskDef {
  name: string;
  timeoutSeconds: number;
  responseTimeoutSeconds: number;
  retryCount: number;
  [k: string]: unknown;
}

export function loadTaskDefs(): TaskDef[] {
  return JSON.parse(readFileSync(path.join(dir, "tasks.json"), "utf8")) as TaskDef[];
}

export function loadWorkflowDef(): Record<string, unknown> & { name: string; version: number; tasks: unknown[] } {
  return JSON.parse(readFileSync(path.join(dir, `${WORKFLOW_NAME}.json`), "utf8")) as Record<string, unknown> & {
    name: string;
    version: number;
    tasks: unknown[];
  };
}

/**
 * Upsert every task definition, then the workflow; verify each reads back as written.
 * `overrides` change per-task timing (tests use short response timeouts).
 */
export async function registerDefinitions(
  api: ConductorApi,
  overrides: Record<string, Partial<TaskDef>> = {},
): Promise<{ tasks: string[]; workflow: string }> {
  const defs = loadTaskDefs().map((d) => ({ ...d, ...(overrides[d.name] ?? {}) }));
  for (const d of defs) {
    if (d.responseTimeoutSeconds > d.timeoutSeconds) {
      throw new ConductorError(`task ${d.name}: responseTimeoutSeconds (${d.responseTimeoutSeconds}) > timeoutSeconds (${d.timeoutSeconds})`);
    }
  }
  await api.registerTaskDefs(defs);
  for (const d of defs) {
    const back = await api.getTaskDef(d.name);
    if (!back || back.responseTimeoutSeconds !== d.responseTimeoutSeconds || back.retryCount !== d.retryCount) {
      throw new ConductorError(`task definition ${d.name} did not register as written (read back: ${JSON.stringify(back)?.slice(0, 200)})`);
    }
  }
  const wf = loadWorkflowDef();
  await api.registerWorkflow(wf);
  const back = await api.getWorkflowDef(wf.name, wf.version);
  if (!back || (back.tasks as unknown[] | undefined)?.length !== wf.tasks.length) {
    throw new ConductorError(`workflow ${wf.name} v${wf.version} did not register as written`);
  }
  return { tasks: defs.map((d) => d.name), workflow: `${wf.name}@${wf.version}` };
}
