/** The pure rules behind "infrastructure faults do not spend a step's retries". */
import { test } from "node:test";
import assert from "node:assert/strict";
import { infraRescue } from "../../server/infra-rescue.ts";
import { isDependencyOutage } from "../../workers/outage.ts";
import type { WorkflowSnapshot } from "../../adapters/conductor/gateway.ts";

const wf = (attempts: [string, string][]): WorkflowSnapshot => ({
  workflow_id: "w",
  status: "FAILED",
  attempts: attempts.map(([ref, status]) => ({ step: ref.replace(/_\d+$/, ""), ref, status })),
});

test("a workflow failed by a timed-out attempt is retried within the budget, and fails past it with a reason", () => {
  const once = wf([["plan_tracks", "COMPLETED"], ["transcribe_track_1", "TIMED_OUT"]]);
  assert.deepEqual(infraRescue(once, { budget: 2, retryCount: 0 }), { action: "retry", why: "infra_timeout", step: "transcribe_track", timeouts: 1 });
  const thrice = wf([["transcribe_track_1", "TIMED_OUT"], ["transcribe_track_0", "TIMED_OUT"], ["transcribe_track_1", "TIMED_OUT"]]);
  const d = infraRescue(thrice, { budget: 2, retryCount: 3 });
  assert.equal(d.action, "fail");
  assert.match((d as { reason: string }).reason, /stopped answering 3 times \(INFRA_RETRY_BUDGET 2\)/);
});

test("a step error after timeouts took its retries gets them back; its own errors past retryCount fail as today", () => {
  // retryCount 1: two own failures are allowed (first try + one retry); the timeout took one
  const refunded = wf([["prepare_track_0", "TIMED_OUT"], ["prepare_track_0", "FAILED"]]);
  assert.equal(infraRescue(refunded, { budget: 5, retryCount: 1 }).action, "retry");
  const own = wf([["prepare_track_0", "TIMED_OUT"], ["prepare_track_0", "FAILED"], ["prepare_track_0", "FAILED"]]);
  assert.deepEqual(infraRescue(own, { budget: 5, retryCount: 1 }), { action: "fail" });
  // no timeout involved: exactly today's policy
  assert.deepEqual(infraRescue(wf([["prepare_track_0", "FAILED"]]), { budget: 5, retryCount: 3 }), { action: "fail" });
  // terminal errors are never rescued
  assert.deepEqual(infraRescue(wf([["prepare_track_0", "TIMED_OUT"], ["prepare_track_0", "FAILED_WITH_TERMINAL_ERROR"]]), { budget: 5, retryCount: 3 }), { action: "fail" });
  // TIME_OUT_WF: the workflow itself ends TIMED_OUT when a timed-out task has no retry left
  assert.equal(infraRescue({ ...wf([["transcribe_track_1", "TIMED_OUT"]]), status: "TIMED_OUT" }, { budget: 1, retryCount: 0 }).action, "retry");
  // a running or terminated workflow is not ours to retry
  assert.deepEqual(infraRescue({ ...refunded, status: "TERMINATED" }, { budget: 5, retryCount: 1 }), { action: "fail" });
});

test("dependency outages are told from step errors by code and by message (errors cross child processes as text)", () => {
  assert.equal(isDependencyOutage(Object.assign(new Error("connect"), { code: "ECONNREFUSED" })), true);
  assert.equal(isDependencyOutage(new Error("wrapped", { cause: Object.assign(new Error("x"), { code: "57P01" }) })), true);
  assert.equal(isDependencyOutage(new Error("connect ECONNREFUSED 127.0.0.1:9000")), true);
  assert.equal(isDependencyOutage(new Error("the database system is starting up")), true);
  assert.equal(isDependencyOutage(new Error("ffmpeg: Invalid data found when processing input")), false);
  assert.equal(isDependencyOutage(Object.assign(new Error("no such key"), { code: "NoSuchKey" })), false);
  assert.equal(isDependencyOutage(undefined), false);
});
