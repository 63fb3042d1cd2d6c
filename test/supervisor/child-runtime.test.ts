/** The child side of the supervisor protocol, with an in-memory parent channel and signal source. */
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { test } from "node:test";
import { pino } from "pino";
import { runSupervisedWorker, type ParentChannel, type SupervisedHost } from "../../workers/supervisor/child-runtime.ts";
import type { FromChild } from "../../workers/supervisor/messages.ts";

const log = pino({ level: "silent" });
const tick = (ms = 0): Promise<void> => new Promise((r) => setTimeout(r, ms));

function fakeParent() {
  const ee = new EventEmitter();
  const sent: FromChild[] = [];
  let connected = true;
  const parent: ParentChannel = {
    send: (msg, cb) => {
      sent.push(msg);
      cb(null);
    },
    on: ((event: string, fn: (...a: unknown[]) => void) => void ee.on(event, fn)) as ParentChannel["on"],
    disconnect: () => {
      connected = false;
    },
    get connected() {
      return connected;
    },
  };
  return { parent, sent, emit: (event: string, ...a: unknown[]) => ee.emit(event, ...a), isConnected: () => connected };
}

function fakeHost(active: string[] = []) {
  const calls: number[] = [];
  const host: SupervisedHost = {
    active: () => [...active],
    stop: async (ms) => {
      calls.push(ms);
      active.length = 0;
      return { cutOff: [] };
    },
  };
  return { host, calls, active };
}

test("ready, in-flight reports, stop with the supervisor's drain, drained, disconnect", async () => {
  const p = fakeParent();
  const signals = new EventEmitter();
  const h = fakeHost(["t1"]);
  const done = runSupervisedWorker({ startHost: async () => h.host, worker_id: "h/0/1", build: "b", log, drainMs: 999, parent: p.parent, signals: signals as never, inflightPollMs: 10 });
  await tick(40);
  assert.deepEqual(p.sent[0], { type: "ready", worker_id: "h/0/1", build: "b" });
  assert.deepEqual(p.sent[1], { type: "inflight", task_ids: ["t1"] });
  h.active.push("t2");
  await tick(40);
  assert.deepEqual(p.sent.at(-1), { type: "inflight", task_ids: ["t1", "t2"] });
  signals.emit("SIGINT"); // ignored under a supervisor
  await tick(20);
  assert.deepEqual(h.calls, []);
  p.emit("message", { type: "stop", drain_ms: 1234 });
  assert.equal(await done, 0);
  assert.deepEqual(h.calls, [1234]);
  assert.deepEqual(p.sent.at(-1), { type: "drained", cut_off: [] });
  assert.equal(p.isConnected(), false);
  assert.equal(signals.listenerCount("SIGTERM"), 0, "signal handlers removed");
});

test("SIGTERM or a vanished supervisor drains with the configured deadline; cut-off tasks are reported", async () => {
  for (const trigger of ["SIGTERM", "disconnect"] as const) {
    const p = fakeParent();
    const signals = new EventEmitter();
    const host: SupervisedHost = { active: () => ["slow"], stop: async (ms) => ({ cutOff: ms === 500 ? ["slow"] : [] }) };
    const done = runSupervisedWorker({ startHost: async () => host, worker_id: "w", build: "b", log, drainMs: 500, parent: p.parent, signals: signals as never });
    await tick(10);
    if (trigger === "SIGTERM") signals.emit("SIGTERM");
    else p.emit("disconnect");
    assert.equal(await done, 0);
    assert.deepEqual(p.sent.at(-1), { type: "drained", cut_off: ["slow"] }, trigger);
  }
});

test("a stop that arrives while the host is still starting ends the child at once", async () => {
  const p = fakeParent();
  let stopCalled = false;
  const never = new Promise<SupervisedHost>(() => {});
  void never.then((h) => h.stop(0)).then(() => (stopCalled = true));
  const done = runSupervisedWorker({ startHost: () => never, worker_id: "w", build: "b", log, drainMs: 500, parent: p.parent, signals: new EventEmitter() as never });
  await tick(10);
  p.emit("message", { type: "stop", drain_ms: 100 });
  assert.equal(await done, 0);
  assert.deepEqual(p.sent, [{ type: "drained", cut_off: [] }], "no ready: it never was");
  assert.equal(stopCalled, false);
});

test("without a supervisor, SIGINT drains too", async () => {
  const signals = new EventEmitter();
  const h = fakeHost();
  const done = runSupervisedWorker({ startHost: async () => h.host, worker_id: "w", build: "b", log, drainMs: 321, parent: null, signals: signals as never });
  await tick(10);
  signals.emit("SIGINT");
  assert.equal(await done, 0);
  assert.deepEqual(h.calls, [321]);
});
