/**
 * The child channel with real child processes: crash, kill -9, hang, a blocked event
 * loop, a stalled stream, payload caps, cancel, and replacement of a broken child.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { ChildChannel } from "../../workers/child/channel.ts";
import {
  ChildCallCancelledError,
  ChildCallTimeoutError,
  ChildChannelClosedError,
  ChildStallError,
  ChildStepError,
  ChildUnresponsiveError,
  PayloadTooLargeError,
  WorkerCrashError,
} from "../../workers/child/errors.ts";
import { NODE_MEMORY_FLAGS } from "../../workers/node-flags.ts";
import { createChildStepRunner, type ChildStepRunner, type ChildStepRunnerOptions } from "../../workers/child/runner.ts";

const FIXTURE = fileURLToPath(new URL("./fixture-child.ts", import.meta.url));
const quiet = (): void => {};
const runners: ChildStepRunner[] = [];
after(async () => {
  await Promise.all(runners.map((r) => r.close()));
});

function runner(extra: Partial<ChildStepRunnerOptions> = {}): ChildStepRunner {
  const r = createChildStepRunner({
    module: FIXTURE,
    maxPayloadBytes: 1024 * 1024,
    callTimeoutMs: 20_000,
    stallTimeoutMs: 20_000,
    pingIntervalMs: 200,
    pingTimeoutMs: 5000,
    onLogLine: quiet,
    ...extra,
  });
  runners.push(r);
  return r;
}

const pidOf = async (r: ChildStepRunner): Promise<number> => ((await r.run("echo", {}, { scratchDir: "/tmp" })) as { pid: number }).pid;

async function rejects<E extends Error>(p: Promise<unknown>, cls: new (...a: never[]) => E): Promise<E> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof cls, `expected ${cls.name}, got ${(err as Error)?.name}: ${(err as Error)?.message}`);
    return err as E;
  }
  assert.fail(`expected ${cls.name}, but the call succeeded`);
}

test("step children run with the V8 flags of every trackscribe process (a young generation that does not grow with the audio streamed)", async () => {
  const r = runner();
  const out = (await r.run("echo", {}, { scratchDir: "/tmp" })) as { execArgv: string[] };
  for (const flag of NODE_MEMORY_FLAGS) assert.ok(out.execArgv.includes(flag), `the child's execArgv: ${out.execArgv.join(" ")}`);
});

test("ping and shutdown are answered while a long call runs", async () => {
  const ch = await ChildChannel.start({ module: FIXTURE, maxPayloadBytes: 1 << 20, onLogLine: quiet });
  const call = ch.call("run_step", { step: "sleep", input: { ms: 15_000 }, scratch_dir: "/tmp" }, { timeoutMs: 20_000 });
  const failed = call.catch((e: unknown) => e);
  const latencies: number[] = [];
  for (let i = 0; i < 3; i++) latencies.push(await ch.ping(2000));
  assert.ok(Math.max(...latencies) < 2000, `pings answered during the call (${latencies.map((l) => l.toFixed(1)).join(", ")} ms)`);
  const t0 = Date.now();
  const exit = await ch.shutdown(8000);
  const took = Date.now() - t0;
  assert.equal(exit.code, 0, "the child exited by itself on shutdown, not by SIGKILL");
  assert.ok(took < 5000, `shutdown took ${took} ms during a 15 s call`);
  assert.ok((await failed) instanceof ChildChannelClosedError);
});

test("a child that crashes fails the call with WorkerCrashError: exit code and log tail; the next call gets a new child", async () => {
  const r = runner({ logTailLines: 10 });
  const before = await pidOf(r);
  const err = await rejects(r.run("crash", { code: 3 }, { scratchDir: "/tmp" }), WorkerCrashError);
  assert.equal(err.code, 3);
  assert.equal(err.signal, null);
  assert.equal(err.pid, before);
  assert.equal(err.logTail.length, 10, "only the last lines are kept");
  assert.equal(err.logTail.at(-1), `fatal: simulated failure in ${before}`);
  assert.equal(err.logTail[0], "crash step log line 42");
  assert.match(err.message, /exited with code 3/);
  assert.match(err.message, /fatal: simulated failure/);
  const next = await pidOf(r);
  assert.notEqual(next, before, "a fresh child serves the next call");
  assert.equal(r.started, 2);
});

test("kill -9 of the child during a call: WorkerCrashError names SIGKILL", async () => {
  const r = runner();
  const pid = await pidOf(r);
  const call = r.run("sleep", { ms: 10_000 }, { scratchDir: "/tmp" });
  setTimeout(() => process.kill(pid, "SIGKILL"), 200);
  const err = await rejects(call, WorkerCrashError);
  assert.equal(err.signal, "SIGKILL");
  assert.match(err.message, /killed by SIGKILL while running step sleep/);
  assert.match(err.logTail.join("\n"), new RegExp(`fixture child ${pid} starting`));
  assert.notEqual(await pidOf(r), pid);
});

test("a hanging call times out, its child is killed and replaced", async () => {
  const r = runner({ callTimeoutMs: 800 });
  const pid = await pidOf(r);
  const t0 = Date.now();
  const err = await rejects(r.run("hang", {}, { scratchDir: "/tmp" }), ChildCallTimeoutError);
  const took = Date.now() - t0;
  assert.ok(took >= 790 && took < 5000, `timed out after ${took} ms`);
  assert.match(err.message, /step hang did not finish within 800 ms/);
  assert.match(err.logTail.join("\n"), /hang step: waiting forever/);
  assert.equal(err.pid, pid);
  await new Promise((res) => setTimeout(res, 100));
  assert.throws(() => process.kill(pid, 0), "the hung child is gone");
  assert.notEqual(await pidOf(r), pid);
});

test("a child whose event loop is blocked misses pings and is killed as unresponsive", async () => {
  const r = runner({ pingIntervalMs: 100, pingTimeoutMs: 600, callTimeoutMs: 30_000 });
  const pid = await pidOf(r);
  const t0 = Date.now();
  const err = await rejects(r.run("block", { ms: 20_000 }, { scratchDir: "/tmp" }), ChildUnresponsiveError);
  const took = Date.now() - t0;
  assert.ok(took < 6000, `detected after ${took} ms (call timeout is 30 s)`);
  assert.match(err.message, /did not answer for \d+ ms while running step block/);
  assert.notEqual(await pidOf(r), pid);
});

test("a stream that goes silent fails with ChildStallError after the stall timeout", async () => {
  const r = runner({ stallTimeoutMs: 500 });
  const seen: unknown[] = [];
  const t0 = Date.now();
  const err = await rejects(r.run("progress", { count: 4, every: 100, then: "stall" }, { scratchDir: "/tmp", onProgress: (p) => seen.push(p) }), ChildStallError);
  const took = Date.now() - t0;
  assert.equal(seen.length, 4);
  assert.deepEqual(seen.at(-1), { step: "progress", fraction: 1 });
  assert.ok(took >= 800 && took < 5000, `stalled after ${took} ms`);
  assert.match(err.message, /reported no progress for 500 ms/);
  // a stream that keeps talking is not a stall, even past the stall timeout in total
  const ok = await r.run("progress", { count: 8, every: 100 }, { scratchDir: "/tmp" });
  assert.deepEqual(ok, { reported: 8 });
  // one lone progress note followed by a long quiet step is not a stream
  const lone = await r.run("progress", { count: 1, every: 1200 }, { scratchDir: "/tmp" });
  assert.deepEqual(lone, { reported: 1 });
});

test("payload caps: an oversized request is refused before any child starts; an oversized answer is an error", async () => {
  const r = runner({ maxPayloadBytes: 64 * 1024 });
  const err = await rejects(r.run("echo", { blob: "y".repeat(100_000) }, { scratchDir: "/tmp" }), PayloadTooLargeError);
  assert.equal(err.limit, 64 * 1024);
  assert.ok(err.bytes > 100_000);
  assert.match(err.message, /the input of step echo is \d+ bytes, more than the child channel's limit of 65536 bytes/);
  assert.equal(r.started, 0, "nothing was sent: no child was even started");
  const pid = await pidOf(r);
  const big = await rejects(r.run("big", { bytes: 100_000 }, { scratchDir: "/tmp" }), ChildStepError);
  assert.equal(big.name, "PayloadTooLargeError");
  assert.equal(big.retryable, false);
  assert.equal(await pidOf(r), pid, "the child survives an oversized answer");
});

test("errors thrown by the step keep their name and retryable flag", async () => {
  const r = runner();
  const err = await rejects(r.run("fail", {}, { scratchDir: "/tmp" }), ChildStepError);
  assert.equal(err.name, "StepInputError");
  assert.equal(err.retryable, false);
  assert.equal(err.message, "bad input for fail");
});

test("an aborted call is cancelled in the child, which stays alive for the next call", async () => {
  const r = runner();
  const pid = await pidOf(r);
  const ac = new AbortController();
  setTimeout(() => ac.abort(new Error("drain deadline")), 200);
  const t0 = Date.now();
  const err = await rejects(r.run("sleep", { ms: 10_000 }, { scratchDir: "/tmp", signal: ac.signal }), ChildCallCancelledError);
  assert.ok(Date.now() - t0 < 2000);
  assert.match(err.message, /cancelled: drain deadline/);
  assert.equal(await pidOf(r), pid);
});

test("maxChildren: two calls run at once in two children", async () => {
  const r = runner({ maxChildren: 2 });
  const t0 = Date.now();
  const [a, b] = (await Promise.all([
    r.run("sleep", { ms: 1000 }, { scratchDir: "/tmp" }),
    r.run("sleep", { ms: 1000 }, { scratchDir: "/tmp" }),
  ])) as { pid: number }[];
  assert.notEqual(a!.pid, b!.pid);
  assert.equal(r.pids().length, 2);
  const pings = await r.ping(2000);
  assert.equal(pings.length, 2);
  assert.ok(Date.now() - t0 < 1000 + 8000);
});

test("shared steps run together in one child; a crash there fails its calls and the next gets a new child", async () => {
  const r = runner({ maxChildren: 2, sharedSteps: ["sleep", "crash"], maxSharedCalls: 3 });
  const calls = [0, 1, 2, 3].map(() => r.run("sleep", { ms: 600 }, { scratchDir: "/tmp" }) as Promise<{ pid: number }>);
  const echo = (await r.run("echo", {}, { scratchDir: "/tmp" })) as { pid: number };
  const out = await Promise.all(calls);
  const shared = new Set(out.map((o) => o.pid));
  assert.equal(shared.size, 1, "every shared call ran in the same child");
  assert.ok(!shared.has(echo.pid), "a step outside the shared set ran in a child of its own");
  assert.equal(r.started, 2);

  // a crash in the shared child: a new shared child serves the next call
  await rejects(r.run("crash", {}, { scratchDir: "/tmp" }), WorkerCrashError);
  const after = (await r.run("sleep", { ms: 10 }, { scratchDir: "/tmp" })) as { pid: number };
  assert.ok(!shared.has(after.pid));
  assert.equal(r.started, 3);
});

test("warmShared starts the shared child and asks it to warm its recognizer; transcription then runs in that child", async () => {
  const r = runner({ maxChildren: 1, sharedSteps: ["warmed"], maxSharedCalls: 2 });
  r.warmShared();
  r.warmShared();
  let seen = { warmed: 0, pid: 0 };
  for (let i = 0; i < 100 && seen.warmed < 2; i++) {
    seen = (await r.run("warmed", {}, { scratchDir: "/tmp" })) as typeof seen;
    if (seen.warmed < 2) await new Promise((res) => setTimeout(res, 50));
  }
  assert.equal(seen.warmed, 2, "both warm requests reached the shared child");
  assert.equal(r.started, 1, "the warm requests and the shared step used one child");
  assert.deepEqual(r.pids(), [seen.pid]);
  await r.close();
  r.warmShared(); // after close: a no-op, no child started
  assert.equal(r.started, 1);
});

test("prestart boots maxChildren children and the shared child before any call; calls then use them, and a second prestart adds none", async () => {
  const r = runner({ maxChildren: 2, sharedSteps: ["sleep"], maxSharedCalls: 2 });
  await r.prestart();
  assert.equal(r.started, 3, "two step children and the shared child");
  const booted = new Set(r.pids());
  assert.equal(booted.size, 3);
  const pings = await r.ping(2000);
  assert.equal(pings.length, 3, "every prestarted child answers on the health path");
  // two calls at once take the two waiting children; the shared step goes to the shared child
  const [a, b, s] = (await Promise.all([
    r.run("echo", {}, { scratchDir: "/tmp" }),
    r.run("echo", {}, { scratchDir: "/tmp" }),
    r.run("sleep", { ms: 10 }, { scratchDir: "/tmp" }),
  ])) as { pid: number }[];
  assert.deepEqual(new Set([a!.pid, b!.pid, s!.pid]), booted, "no call started a child of its own");
  await r.prestart();
  assert.equal(r.started, 3, "children that are already up are not started again");
  await r.close();
  await r.prestart(); // after close: a no-op
  assert.equal(r.started, 3);
});

test("a child that cannot boot does not fail prestart: the call that needs one starts it (and fails there, with the cause)", async () => {
  const r = runner({ maxChildren: 1, module: fileURLToPath(new URL("./no-such-child.ts", import.meta.url)), startTimeoutMs: 5000 });
  await r.prestart();
  assert.equal(r.pids().length, 0);
  await assert.rejects(r.run("echo", {}, { scratchDir: "/tmp" }));
});
