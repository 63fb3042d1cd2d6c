/**
 * Retry policy of the pure pipeline state machine. It travels inside the
 * RecordingAccepted event, so replaying a log always uses the policy the run used.
 */
import { z } from "zod/v4";
import { StepName } from "../contracts/index.ts";

export const RetryPolicy = z.object({
  /** attempts per task, the first one included (Conductor's retryCount + 1) */
  max_attempts: z.number().int().min(1).max(50).default(3),
  /** delay before the 2nd attempt; doubles for each further one */
  base_delay_ms: z.number().int().nonnegative().default(500),
  /** back-off cap */
  max_delay_ms: z.number().int().nonnegative().default(30_000),
  /** per-step override of `max_attempts` */
  max_attempts_by_step: z.partialRecord(StepName, z.number().int().min(1).max(50)).default({}),
});
export type RetryPolicy = z.infer<typeof RetryPolicy>;

export const defaultRetryPolicy = (): RetryPolicy => RetryPolicy.parse({});

export function maxAttempts(policy: RetryPolicy, step: StepName): number {
  return policy.max_attempts_by_step[step] ?? policy.max_attempts;
}

/** Exponential back-off without jitter (the machine has no randomness): base·2^(n-1), capped. */
export function backoffDelayMs(policy: RetryPolicy, failedAttempt: number): number {
  const exp = Math.min(failedAttempt - 1, 30);
  return Math.min(policy.max_delay_ms, policy.base_delay_ms * 2 ** exp);
}
