/**
 * Infrastructure faults do not spend a step's retries (Conductor side).
 *
 * When a whole worker host dies or is paused past a task's response timeout, nobody
 * reports the task: Conductor marks the attempt TIMED_OUT and retries it, spending one of
 * the task definition's `retryCount`. A few host deaths exhaust the budget the step's own
 * errors (bad audio, an upstream 4xx) were given, and the workflow fails although no step
 * ever failed. The server cannot be told to retry without counting, so the API decides
 * afterwards: a FAILED (or TIMED_OUT) workflow is retried (Conductor's retry, from the failed task) when
 *  - the attempt that failed it TIMED_OUT (nobody answered: an infrastructure fault) and the
 *    workflow's timed-out attempts, all steps together, are within INFRA_RETRY_BUDGET; or
 *  - it FAILED with the step's own error, and the step's own failed attempts are within its
 *    definition's retryCount + 1 (some of its retries went to timeouts, which are refunded).
 * Anything else keeps today's verdict; an exhausted infrastructure budget says so.
 * Pure: the snapshot in, the decision out.
 */
import type { TaskAttempt, WorkflowSnapshot } from "../adapters/conductor/gateway.ts";

export type RescueDecision =
  | { action: "retry"; why: "infra_timeout" | "retries_refunded"; step: string; timeouts: number }
  | { action: "fail"; reason?: string };

const STEP_FAILED = new Set(["FAILED"]);

/** the attempt that ended the workflow: the last one in a failed state */
export const culpritOf = (wf: WorkflowSnapshot): TaskAttempt | undefined =>
  [...(wf.attempts ?? [])].reverse().find((a) => a.status === "TIMED_OUT" || a.status === "FAILED" || a.status === "FAILED_WITH_TERMINAL_ERROR");

export function infraRescue(wf: WorkflowSnapshot, opts: { budget: number; retryCount?: number }): RescueDecision {
  // a task timing out with no retry left fails the workflow, or times it out (timeoutPolicy
  // TIME_OUT_WF); TERMINATED is someone's decision and stays
  if ((wf.status !== "FAILED" && wf.status !== "TIMED_OUT") || !wf.attempts?.length) return { action: "fail" };
  const attempts = wf.attempts;
  const timeouts = attempts.filter((a) => a.status === "TIMED_OUT").length;
  const culprit = culpritOf(wf);
  if (!culprit) return { action: "fail" };
  if (culprit.status === "TIMED_OUT") {
    if (timeouts <= opts.budget) return { action: "retry", why: "infra_timeout", step: culprit.step, timeouts };
    return {
      action: "fail",
      reason: `${culprit.ref}: the workers running this recording's tasks stopped answering ${timeouts} times (INFRA_RETRY_BUDGET ${opts.budget}); giving up`,
    };
  }
  if (culprit.status === "FAILED" && opts.retryCount !== undefined) {
    const ownFailures = attempts.filter((a) => a.ref === culprit.ref && STEP_FAILED.has(a.status)).length;
    const timedOutHere = attempts.filter((a) => a.ref === culprit.ref && a.status === "TIMED_OUT").length;
    // the step failed on its own fewer times than its definition allows, because timeouts took the rest
    if (timedOutHere > 0 && ownFailures <= opts.retryCount && timeouts <= opts.budget) return { action: "retry", why: "retries_refunded", step: culprit.step, timeouts };
  }
  return { action: "fail" };
}
