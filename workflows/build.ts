/**
 * The Conductor workflow, generated from the pipeline graph (pipeline/state/graph.ts):
 * `trackscribe workflows build` writes workflows/multitrack_diarization.json, and a test
 * asserts the committed file is what this produces.
 *
 *   - a task that forks over the pipeline input's tracks is preceded by `plan_tracks`
 *     (checks the input, builds the fork list);
 *   - a per-track step becomes `<name>_fork` (FORK_JOIN_DYNAMIC over the fork list of the
 *     task that produces its items) + `<name>_join` (JOIN), `<name>` being the step's name
 *     without `_track`; its input is built by the worker of the forking task (host.ts);
 *   - a parallel stage becomes `<stage>_fork` (FORK_JOIN, one branch per step) +
 *     `<stage>_join` (JOIN on every branch);
 *   - every other step is a SIMPLE task named after it, its inputParameters one Conductor
 *     expression per bound field: `${workflow.input.f}`, `${step.output.f}`, a JOIN's
 *     output for per-track outputs, `${plan_tracks.output.expected_tracks}`;
 *   - the workflow's output is the last step's output, field by field (the Result).
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Result } from "../pipeline/contracts/index.ts";
import type { StepName } from "../pipeline/contracts/index.ts";
import { PLAN_TRACKS } from "../workers/conductor/contracts.ts";
import { FINAL_STEP, NODES, perTrackSteps, STAGES, stageSteps, type Binding, type NodeDef } from "../pipeline/state/index.ts";

export const WORKFLOW_FILE_NAME = "multitrack_diarization";
/** where the generated workflow is committed */
export const WORKFLOW_JSON_PATH = path.join(path.dirname(fileURLToPath(import.meta.url)), `${WORKFLOW_FILE_NAME}.json`);
export { PLAN_TRACKS };

export interface WorkflowTask {
  name: string;
  taskReferenceName: string;
  type: "SIMPLE" | "FORK_JOIN" | "FORK_JOIN_DYNAMIC" | "JOIN";
  inputParameters?: Record<string, unknown>;
  forkTasks?: WorkflowTask[][];
  joinOn?: string[];
  joinMode?: "SYNC";
  dynamicForkTasksParam?: string;
  dynamicForkTasksInputParamName?: string;
}

/** `prepare_track` → `prepare`: the prefix of a per-track step's fork and join. */
export const forkPrefix = (step: StepName): string => step.replace(/_track$/, "");

/** The task whose output carries a per-track step's fork list. */
export function forkingTask(step: StepName): string {
  const over = NODES[step].forEachTrack;
  if (!over) throw new Error(`${step} does not run per track`);
  return over.from === "input" ? PLAN_TRACKS : over.step;
}

function expression(step: StepName, field: string, b: Binding): string {
  switch (b.from) {
    case "input":
      return `\${workflow.input.${b.field}}`;
    case "output":
      return `\${${b.step}.output.${b.field}}`;
    case "joined":
      return `\${${forkPrefix(b.step)}_join.output}`;
    case "expected_tracks":
      return `\${${PLAN_TRACKS}.output.expected_tracks}`;
    case "item":
    case "computed":
      throw new Error(`${step}.${field}: a ${b.from} binding has no Conductor expression (only per-track steps, whose inputs the forking worker builds, may use it)`);
  }
}

function simpleTask(step: StepName): WorkflowTask {
  const node = NODES[step] as NodeDef<StepName>;
  const inputParameters = Object.fromEntries(Object.entries(node.input as Record<string, Binding>).map(([f, b]) => [f, expression(step, f, b)]));
  return { name: step, taskReferenceName: step, type: "SIMPLE", inputParameters };
}

export function buildWorkflow(): Record<string, unknown> {
  const tasks: WorkflowTask[] = [];
  if ([...perTrackSteps].some((s) => forkingTask(s) === PLAN_TRACKS)) {
    tasks.push({
      name: PLAN_TRACKS,
      taskReferenceName: PLAN_TRACKS,
      type: "SIMPLE",
      inputParameters: Object.fromEntries(["recording_id", "language", "namespace", "tracks"].map((f) => [f, `\${workflow.input.${f}}`])),
    });
  }
  for (const stage of STAGES) {
    if (typeof stage !== "string") {
      tasks.push(
        { name: `${stage.parallel}_fork`, taskReferenceName: `${stage.parallel}_fork`, type: "FORK_JOIN", forkTasks: stageSteps(stage).map((s) => [simpleTask(s)]) },
        { name: `${stage.parallel}_join`, taskReferenceName: `${stage.parallel}_join`, type: "JOIN", joinOn: [...stage.steps], joinMode: "SYNC" },
      );
    } else if (perTrackSteps.has(stage)) {
      const p = forkPrefix(stage);
      const source = forkingTask(stage);
      tasks.push(
        {
          name: `${p}_fork`,
          taskReferenceName: `${p}_fork`,
          type: "FORK_JOIN_DYNAMIC",
          inputParameters: { dynamicTasks: `\${${source}.output.fork_tasks}`, dynamicTasksInput: `\${${source}.output.fork_inputs}` },
          dynamicForkTasksParam: "dynamicTasks",
          dynamicForkTasksInputParamName: "dynamicTasksInput",
        },
        { name: `${p}_join`, taskReferenceName: `${p}_join`, type: "JOIN", joinMode: "SYNC" },
      );
    } else tasks.push(simpleTask(stage));
  }
  return {
    name: WORKFLOW_FILE_NAME,
    description:
      "trackscribe: multitrack meeting recording -> speaker-attributed transcript, topics, title, summaries and action items. Input = PipelineInput, output = Result (pipeline/contracts). Generated from pipeline/state/graph.ts by `trackscribe workflows build`; checked by `trackscribe workflows check`.",
    version: 1,
    schemaVersion: 2,
    ownerEmail: "trackscribe@example.com",
    restartable: true,
    timeoutPolicy: "TIME_OUT_WF",
    timeoutSeconds: 21600,
    inputParameters: ["recording_id", "language", "namespace", "tracks"],
    tasks,
    outputParameters: Object.fromEntries(Object.keys(Result.shape).map((f) => [f, `\${${FINAL_STEP}.output.${f}}`])),
  };
}

/**
 * JSON as committed: two-space indentation, arrays of plain values on one line (the
 * hand-written file's layout, so a regenerated file diffs by the change only).
 */
export function formatWorkflowJson(value: unknown): string {
  const fmt = (v: unknown, indent: string): string => {
    if (Array.isArray(v)) {
      if (v.every((x) => x === null || typeof x !== "object")) return `[${v.map((x) => JSON.stringify(x)).join(", ")}]`;
      const inner = indent + "  ";
      return `[\n${v.map((x) => inner + fmt(x, inner)).join(",\n")}\n${indent}]`;
    }
    if (v && typeof v === "object") {
      const entries = Object.entries(v).filter(([, x]) => x !== undefined);
      if (entries.length === 0) return "{}";
      const inner = indent + "  ";
      return `{\n${entries.map(([k, x]) => `${inner}${JSON.stringify(k)}: ${fmt(x, inner)}`).join(",\n")}\n${indent}}`;
    }
    return JSON.stringify(v);
  };
  return `${fmt(value, "")}\n`;
}
