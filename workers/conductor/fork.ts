/**
 * Dynamic fork lists: the task list and the input map must agree on reference
 * names, names must be unique, the input must be a map keyed by reference name, and no
 * input key may look like a task field (`optional`, `retryCount`, …), since Conductor would
 * read it as a change to the task itself.
 */
import type { ForkPlan } from "./contracts.ts";

/** Keys Conductor interprets on a dynamically forked task's input or definition. */
export const RESERVED_INPUT_KEYS = new Set([
  "optional", "retryCount", "retryLogic", "retryDelaySeconds", "timeoutSeconds", "responseTimeoutSeconds",
  "taskDefinition", "asyncComplete", "startDelay", "rateLimitPerFrequency", "rateLimitFrequencyInSeconds",
  "pollTimeoutSeconds", "concurrentExecLimit", "isolationGroupId", "domain", "_createdBy", "permissive",
]);

export class ForkPlanError extends Error {
  override readonly name = "ForkPlanError";
}

export const forkRef = (taskName: string, trackIndex: number): string => `${taskName}_${trackIndex}`;

/**
 * Conductor evaluates `${…}` inside a dynamic fork's inputs (they become the forked task's
 * inputParameters): a participant named `Eve ${workflow.input.secret}` would be expanded.
 * `$${` is Conductor's escape for a literal `${`.
 */
export function escapeExpressions<T>(value: T): T {
  if (typeof value === "string") return value.replaceAll("${", () => "$${") as T; // a function: "$$" in a replacement string means "$"
  if (Array.isArray(value)) return value.map(escapeExpressions) as T;
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, escapeExpressions(v)])) as T;
  return value;
}

export function buildForkPlan(taskName: string, inputs: { track_index: number; input: Record<string, unknown> }[]): ForkPlan {
  if (inputs.length === 0) throw new ForkPlanError(`no tracks to fork ${taskName} over`);
  const fork_tasks = inputs.map((i) => ({ name: taskName, taskReferenceName: forkRef(taskName, i.track_index), type: "SIMPLE" as const }));
  const fork_inputs = Object.fromEntries(inputs.map((i) => [forkRef(taskName, i.track_index), escapeExpressions(i.input)]));
  validateForkPlan({ fork_tasks, fork_inputs });
  return { fork_tasks, fork_inputs };
}

export function validateForkPlan(plan: ForkPlan): void {
  const refs = plan.fork_tasks.map((t) => t.taskReferenceName);
  const dup = refs.filter((r, i) => refs.indexOf(r) !== i);
  if (dup.length) throw new ForkPlanError(`duplicate fork reference names: ${[...new Set(dup)].join(", ")}`);
  const inputKeys = Object.keys(plan.fork_inputs);
  const missing = refs.filter((r) => !(r in plan.fork_inputs));
  const extra = inputKeys.filter((k) => !refs.includes(k));
  if (missing.length || extra.length) {
    throw new ForkPlanError(`fork task list and input map disagree: no input for [${missing.join(", ")}], input without task [${extra.join(", ")}]`);
  }
  for (const [ref, input] of Object.entries(plan.fork_inputs)) {
    const bad = Object.keys(input).filter((k) => RESERVED_INPUT_KEYS.has(k));
    if (bad.length) throw new ForkPlanError(`fork input of ${ref} has key(s) Conductor reads as task fields: ${bad.join(", ")}`);
  }
}
