/**
 * What travels through the BullMQ step queues: the job data (one attempt of one task)
 * and the job's return value. A step that throws still *completes* its job with
 * `{ok: false, …}`, so the coordinator learns whether the error is retryable; retries are
 * the state machine's business, never BullMQ's (jobs have `attempts: 1`). A job that
 * BullMQ itself fails (stalled too often) arrives as a retryable failure.
 */
import { z } from "zod/v4";
import { StepName } from "../../pipeline/contracts/index.ts";

export const StepJobData = z.object({
  run_id: z.string().min(1),
  recording_id: z.string().min(1),
  namespace: z.string().min(1),
  step: StepName,
  track_index: z.number().int().nonnegative().optional(),
  attempt: z.number().int().positive(),
  input: z.unknown(),
});
export type StepJobData = z.infer<typeof StepJobData>;

const Stamp = {
  duration_ms: z.number().nonnegative(),
  worker_id: z.string().min(1),
  build: z.string().min(1),
};

export const StepJobResult = z.discriminatedUnion("ok", [
  z.object({ ok: z.literal(true), output: z.unknown(), ...Stamp }),
  z.object({
    ok: z.literal(false),
    error: z.string(),
    error_name: z.string(),
    retryable: z.boolean(),
    /** the failure as a client may read it (a track given up on carries it to the Result) */
    failure: z.object({ code: z.string(), message: z.string() }).optional(),
    ...Stamp,
  }),
]);
export type StepJobResult = z.infer<typeof StepJobResult>;
