/**
 * The supervisor's state machine, driven with event sequences: exact instruction lists
 * out, no processes, no timers (the style of test/state/machine.test.ts).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  DRAIN_TIMER_KEY,
  EventSchemaError,
  handle,
  IllegalTransitionError,
  initialState,
  restartDelayMs,
  restartTimerKey,
  RESTART_BACKOFF_MS,
  SLOT_TRANSITIONS,
  story,
  type HandleResult,
  type Instruction,
  type SupervisorEvent,
  type SupervisorPolicy,
  type SupervisorState,
} from "../../workers/supervisor/supervisor-machine.ts";

const policy: SupervisorPolicy = { slots: 2, drainMs: 10_000, drainGraceMs: 3000, healthyAfterMs: 60_000, backoffScale: 1 };

type Fields<E> = E extends unknown ? Omit<E, "id"> : never;
type Ev = Fields<SupervisorEvent> & { id?: string };

/** Feeds events, numbering them e1, e2, … (an `id` given in the event wins). */
class Driver {
  state: SupervisorState;
  n = 0;
  constructor(p: SupervisorPolicy = policy) {
    this.state = initialState(p);
  }
  send(e: Ev): HandleResult {
    const r = handle(this.state, { id: `e${++this.n}`, ...e } as SupervisorEvent);
    this.state = r.state;
    return r;
  }
  all(events: Ev[]): HandleResult[] {
    return events.map((e) => this.send(e));
  }
  slot(n: number) {
    return this.state.slots[n]!;
  }
}

const without = (is: Instruction[], type: Instruction["type"]) => is.filter((i) => i.type !== type);
const timers = (is: Instruction[]) => is.filter((i): i is Extract<Instruction, { type: "SetTimer" }> => i.type === "SetTimer");
const logs = (is: Instruction[]) => is.filter((i): i is Extract<Instruction, { type: "Log" }> => i.type === "Log");

test("the default restart schedule is exactly 1, 2, 4, 8, 16, then 30 s", () => {
  assert.deepEqual([...RESTART_BACKOFF_MS], [1000, 2000, 4000, 8000, 16000, 30000]);
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 7, 50].map((n) => restartDelayMs(n)), [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000]);
  assert.deepEqual([0, 1, 2, 5].map((n) => restartDelayMs(n, 0.01)), [10, 20, 40, 300]);
});

test("start spawns one child per slot; every instruction names the event that caused it", () => {
  const d = new Driver();
  const r = d.send({ type: "SupervisorStarted", id: "boot", at: 0 });
  assert.deepEqual(r.instructions, [
    { type: "SpawnChild", stimulus_id: "boot", slot: 0 },
    { type: "SpawnChild", stimulus_id: "boot", slot: 1 },
    { type: "Log", stimulus_id: "boot", level: "info", msg: "supervisor started", fields: { slots: 2, drain_ms: 10_000 } },
  ]);
  assert.deepEqual(d.state.slots.map((s) => s.status), ["spawning", "spawning"]);
  assert.deepEqual(d.slot(0).history, [{ seq: 1, event_id: "boot", from: "stopped", to: "spawning", pid: null }]);
});

test("a child crashing again and again is restarted with 1, 2, 4, 8, 16, 30, 30 s delays, per slot", () => {
  const d = new Driver();
  d.all([
    { type: "SupervisorStarted", at: 0 },
    { type: "ChildSpawned", at: 1, slot: 0, pid: 100 },
    { type: "ChildSpawned", at: 1, slot: 1, pid: 200 },
  ]);
  let t = 10;
  let pid = 100;
  const delays: number[] = [];
  for (let k = 0; k < 7; k++) {
    const exit = d.send({ type: "ChildExited", id: `exit${k}`, at: (t += 5), slot: 0, pid, code: null, signal: "SIGKILL" });
    const delay = timers(exit.instructions)[0]!.delay_ms;
    assert.deepEqual(exit.instructions, [
      {
        type: "Log",
        stimulus_id: `exit${k}`,
        level: "error",
        msg: "worker child exited",
        fields: {
          slot: 0,
          pid,
          worker_id: null,
          code: null,
          signal: "SIGKILL",
          uptime_ms: k === 0 ? 14 : 5,
          inflight: [],
          consecutive_failures: k + 1,
          restart_in_ms: delay,
        },
      },
      { type: "CleanupSlot", stimulus_id: `exit${k}`, slot: 0 },
      { type: "SetTimer", stimulus_id: `exit${k}`, key: restartTimerKey(0), delay_ms: delay, event: { type: "RestartTimerFired", slot: 0 } },
    ]);
    delays.push(delay);
    assert.equal(d.slot(0).status, "backoff");
    const due = d.send({ type: "RestartTimerFired", id: `due${k}`, at: (t += delay), slot: 0 });
    assert.deepEqual(due.instructions, [{ type: "SpawnChild", stimulus_id: `due${k}`, slot: 0 }]);
    pid += 1;
    d.send({ type: "ChildSpawned", at: t, slot: 0, pid });
  }
  assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000, 30000, 30000]);
  assert.equal(d.slot(0).restarts, 7);
  // slot 1 untouched: its own count starts at 1 s
  const other = d.send({ type: "ChildExited", at: t + 1, slot: 1, pid: 200, code: 3, signal: null });
  assert.equal(timers(other.instructions)[0]!.delay_ms, 1000);
});

test("a healthy period resets the back-off of its slot", () => {
  const d = new Driver();
  d.all([
    { type: "SupervisorStarted", at: 0 },
    { type: "ChildSpawned", at: 0, slot: 0, pid: 10 },
    { type: "ChildExited", at: 5, slot: 0, pid: 10, code: 1, signal: null },
    { type: "RestartTimerFired", at: 1005, slot: 0 },
    { type: "ChildSpawned", at: 1005, slot: 0, pid: 11 },
    { type: "ChildExited", at: 1010, slot: 0, pid: 11, code: 1, signal: null },
    { type: "RestartTimerFired", at: 3010, slot: 0 },
    { type: "ChildSpawned", at: 3010, slot: 0, pid: 12 },
  ]);
  assert.equal(d.slot(0).failures, 2);
  // ran 60 s (healthyAfterMs) before dying: next delay is 1 s again
  const t = d.send({ type: "ChildExited", at: 3010 + 60_000, slot: 0, pid: 12, code: 1, signal: null });
  assert.equal(timers(t.instructions)[0]!.delay_ms, 1000);
  assert.equal(d.slot(0).failures, 1);
});

test("events from an earlier child of the slot are ignored with a note and change nothing", () => {
  const d = new Driver();
  d.all([
    { type: "SupervisorStarted", at: 0 },
    { type: "ChildSpawned", at: 0, slot: 0, pid: 10 },
    { type: "ChildExited", at: 1, slot: 0, pid: 10, code: 1, signal: null },
    { type: "RestartTimerFired", at: 1001, slot: 0 },
    { type: "ChildSpawned", at: 1001, slot: 0, pid: 11 },
  ]);
  const before = d.state.slots;
  for (const late of [
    d.send({ type: "ChildExited", at: 1002, slot: 0, pid: 10, code: 1, signal: null }),
    d.send({ type: "ChildInflight", at: 1002, slot: 0, pid: 10, task_ids: ["old"] }),
    d.send({ type: "ChildReady", at: 1002, slot: 0, pid: 10, worker_id: "w-old" }),
  ]) {
    assert.equal(late.outcome, "ignored");
    assert.equal(late.note, "pid 10 is not the current child of slot 0");
    assert.deepEqual(late.instructions, []);
  }
  assert.deepEqual(d.state.slots, before);
  assert.equal(d.slot(0).status, "running");
  assert.equal(d.slot(0).pid, 11);
  assert.deepEqual(story(d.state, 0).log.map((l) => `${l.type} ${l.outcome}`), [
    "ChildSpawned applied",
    "ChildExited applied",
    "RestartTimerFired applied",
    "ChildSpawned applied",
    "ChildExited ignored",
    "ChildInflight ignored",
    "ChildReady ignored",
  ]);
  assert.deepEqual(story(d.state, 0).transitions.map((h) => `${h.from}→${h.to}`), ["stopped→spawning", "spawning→running", "running→backoff", "backoff→spawning", "spawning→running"]);
});

test("shutdown: running children are told to stop, back-off timers cancelled, kill timer at drain + grace", () => {
  const d = new Driver();
  d.all([
    { type: "SupervisorStarted", at: 0 },
    { type: "ChildSpawned", at: 0, slot: 0, pid: 10 },
    { type: "ChildSpawned", at: 0, slot: 1, pid: 20 },
    { type: "ChildExited", at: 5, slot: 1, pid: 20, code: 1, signal: null },
  ]);
  const r = d.send({ type: "ShutdownRequested", id: "term", at: 10, signal: "SIGTERM" });
  assert.deepEqual(r.instructions, [
    {
      type: "Log",
      stimulus_id: "term",
      level: "info",
      msg: "shutting down: workers stop polling and drain",
      fields: { signal: "SIGTERM", drain_ms: 10_000, kill_after_ms: 13_000 },
    },
    { type: "SendStop", stimulus_id: "term", slot: 0, pid: 10, drain_ms: 10_000 },
    { type: "CancelTimer", stimulus_id: "term", key: restartTimerKey(1) },
    { type: "SetTimer", stimulus_id: "term", key: DRAIN_TIMER_KEY, delay_ms: 13_000, event: { type: "DrainDeadlinePassed" } },
  ]);
  assert.equal(d.state.phase, "draining");
  assert.deepEqual(d.state.slots.map((s) => s.status), ["stopping", "stopped"]);
  // a restart timer that fires anyway starts nothing
  const late = d.send({ type: "RestartTimerFired", at: 11, slot: 1 });
  assert.deepEqual(late.instructions, []);
  assert.equal(late.note, "supervisor draining: no restart");
});

test("drained children exit cleanly: supervisor exits 0 and cancels the kill timer", () => {
  const d = new Driver();
  const all = d.all([
    { type: "SupervisorStarted", at: 0 },
    { type: "ChildSpawned", at: 0, slot: 0, pid: 10 },
    { type: "ChildSpawned", at: 0, slot: 1, pid: 20 },
    { type: "ChildInflight", at: 1, slot: 0, pid: 10, task_ids: ["t1"] },
    { type: "ShutdownRequested", at: 2, signal: "SIGINT" },
    { type: "ChildExited", at: 3, slot: 1, pid: 20, code: 0, signal: null },
    { type: "ChildInflight", at: 500, slot: 0, pid: 10, task_ids: [] },
    { type: "ChildDrained", at: 501, slot: 0, pid: 10, cut_off: [] },
    { type: "ChildExited", id: "last", at: 502, slot: 0, pid: 10, code: 0, signal: null },
  ]).map((r) => r.instructions);
  assert.equal(d.state.phase, "stopped");
  assert.equal(d.state.exit_code, 0);
  assert.ok(!all[5]!.some((i) => i.type === "Exit"), "not done while slot 0 drains");
  assert.ok(!all.slice(1).flat().some((i) => i.type === "SpawnChild" || (i.type === "SetTimer" && i.key !== DRAIN_TIMER_KEY)), "nothing restarted");
  assert.deepEqual(all.at(-1), [
    {
      type: "Log",
      stimulus_id: "last",
      level: "info",
      msg: "worker child exited",
      fields: { slot: 0, pid: 10, worker_id: null, code: 0, signal: null, uptime_ms: 502 },
    },
    { type: "CleanupSlot", stimulus_id: "last", slot: 0 },
    { type: "CancelTimer", stimulus_id: "last", key: DRAIN_TIMER_KEY },
    { type: "Log", stimulus_id: "last", level: "info", msg: "supervisor stopped", fields: { forced: false, cut_off: [], exit_code: 0 } },
    { type: "Exit", stimulus_id: "last", code: 0 },
  ]);
  // a deadline timer that fires anyway does nothing
  assert.equal(d.send({ type: "DrainDeadlinePassed", at: 13_002 }).note, "supervisor stopped, not draining");
});

test("drain deadline: children still alive are SIGKILLed and their in-flight tasks logged as cut off", () => {
  const d = new Driver();
  d.all([
    { type: "SupervisorStarted", at: 0 },
    { type: "ChildSpawned", at: 0, slot: 0, pid: 10 },
    { type: "ChildSpawned", at: 0, slot: 1, pid: 20 },
    { type: "ChildReady", at: 0, slot: 0, pid: 10, worker_id: "w0" },
    { type: "ChildInflight", at: 1, slot: 0, pid: 10, task_ids: ["task-a", "task-b"] },
    { type: "ShutdownRequested", at: 2, signal: "SIGTERM" },
    { type: "ChildExited", at: 3, slot: 1, pid: 20, code: 0, signal: null },
  ]);
  const r = d.send({ type: "DrainDeadlinePassed", id: "deadline", at: 13_002 });
  assert.deepEqual(r.instructions, [
    {
      type: "Log",
      stimulus_id: "deadline",
      level: "error",
      msg: "force-killing worker child",
      fields: { reason: "drain deadline passed", slot: 0, pid: 10, worker_id: "w0", cut_off: ["task-a", "task-b"] },
    },
    { type: "KillChild", stimulus_id: "deadline", slot: 0, pid: 10, signal: "SIGKILL" },
  ]);
  const end = d.send({ type: "ChildExited", at: 13_003, slot: 0, pid: 10, code: null, signal: "SIGKILL" });
  assert.deepEqual(end.instructions.at(-1), { type: "Exit", stimulus_id: "e9", code: 1 });
  assert.deepEqual(d.state.cut_off, [{ slot: 0, pid: 10, task_ids: ["task-a", "task-b"] }]);
});

test("a second signal force-kills at once", () => {
  const d = new Driver();
  const last = d.all([
    { type: "SupervisorStarted", at: 0 },
    { type: "ChildSpawned", at: 0, slot: 0, pid: 10 },
    { type: "ChildSpawned", at: 0, slot: 1, pid: 20 },
    { type: "ShutdownRequested", at: 1, signal: "SIGINT" },
    { type: "ShutdownRequested", at: 2, signal: "SIGINT" },
  ]).at(-1)!;
  assert.deepEqual(without(last.instructions, "Log"), [
    { type: "KillChild", stimulus_id: "e5", slot: 0, pid: 10, signal: "SIGKILL" },
    { type: "KillChild", stimulus_id: "e5", slot: 1, pid: 20, signal: "SIGKILL" },
  ]);
  assert.equal(logs(last.instructions)[0]!.msg, "second shutdown signal: force-killing worker children now");
  assert.equal(d.state.forced, true);
});

test("a child that reports tasks it cut off makes the exit code 1", () => {
  const d = new Driver({ ...policy, slots: 1 });
  d.all([
    { type: "SupervisorStarted", at: 0 },
    { type: "ChildSpawned", at: 0, slot: 0, pid: 10 },
    { type: "ShutdownRequested", at: 1, signal: "SIGTERM" },
    { type: "ChildDrained", at: 2, slot: 0, pid: 10, cut_off: ["x"] },
    { type: "ChildExited", at: 3, slot: 0, pid: 10, code: 0, signal: null },
  ]);
  assert.equal(d.state.exit_code, 1);
  assert.deepEqual(d.state.cut_off, [{ slot: 0, pid: 10, task_ids: ["x"] }]);
});

test("a child spawned after shutdown began is told to stop at once", () => {
  const d = new Driver({ ...policy, slots: 1 });
  const last = d.all([
    { type: "SupervisorStarted", at: 0 },
    { type: "ShutdownRequested", at: 1, signal: "SIGTERM" },
    { type: "ChildSpawned", at: 2, slot: 0, pid: 10 },
  ]).at(-1)!;
  assert.deepEqual(without(last.instructions, "Log"), [{ type: "SendStop", stimulus_id: "e3", slot: 0, pid: 10, drain_ms: 10_000 }]);
  assert.equal(d.slot(0).status, "stopping");
});

test("shutdown with no live child ends at once", () => {
  const d = new Driver({ ...policy, slots: 1 });
  const last = d.all([
    { type: "SupervisorStarted", at: 0 },
    { type: "ChildSpawned", at: 0, slot: 0, pid: 10 },
    { type: "ChildExited", at: 1, slot: 0, pid: 10, code: 1, signal: null },
    { type: "ShutdownRequested", at: 2, signal: "SIGTERM" },
  ]).at(-1)!;
  assert.deepEqual(last.instructions.at(-1), { type: "Exit", stimulus_id: "e4", code: 0 });
  assert.equal(d.state.phase, "stopped");
  assert.equal(d.send({ type: "ShutdownRequested", at: 3, signal: "SIGTERM" }).note, "supervisor already stopped");
});

test("spawn failure is retried with back-off; the state given to handle is never mutated", () => {
  const d = new Driver({ ...policy, slots: 1 });
  d.send({ type: "SupervisorStarted", at: 0 });
  const s0 = d.state;
  const frozen = JSON.stringify(s0);
  const t = d.send({ type: "ChildSpawnFailed", at: 1, slot: 0, error: "ENOMEM" });
  assert.equal(JSON.stringify(s0), frozen);
  assert.equal(timers(t.instructions)[0]!.delay_ms, 1000);
  assert.equal(logs(t.instructions)[0]!.msg, "could not start worker child");
  assert.equal(d.slot(0).status, "backoff");
});

test("a transition outside the table throws with the slot's history; a malformed event changes nothing", () => {
  assert.deepEqual(SLOT_TRANSITIONS.running, ["backoff", "stopping"]);
  const d = new Driver({ ...policy, slots: 1 });
  d.all([
    { type: "SupervisorStarted", id: "boot", at: 0 },
    { type: "ChildSpawned", id: "up", at: 0, slot: 0, pid: 10 },
  ]);
  // a second ChildSpawned for a slot that is already running: the shell never spawns twice
  assert.throws(
    () => handle(d.state, { type: "ChildSpawned", id: "twice", at: 1, slot: 0, pid: 11 }),
    (e: unknown) =>
      e instanceof IllegalTransitionError &&
      e.from === "running" &&
      e.to === "running" &&
      /slot 0: running → running on event twice/.test(e.message) &&
      /#1 boot: stopped → spawning/.test(e.message) &&
      /#2 up: spawning → running/.test(e.message),
  );
  assert.throws(() => handle(d.state, { type: "ChildExited", id: "", at: 1, slot: 0, pid: 10, code: 0, signal: null } as SupervisorEvent), EventSchemaError);
  assert.throws(() => handle(d.state, { type: "Reboot", id: "x", at: 1 } as unknown as SupervisorEvent), EventSchemaError);
  assert.equal(d.state.seq, 2);
});

test("the log and the slot histories keep only their latest entries (the supervisor runs for weeks)", () => {
  const d = new Driver({ ...policy, slots: 1, backoffScale: 0 });
  d.send({ type: "SupervisorStarted", at: 0 });
  let pid = 10;
  for (let k = 0; k < 100; k++) {
    d.send({ type: "ChildSpawned", at: k, slot: 0, pid });
    d.send({ type: "ChildExited", at: k, slot: 0, pid, code: 1, signal: null });
    d.send({ type: "RestartTimerFired", at: k, slot: 0 });
    pid += 1;
  }
  assert.equal(d.state.seq, 301);
  assert.equal(d.state.log.length, 200);
  assert.equal(d.state.log.at(-1)!.seq, 301);
  assert.equal(d.slot(0).history.length, 50);
  assert.equal(d.slot(0).history.at(-1)!.to, "spawning");
});
