/** The pure pipeline state machine: events in, state and instructions out. */
export * from "./events.ts";
export * from "./instructions.ts";
export * from "./policy.ts";
export {
  bind,
  FINAL_STEP,
  forkSources,
  graphProblems,
  jobId,
  NODES,
  orderedSteps,
  perTrackSteps,
  resolveInput,
  stageSteps,
  STAGES,
  stepOutputSchemas,
  taskCount,
  taskKey,
  taskSpecs,
  trackItem,
  type Binding,
  type BindingEnv,
  type NodeDef,
  type Stage,
  type TaskSpec,
} from "./graph.ts";
export * from "./machine.ts";
export { replay, resume, type Replayed, type ReplayStep } from "./replay.ts";
