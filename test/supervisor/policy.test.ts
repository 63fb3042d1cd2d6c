import assert from "node:assert/strict";
import { test } from "node:test";
import {
  DRAIN_TIMER_KEY,
  handle,
  initialState,
  restartDelayMs,
  restartTimerKey,
  RESTART_BACKOFF_MS,
  type Instruction,
  type SupervisorEvent,
  type SupervisorPolicy,
  type SupervisorState,
} from "../../workers/supervisor/policy.ts";

const policy: SupervisorPolicy = { slots: 2, drainMs: 10_000, drainGraceMs: 3000, healthyAfterMs: 60_000, backoffScale: 1 };

/** Feed events in order; return the final state and every instruction (no timers, no processes). */
function run(events: SupervisorEvent[], p: SupervisorPolicy = policy, from?: SupervisorState) {
  let state = from ?? initialState(p);
  const all: Instruction[][] = [];
  for (const e of events) {
    const t = handle(state, e);
    state = t.state;
    all.push(t.instructions);
  }
  return { state, all, last: all[all.length - 1] ?? [] };
}
const without = (is: Instruction[], type: Instruction["type"]) => is.filter((i) => i.type !== type);
const timers = (is: Instruction[]) => is.filter((i): i is Extract<Instruction, { type: "set_timer" }> => i.type === "set_timer");

test("the default restart schedule is exactly 1, 2, 4, 8, 16, then 30 s", () => {
  assert.deepEqual([...RESTART_BACKOFF_MS], [1000, 2000, 4000, 8000, 16000, 30000]);
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 7, 50].map((n) => restartDelayMs(n)), [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000]);
  assert.deepEqual([0, 1, 2, 5].map((n) => restartDelayMs(n, 0.01)), [10, 20, 40, 300]);
});

test("start spawns one child per slot", () => {
  const { state, last } = run([{ at: 0, type: "start" }]);
  assert.deepEqual(
    last.filter((i) => i.type === "spawn"),
    [
      { type: "spawn", slot: 0 },
      { type: "spawn", slot: 1 },
    ],
  );
  assert.deepEqual(state.slots.map((s) => s.status), ["spawning", "spawning"]);
});

test("a child crashing again and again is restarted with 1, 2, 4, 8, 16, 30, 30 s delays, per slot", () => {
  const events: SupervisorEvent[] = [
    { at: 0, type: "start" },
    { at: 1, type: "spawned", slot: 0, pid: 100 },
    { at: 1, type: "spawned", slot: 1, pid: 200 },
  ];
  let t = 10;
  let pid = 100;
  const delays: number[] = [];
  let { state } = run(events);
  for (let k = 0; k < 7; k++) {
    const exit = handle(state, { at: (t += 5), type: "exited", slot: 0, pid, code: null, signal: "SIGKILL" });
    const timer = timers(exit.instructions);
    assert.equal(timer.length, 1);
    assert.equal(timer[0]!.key, restartTimerKey(0));
    assert.deepEqual(timer[0]!.event, { type: "restart_due", slot: 0 });
    assert.ok(exit.instructions.some((i) => i.type === "cleanup_slot" && i.slot === 0), "dead child's files are removed");
    const logLine = exit.instructions.find((i) => i.type === "log");
    assert.ok(logLine && logLine.type === "log");
    assert.equal(logLine.level, "error");
    assert.equal(logLine.fields.slot, 0);
    assert.equal(logLine.fields.pid, pid);
    assert.equal(logLine.fields.signal, "SIGKILL");
    assert.equal(logLine.fields.code, null);
    delays.push(timer[0]!.delay_ms);
    state = exit.state;
    assert.equal(state.slots[0]!.status, "backoff");
    const due = handle(state, { at: (t += timer[0]!.delay_ms), type: "restart_due", slot: 0 });
    assert.deepEqual(due.instructions, [{ type: "spawn", slot: 0 }]);
    pid += 1;
    state = handle(due.state, { at: t, type: "spawned", slot: 0, pid }).state;
  }
  assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000, 30000, 30000]);
  assert.equal(state.slots[0]!.restarts, 7);
  // slot 1 untouched: its own count starts at 1 s
  const other = handle(state, { at: t + 1, type: "exited", slot: 1, pid: 200, code: 3, signal: null });
  assert.equal(timers(other.instructions)[0]!.delay_ms, 1000);
});

test("a healthy period resets the back-off of its slot", () => {
  let { state } = run([
    { at: 0, type: "start" },
    { at: 0, type: "spawned", slot: 0, pid: 10 },
    { at: 5, type: "exited", slot: 0, pid: 10, code: 1, signal: null },
    { at: 1005, type: "restart_due", slot: 0 },
    { at: 1005, type: "spawned", slot: 0, pid: 11 },
    { at: 1010, type: "exited", slot: 0, pid: 11, code: 1, signal: null },
    { at: 3010, type: "restart_due", slot: 0 },
    { at: 3010, type: "spawned", slot: 0, pid: 12 },
  ]);
  assert.equal(state.slots[0]!.failures, 2);
  // ran 60 s (healthyAfterMs) before dying: next delay is 1 s again
  const t = handle(state, { at: 3010 + 60_000, type: "exited", slot: 0, pid: 12, code: 1, signal: null });
  assert.equal(timers(t.instructions)[0]!.delay_ms, 1000);
  state = t.state;
  assert.equal(state.slots[0]!.failures, 1);
});

test("events from an earlier child of the slot are ignored", () => {
  const { state, last } = run([
    { at: 0, type: "start" },
    { at: 0, type: "spawned", slot: 0, pid: 10 },
    { at: 1, type: "exited", slot: 0, pid: 10, code: 1, signal: null },
    { at: 1001, type: "restart_due", slot: 0 },
    { at: 1001, type: "spawned", slot: 0, pid: 11 },
    { at: 1002, type: "exited", slot: 0, pid: 10, code: 1, signal: null },
  ]);
  assert.deepEqual(last, []);
  assert.equal(state.slots[0]!.status, "running");
  assert.equal(state.slots[0]!.pid, 11);
});

test("shutdown: running children are told to stop, back-off timers cancelled, kill timer at drain + grace", () => {
  const { state, last } = run([
    { at: 0, type: "start" },
    { at: 0, type: "spawned", slot: 0, pid: 10 },
    { at: 0, type: "spawned", slot: 1, pid: 20 },
    { at: 5, type: "exited", slot: 1, pid: 20, code: 1, signal: null },
    { at: 10, type: "shutdown", signal: "SIGTERM" },
  ]);
  assert.deepEqual(without(last, "log"), [
    { type: "send_stop", slot: 0, pid: 10, drain_ms: 10_000 },
    { type: "cancel_timer", key: restartTimerKey(1) },
    { type: "set_timer", key: DRAIN_TIMER_KEY, delay_ms: 13_000, event: { type: "drain_deadline" } },
  ]);
  assert.equal(state.phase, "draining");
  // a restart timer that fires anyway starts nothing
  assert.deepEqual(handle(state, { at: 11, type: "restart_due", slot: 1 }).instructions, []);
});

test("drained children exit cleanly: supervisor exits 0 and cancels the kill timer", () => {
  const { state, last, all } = run([
    { at: 0, type: "start" },
    { at: 0, type: "spawned", slot: 0, pid: 10 },
    { at: 0, type: "spawned", slot: 1, pid: 20 },
    { at: 1, type: "inflight", slot: 0, pid: 10, task_ids: ["t1"] },
    { at: 2, type: "shutdown", signal: "SIGINT" },
    { at: 3, type: "exited", slot: 1, pid: 20, code: 0, signal: null },
    { at: 500, type: "inflight", slot: 0, pid: 10, task_ids: [] },
    { at: 501, type: "drained", slot: 0, pid: 10, cut_off: [] },
    { at: 502, type: "exited", slot: 0, pid: 10, code: 0, signal: null },
  ]);
  assert.equal(state.phase, "stopped");
  assert.equal(state.exit_code, 0);
  assert.ok(!all[5]!.some((i) => i.type === "exit"), "not done while slot 0 drains");
  assert.ok(!all.slice(1).flat().some((i) => i.type === "spawn" || i.type === "set_timer" && i.key !== DRAIN_TIMER_KEY), "nothing restarted");
  assert.deepEqual(
    last.filter((i) => i.type !== "log"),
    [
      { type: "cleanup_slot", slot: 0 },
      { type: "cancel_timer", key: DRAIN_TIMER_KEY },
      { type: "exit", code: 0 },
    ],
  );
});

test("drain deadline: children still alive are SIGKILLed and their in-flight tasks logged as cut off", () => {
  const { state, last } = run([
    { at: 0, type: "start" },
    { at: 0, type: "spawned", slot: 0, pid: 10 },
    { at: 0, type: "spawned", slot: 1, pid: 20 },
    { at: 1, type: "inflight", slot: 0, pid: 10, task_ids: ["task-a", "task-b"] },
    { at: 2, type: "shutdown", signal: "SIGTERM" },
    { at: 3, type: "exited", slot: 1, pid: 20, code: 0, signal: null },
    { at: 13_002, type: "drain_deadline" },
  ]);
  assert.deepEqual(last.filter((i) => i.type === "kill"), [{ type: "kill", slot: 0, pid: 10, signal: "SIGKILL" }]);
  const line = last.find((i) => i.type === "log");
  assert.ok(line && line.type === "log");
  assert.deepEqual(line.fields.cut_off, ["task-a", "task-b"]);
  const end = handle(state, { at: 13_003, type: "exited", slot: 0, pid: 10, code: null, signal: "SIGKILL" });
  assert.deepEqual(end.instructions.at(-1), { type: "exit", code: 1 });
  assert.deepEqual(end.state.cut_off, [{ slot: 0, pid: 10, task_ids: ["task-a", "task-b"] }]);
});

test("a second signal force-kills at once", () => {
  const { last } = run([
    { at: 0, type: "start" },
    { at: 0, type: "spawned", slot: 0, pid: 10 },
    { at: 0, type: "spawned", slot: 1, pid: 20 },
    { at: 1, type: "shutdown", signal: "SIGINT" },
    { at: 2, type: "shutdown", signal: "SIGINT" },
  ]);
  assert.deepEqual(
    last.filter((i) => i.type === "kill").map((i) => (i.type === "kill" ? i.pid : 0)),
    [10, 20],
  );
});

test("a child that reports tasks it cut off makes the exit code 1", () => {
  const { state } = run(
    [
      { at: 0, type: "start" },
      { at: 0, type: "spawned", slot: 0, pid: 10 },
      { at: 1, type: "shutdown", signal: "SIGTERM" },
      { at: 2, type: "drained", slot: 0, pid: 10, cut_off: ["x"] },
      { at: 3, type: "exited", slot: 0, pid: 10, code: 0, signal: null },
    ],
    { ...policy, slots: 1 },
  );
  assert.equal(state.exit_code, 1);
  assert.deepEqual(state.cut_off, [{ slot: 0, pid: 10, task_ids: ["x"] }]);
});

test("a child spawned after shutdown began is told to stop at once", () => {
  const { last, state } = run(
    [
      { at: 0, type: "start" },
      { at: 1, type: "shutdown", signal: "SIGTERM" },
      { at: 2, type: "spawned", slot: 0, pid: 10 },
    ],
    { ...policy, slots: 1 },
  );
  assert.ok(last.some((i) => i.type === "send_stop" && i.pid === 10));
  assert.equal(state.slots[0]!.status, "stopping");
});

test("shutdown with no live child ends at once", () => {
  const { last, state } = run(
    [
      { at: 0, type: "start" },
      { at: 0, type: "spawned", slot: 0, pid: 10 },
      { at: 1, type: "exited", slot: 0, pid: 10, code: 1, signal: null },
      { at: 2, type: "shutdown", signal: "SIGTERM" },
    ],
    { ...policy, slots: 1 },
  );
  assert.deepEqual(last.at(-1), { type: "exit", code: 0 });
  assert.equal(state.phase, "stopped");
});

test("spawn failure is retried with back-off; the state given to handle is never mutated", () => {
  const s0 = run([{ at: 0, type: "start" }], { ...policy, slots: 1 }).state;
  const frozen = JSON.stringify(s0);
  const t = handle(s0, { at: 1, type: "spawn_failed", slot: 0, error: "ENOMEM" });
  assert.equal(JSON.stringify(s0), frozen);
  assert.equal(timers(t.instructions)[0]!.delay_ms, 1000);
  assert.equal(t.state.slots[0]!.status, "backoff");
});
