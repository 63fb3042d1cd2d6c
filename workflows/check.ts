/**
 * Static wiring check of the Conductor workflow (everything crossing Conductor is plain JSON, so wiring is checked against the zod contracts): every `${ref.output.path}` and
 * `${workflow.input.x}` expression resolves to a field of the producing task's zod output
 * schema (or the workflow input schema), every SIMPLE task has a task definition and a
 * worker, and every task's inputParameters cover its input schema's required keys. A
 * renamed field fails here, not in a run.
 */
import { z } from "zod/v4";
import { PipelineInput } from "../pipeline/contracts/index.ts";
import { steps } from "../pipeline/steps/index.ts";
import { PlanSpeechConductorOutput, PlanTracksInput, PlanTracksOutput, TranscribeTrackConductorOutput } from "../workers/conductor/contracts.ts";

interface TaskJson {
  name: string;
  taskReferenceName: string;
  type: string;
  inputParameters?: Record<string, unknown>;
  forkTasks?: TaskJson[][];
  joinOn?: string[];
  dynamicForkTasksParam?: string;
  dynamicForkTasksInputParamName?: string;
}

/** Input and output schema of every SIMPLE task the workers serve. */
export function taskSchemas(): Record<string, { input: z.ZodType; output: z.ZodType }> {
  const out: Record<string, { input: z.ZodType; output: z.ZodType }> = {
    plan_tracks: { input: PlanTracksInput, output: PlanTracksOutput },
  };
  for (const [name, def] of Object.entries(steps)) out[name] = { input: def.input as z.ZodType, output: def.output as z.ZodType };
  out.plan_speech = { input: steps.plan_speech.input, output: PlanSpeechConductorOutput };
  out.transcribe_track = { input: steps.transcribe_track.input, output: TranscribeTrackConductorOutput };
  return out;
}

function flatten(tasks: TaskJson[]): TaskJson[] {
  return tasks.flatMap((t) => [t, ...flatten((t.forkTasks ?? []).flat())]);
}

/** Unwrap optional/default/pipe/effects wrappers to reach an object/array/record schema. */
function unwrap(s: z.ZodType): z.ZodType {
  let cur = s as z.ZodType & { def?: Record<string, unknown> };
  for (let i = 0; i < 10; i++) {
    const def = (cur as unknown as { def: { type: string; innerType?: z.ZodType; in?: z.ZodType; schema?: z.ZodType } }).def;
    if (def.type === "optional" || def.type === "default" || def.type === "nullable" || def.type === "prefault") cur = def.innerType as typeof cur;
    else if (def.type === "pipe") cur = def.in as typeof cur;
    else break;
  }
  return cur;
}

/** Does `path` (e.g. ["tracks"] or ["words"]) name a field of `schema`? */
export function resolvePath(schema: z.ZodType, path: string[]): boolean {
  let cur = unwrap(schema);
  for (const seg of path) {
    const def = (cur as unknown as { def: { type: string; element?: z.ZodType; valueType?: z.ZodType } }).def;
    if (def.type === "object") {
      const shape = (cur as unknown as z.ZodObject).shape as Record<string, z.ZodType>;
      if (!(seg in shape)) return false;
      cur = unwrap(shape[seg]!);
    } else if (def.type === "array" && /^\d+$/.test(seg)) cur = unwrap(def.element!);
    else if (def.type === "record") cur = unwrap(def.valueType!);
    else return false;
  }
  return true;
}

function requiredKeys(schema: z.ZodType): string[] {
  const s = unwrap(schema) as unknown as { def: { type: string }; shape?: Record<string, z.ZodType> };
  if (s.def.type !== "object" || !s.shape) return [];
  return Object.entries(s.shape)
    .filter(([, v]) => !(v as unknown as { def: { type: string } }).def.type.match(/^(optional|default|prefault)$/))
    .map(([k]) => k);
}

function expressions(value: unknown): string[] {
  if (typeof value === "string") return [...value.matchAll(/\$\{([^}]+)\}/g)].map((m) => m[1]!);
  if (Array.isArray(value)) return value.flatMap(expressions);
  if (value && typeof value === "object") return Object.values(value).flatMap(expressions);
  return [];
}

export function checkWorkflow(
  workflow: { tasks: TaskJson[]; outputParameters?: Record<string, unknown> },
  taskDefs: { name: string; timeoutSeconds?: number; responseTimeoutSeconds?: number }[],
  workers: readonly string[],
  schemas = taskSchemas(),
): string[] {
  const problems: string[] = [];
  const all = flatten(workflow.tasks);
  const byRef = new Map(all.map((t) => [t.taskReferenceName, t]));
  const defNames = new Set(taskDefs.map((d) => d.name));
  const checkExpr = (where: string, expr: string): void => {
    const parts = expr.split(".");
    if (parts[0] === "workflow") {
      if (parts[1] !== "input" || !parts[2]) return problems.push(`${where}: unsupported expression \${${expr}}`) as unknown as void;
      if (!resolvePath(PipelineInput, parts.slice(2))) problems.push(`${where}: \${${expr}} is not a field of the workflow input (PipelineInput)`);
      return;
    }
    const ref = byRef.get(parts[0]!);
    if (!ref) return void problems.push(`${where}: \${${expr}} names no task reference '${parts[0]}'`);
    if (parts[1] !== "output") return void problems.push(`${where}: \${${expr}} must read '.output'`);
    if (ref.type === "JOIN") return; // a JOIN's output is the dict of its forks' outputs
    const schema = schemas[ref.name];
    if (!schema) return void problems.push(`${where}: \${${expr}} reads task ${ref.name}, which has no output schema`);
    if (parts.length > 2 && !resolvePath(schema.output, parts.slice(2))) {
      problems.push(`${where}: \${${expr}} is not a field of ${ref.name}'s output schema`);
    }
  };
  for (const t of all) {
    const where = `task ${t.taskReferenceName}`;
    for (const e of expressions(t.inputParameters ?? {})) checkExpr(where, e);
    if (t.type === "SIMPLE") {
      if (!defNames.has(t.name)) problems.push(`${where}: no task definition for '${t.name}'`);
      if (!workers.includes(t.name)) problems.push(`${where}: no worker serves '${t.name}'`);
      const schema = schemas[t.name];
      if (!schema) problems.push(`${where}: no input schema for '${t.name}'`);
      else {
        const given = Object.keys(t.inputParameters ?? {});
        const missing = requiredKeys(schema.input).filter((k) => !given.includes(k));
        if (missing.length) problems.push(`${where}: inputParameters miss required input key(s) ${missing.join(", ")}`);
      }
    }
    if (t.type === "FORK_JOIN_DYNAMIC") {
      const next = workflow.tasks[workflow.tasks.indexOf(t) + 1];
      if (!next || next.type !== "JOIN") problems.push(`${where}: a dynamic fork must be followed by a JOIN`);
      if (!t.dynamicForkTasksParam || !t.dynamicForkTasksInputParamName) problems.push(`${where}: dynamic fork parameter names missing`);
    }
    if (t.type === "JOIN" && t.joinOn) for (const j of t.joinOn) if (!byRef.has(j)) problems.push(`${where}: joinOn names unknown task '${j}'`);
  }
  for (const e of expressions(workflow.outputParameters ?? {})) checkExpr("workflow output", e);
  for (const d of taskDefs) {
    if (d.responseTimeoutSeconds !== undefined && d.timeoutSeconds !== undefined && d.responseTimeoutSeconds > d.timeoutSeconds) {
      problems.push(`task definition ${d.name}: responseTimeoutSeconds > timeoutSeconds`);
    }
  }
  return problems;
}
