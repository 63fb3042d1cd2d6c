/**
 * Events: everything that can happen to a pipeline run, as a zod discriminated union.
 * Every event carries an `id` chosen by whoever produced it (the async shell derives
 * them from deterministic job ids, so a result delivered twice has the same id twice).
 * The machine never makes ids, reads clocks or draws random numbers: durations and
 * worker ids come in with the events.
 */
import { z } from "zod/v4";
import { PipelineInput, StepName } from "../contracts/index.ts";
import { RetryPolicy } from "./policy.ts";

const EventId = z.string().min(1).max(512);
const TrackIndex = z.number().int().nonnegative();
const Attempt = z.number().int().positive();

/** A recording was accepted for processing: creates the task graph and starts it. */
export const RecordingAccepted = z.object({
  type: z.literal("RecordingAccepted"),
  id: EventId,
  input: PipelineInput,
  policy: RetryPolicy.optional(),
});

/** One attempt of one task returned an output (validated by the machine with the step's contract). */
export const StepSucceeded = z.object({
  type: z.literal("StepSucceeded"),
  id: EventId,
  step: StepName,
  track_index: TrackIndex.optional(),
  attempt: Attempt,
  output: z.unknown(),
  duration_ms: z.number().nonnegative().optional(),
  worker_id: z.string().optional(),
});

/** One attempt of one task failed; `retryable` says whether another attempt could help. */
export const StepFailed = z.object({
  type: z.literal("StepFailed"),
  id: EventId,
  step: StepName,
  track_index: TrackIndex.optional(),
  attempt: Attempt,
  error: z.string(),
  retryable: z.boolean(),
  /** the failure as a client may read it (pipeline/failures.ts publicFailure); a track given up on carries it to the Result */
  failure: z.object({ code: z.string().regex(/^[a-z][a-z0-9_]{1,63}$/), message: z.string().max(300) }).optional(),
  duration_ms: z.number().nonnegative().optional(),
  worker_id: z.string().optional(),
});

/** The back-off of a ScheduleRetry instruction elapsed; `attempt` is the attempt to start. */
export const RetryTimerFired = z.object({
  type: z.literal("RetryTimerFired"),
  id: EventId,
  step: StepName,
  track_index: TrackIndex.optional(),
  attempt: Attempt,
});

/** The run was cancelled from outside (abort signal, shutdown, user delete). */
export const RecordingCancelled = z.object({
  type: z.literal("RecordingCancelled"),
  id: EventId,
  reason: z.string().min(1),
});

export const PipelineEvent = z.discriminatedUnion("type", [
  RecordingAccepted,
  StepSucceeded,
  StepFailed,
  RetryTimerFired,
  RecordingCancelled,
]);
export type PipelineEvent = z.infer<typeof PipelineEvent>;
export type RecordingAccepted = z.infer<typeof RecordingAccepted>;
export type StepSucceeded = z.infer<typeof StepSucceeded>;
export type StepFailed = z.infer<typeof StepFailed>;
export type RetryTimerFired = z.infer<typeof RetryTimerFired>;
export type RecordingCancelled = z.infer<typeof RecordingCancelled>;
/** What producers pass in: defaults (policy) not yet applied. */
export type PipelineEventInput = z.input<typeof PipelineEvent>;
