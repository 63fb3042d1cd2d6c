/** The pure pipeline state machine: events in, state and instructions out. */
export * from "./events.ts";
export * from "./instructions.ts";
export * from "./policy.ts";
export { jobId, perTrackSteps, stepOutputSchemas, taskKey, taskSpecs, type TaskSpec } from "./graph.ts";
export * from "./machine.ts";
export { replay, resume, type Replayed, type ReplayStep } from "./replay.ts";
