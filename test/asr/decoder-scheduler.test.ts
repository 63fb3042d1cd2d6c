/**
 * The decoder pool's scheduler, driven with event sequences and a fake clock (`at` in
 * every event): exact instruction lists out, no processes, no files, no timers (the style
 * of test/state/machine.test.ts). The pool that runs these instructions against real
 * processes is tested in decoder-pool.test.ts.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  DECODER_TRANSITIONS,
  EventSchemaError,
  handle,
  IllegalTransitionError,
  initialSchedulerState,
  type HandleResult,
  type SchedulerConfig,
  type SchedulerEvent,
  type SchedulerInstruction,
  type SchedulerState,
} from "../../pipeline/asr/decoder-scheduler.ts";

const config: SchedulerConfig = {
  size: 2,
  idleMs: 15_000,
  stallFactor: 10,
  minStallMs: 120_000,
  burstMs: 2000,
  gatherMs: 300,
  batchMemoryMs: 60_000,
  decoderName: "psx",
};

/** One line per instruction, so whole lists compare exactly and read well on failure. */
function line(i: SchedulerInstruction): string {
  switch (i.type) {
    case "StartDecoder":
      return `start d${i.decoder}`;
    case "AssignSegment":
      return `assign d${i.decoder} c${i.call}/${i.index}`;
    case "StopDecoder":
      return `stop d${i.decoder}${i.kill ? " kill" : ""}`;
    case "SetTimer":
      return `timer ${i.key} ${i.delay_ms}${i.keep_alive ? " keep" : ""}`;
    case "CancelTimer":
      return `cancel ${i.key}`;
    case "ReportProgress":
      return `progress c${i.call} ${i.fraction}`;
    case "ResolveCall":
      return `resolve c${i.call}`;
    case "RejectCall":
      return `reject c${i.call} ${i.failure.kind === "aborted" ? "aborted" : `${i.failure.retryable ? "retryable" : "final"}: ${i.failure.message}`}`;
  }
}

type Fields<E> = E extends unknown ? Omit<E, "id"> & { id?: string } : never;

class Driver {
  state: SchedulerState;
  n = 0;
  constructor(over: Partial<SchedulerConfig> = {}) {
    this.state = initialSchedulerState({ ...config, ...over });
  }
  send(e: Fields<SchedulerEvent>): HandleResult & { lines: string[] } {
    const r = handle(this.state, { id: `e${++this.n}`, ...e } as SchedulerEvent);
    this.state = r.state;
    return { ...r, lines: r.instructions.map(line) };
  }
  queue(at: number, call: number, segments: number[], batch?: { id: string; size: number }) {
    return this.send({ type: "CallQueued", at, call, segments, ...(batch ? { batch } : {}) });
  }
  done(at: number, decoder: number, call: number, index: number) {
    return this.send({ type: "SegmentDone", at, decoder, call, index });
  }
  decoder(id: number) {
    return this.state.decoders.find((d) => d.id === id);
  }
}

test("a call's segments start decoders up to the pool size, longest first; every instruction names its event", () => {
  const d = new Driver();
  const r = d.send({ type: "CallQueued", id: "track0", at: 0, call: 1, segments: [2, 5] });
  assert.deepEqual(r.lines, ["start d1", "progress c1 0", "timer stall:1 120000 keep", "assign d1 c1/1", "start d2", "timer stall:2 120000 keep", "assign d2 c1/0"]);
  assert.ok(r.instructions.every((i) => i.stimulus_id === "track0"));
  assert.deepEqual(r.instructions[3], { type: "AssignSegment", stimulus_id: "track0", decoder: 1, call: 1, index: 1 });
});

test("progress is weighted by audio seconds and the call resolves with its last segment; the decoder idles", () => {
  const d = new Driver({ size: 1 });
  d.queue(0, 1, [1, 3]);
  assert.deepEqual(d.done(700, 1, 1, 1).lines, ["cancel stall:1", "progress c1 0.75", "timer idle:1 15000", "cancel idle:1", "timer stall:1 120000 keep", "assign d1 c1/0"]);
  // decode speed learnt from the 3 s segment in 0.7 s: 0.7 × 0.25 + 0.3 × (0.7 / 3)
  assert.ok(Math.abs(d.state.rtf - 0.245) < 1e-9, String(d.state.rtf));
  assert.deepEqual(d.done(900, 1, 1, 0).lines, ["cancel stall:1", "progress c1 1", "resolve c1", "timer idle:1 15000"]);
  assert.deepEqual(d.state.calls, {});
  assert.equal(d.decoder(1)!.status, "idle");
  // then the 1 s one in 0.2 s
  assert.ok(Math.abs(d.state.rtf - (0.7 * 0.245 + 0.3 * 0.2)) < 1e-9, String(d.state.rtf));
});

test("fairness: segments of every track of a burst are taken longest first across tracks; a later burst waits for the earlier one", () => {
  const d = new Driver({ size: 1 });
  const assigned: string[] = [];
  const note = (r: { lines: string[] }) => assigned.push(...r.lines.filter((l) => l.startsWith("assign")));
  note(d.queue(0, 1, [3, 3, 3])); // track 0 arrives first and gets the idle pool
  note(d.queue(100, 2, [6, 1])); // track 1, same meeting (within burstMs)
  note(d.queue(5000, 3, [10])); // another meeting, later: a new burst
  let t = 5000;
  for (let k = 0; k < 5; k++) {
    const job = d.decoder(1)!.job!;
    note(d.done((t += 1000), 1, job.call, job.index));
  }
  assert.deepEqual(assigned, ["assign d1 c1/0", "assign d1 c2/0", "assign d1 c1/1", "assign d1 c1/2", "assign d1 c2/1", "assign d1 c3/0"]);
});

test("with two decoders a segment is picked so the burst ends soonest, not just the longest", () => {
  // the 3-track fixture's speech: longest first alone gives 7.6 + 3.8 + 3.5 against 6.4 + 5.4
  const d = new Driver({ size: 2 });
  d.send({ type: "WarmRequested", at: 0 });
  d.queue(10, 1, [7.6, 6.4, 5.4, 3.8, 3.5]);
  const load = new Map<number, number>([
    [1, 0],
    [2, 0],
  ]);
  // each decoder decodes at rtf 0.25 (the starting estimate): finish whichever ends first
  const ends = new Map<number, number>();
  for (const x of d.state.decoders) if (x.job) ends.set(x.id, 10 + x.job.seconds * 250);
  for (const x of d.state.decoders) load.set(x.id, load.get(x.id)! + (x.job?.seconds ?? 0));
  while (ends.size > 0) {
    const [id, at] = [...ends.entries()].sort((a, b) => a[1] - b[1])[0]!;
    ends.delete(id);
    const job = d.decoder(id)!.job!;
    d.done(at, id, job.call, job.index);
    const next = d.decoder(id)!.job;
    if (next) {
      ends.set(id, at + next.seconds * 250);
      load.set(id, load.get(id)! + next.seconds);
    }
    for (const x of d.state.decoders) if (x.id !== id && x.job && !ends.has(x.id)) ends.set(x.id, at + x.job.seconds * 250);
  }
  const loads = [...load.values()].map((x) => Math.round(x * 10) / 10).sort((a, b) => a - b);
  assert.deepEqual(loads, [13, 13.7]);
});

test("idle unload: a warmed decoder is stopped after idleMs of idleness, and a new one starts for later work", () => {
  const d = new Driver({ size: 1 });
  assert.deepEqual(d.send({ type: "WarmRequested", at: 0 }).lines, ["start d1", "timer idle:1 15000"]);
  // work before the idle limit: the timer is cancelled, a later stale firing is ignored
  assert.deepEqual(d.queue(1000, 1, [2]).lines, ["cancel idle:1", "progress c1 0", "timer stall:1 120000 keep", "assign d1 c1/0"]);
  const stale = d.send({ type: "TimerFired", at: 15_000, key: "idle:1" });
  assert.equal(stale.outcome, "ignored");
  assert.equal(stale.note, "timer idle:1 is not armed");
  assert.deepEqual(d.done(1500, 1, 1, 0).lines, ["cancel stall:1", "progress c1 1", "resolve c1", "timer idle:1 15000"]);
  assert.deepEqual(d.send({ type: "TimerFired", at: 16_500, key: "idle:1" }).lines, ["stop d1"]);
  assert.equal(d.decoder(1)!.status, "stopping");
  // new work while it exits waits: it still counts against the pool size
  assert.deepEqual(d.queue(16_600, 2, [1]).lines, []);
  assert.deepEqual(d.send({ type: "DecoderExited", at: 16_700, decoder: 1, message: "psx exited with 0", retryable: true }).lines, [
    "start d2",
    "progress c2 0",
    "timer stall:2 120000 keep",
    "assign d2 c2/0",
  ]);
});

test("decoders kept loaded (idleMs Infinity or 0) get no idle timer", () => {
  for (const idleMs of [Infinity, 0]) {
    const d = new Driver({ idleMs });
    assert.deepEqual(d.send({ type: "WarmRequested", at: 0 }).lines, ["start d1", "start d2"]);
    d.queue(1, 1, [1]);
    assert.deepEqual(d.done(2, 1, 1, 0).lines, ["cancel stall:1", "progress c1 1", "resolve c1"]);
    assert.deepEqual(d.state.timers, {});
  }
});

test("timeout: a segment past max(minStallMs, stallFactor × seconds) fails its call and kills its decoder; queued work goes to a fresh one", () => {
  const d = new Driver({ size: 1, minStallMs: 1000 });
  assert.deepEqual(d.queue(0, 1, [0.5]).lines, ["start d1", "progress c1 0", "timer stall:1 5000 keep", "assign d1 c1/0"]);
  d.queue(10, 2, [2]);
  assert.deepEqual(d.send({ type: "TimerFired", at: 5000, key: "stall:1" }).lines, ["stop d1 kill", "reject c1 retryable: psx took longer than 5 s on a 0.5 s segment"]);
  // its words arriving after all are ignored
  assert.equal(d.done(5001, 1, 1, 0).outcome, "ignored");
  assert.deepEqual(d.send({ type: "DecoderExited", at: 5002, decoder: 1, message: "psx exited with SIGKILL", retryable: true }).lines, [
    "start d2",
    "progress c2 0",
    "timer stall:2 20000 keep",
    "assign d2 c2/0",
  ]);
});

test("decoder death fails only the call it held (and stops that call's other decoder); the next call gets a fresh decoder", () => {
  const d = new Driver();
  d.queue(0, 1, [4, 4]);
  d.queue(10, 2, [1]);
  assert.deepEqual(d.send({ type: "DecoderExited", at: 500, decoder: 1, message: "psx exited with 3: FATAL: boom", retryable: true }).lines, [
    "cancel stall:1",
    "cancel stall:2",
    "stop d2 kill",
    "reject c1 retryable: psx exited with 3: FATAL: boom",
    "start d3",
    "progress c2 0",
    "timer stall:3 120000 keep",
    "assign d3 c2/0",
  ]);
  assert.deepEqual(Object.keys(d.state.calls), ["2"]);
  // the killed decoder's exit changes nothing more
  assert.deepEqual(d.send({ type: "DecoderExited", at: 501, decoder: 2, message: "psx exited with SIGKILL", retryable: true }).lines, []);
  assert.equal(d.send({ type: "DecoderExited", at: 502, decoder: 2, message: "again", retryable: true }).note, "decoder 2 is already gone");
});

test("a decoder that cannot start fails every queued call: they would all fail the same way", () => {
  const d = new Driver({ size: 1 });
  d.queue(0, 1, [1]);
  d.queue(1, 2, [1]);
  assert.deepEqual(d.send({ type: "DecoderExited", at: 2, decoder: 1, message: "psx could not start: ENOENT", retryable: false }).lines, [
    "cancel stall:1",
    "reject c1 final: psx could not start: ENOENT",
    "reject c2 final: psx could not start: ENOENT",
  ]);
  assert.deepEqual(d.state.queue, []);
  assert.deepEqual(d.state.decoders, []);
});

test("an aborted call drops its queued segments and kills the decoder busy with it; unreadable output fails the call", () => {
  const d = new Driver({ size: 1 });
  d.queue(0, 1, [9, 1]);
  assert.deepEqual(d.send({ type: "CallAborted", at: 300, call: 1 }).lines, ["cancel stall:1", "stop d1 kill", "reject c1 aborted"]);
  assert.deepEqual(d.state.queue, []);
  assert.equal(d.send({ type: "CallAborted", at: 301, call: 1 }).note, "call 1 is already settled");
  d.send({ type: "DecoderExited", at: 302, decoder: 1, message: "psx exited with SIGKILL", retryable: true });
  d.queue(400, 2, [1]);
  assert.deepEqual(d.send({ type: "SegmentFailed", at: 500, decoder: 2, call: 2, index: 0, message: "EIO" }).lines, [
    "cancel stall:2",
    "stop d2 kill",
    "reject c2 retryable: could not read the decoder's output: EIO",
  ]);
});

test("a batch holds its segments until all its calls are in, then the longest of the meeting goes first; other work does not wait", () => {
  const d = new Driver({ size: 1 });
  d.send({ type: "WarmRequested", at: 0 });
  assert.deepEqual(d.queue(0, 1, [1], { id: "rec", size: 2 }).lines, ["timer gather:rec 300 keep"]);
  assert.deepEqual(d.queue(150, 2, [5], { id: "rec", size: 2 }).lines, [
    "cancel gather:rec",
    "timer forget:rec 60000",
    "cancel idle:1",
    "progress c2 0",
    "timer stall:1 120000 keep",
    "assign d1 c2/0",
  ]);
  // a late call of a gathered batch does not wait again
  assert.deepEqual(d.queue(200, 3, [1], { id: "rec", size: 2 }).lines, []);
  assert.deepEqual(d.state.queue.map((j) => `c${j.call}/${j.index}`), ["c1/0", "c3/0"]);
  assert.deepEqual(d.send({ type: "TimerFired", at: 60_150, key: "forget:rec" }).lines, []);
  assert.deepEqual(d.state.batches, {});

  const e = new Driver({ size: 1 });
  e.send({ type: "WarmRequested", at: 0 });
  e.queue(0, 1, [1], { id: "lonely", size: 3 });
  assert.deepEqual(e.queue(10, 2, [1]).lines, ["cancel idle:1", "progress c2 0", "timer stall:1 120000 keep", "assign d1 c2/0"], "unbatched work goes ahead");
  e.done(20, 1, 2, 0);
  assert.deepEqual(e.send({ type: "TimerFired", at: 300, key: "gather:lonely" }).lines, ["timer forget:lonely 60000", "cancel idle:1", "progress c1 0", "timer stall:1 120000 keep", "assign d1 c1/0"]);
  // a call with nothing to decode still counts in its batch
  const f = new Driver({ size: 1 });
  f.queue(0, 1, [1], { id: "b", size: 2 });
  assert.deepEqual(f.queue(5, 2, [], { id: "b", size: 2 }).lines, ["cancel gather:b", "timer forget:b 60000", "start d1", "progress c1 0", "timer stall:1 120000 keep", "assign d1 c1/0"]);
});

test("shutdown: queued calls and running ones fail, busy decoders are killed, idle ones told to exit; nothing starts afterwards", () => {
  const d = new Driver();
  d.send({ type: "WarmRequested", at: 0 });
  d.queue(1, 1, [4]); // d1
  d.queue(2, 2, [1], { id: "rec", size: 2 }); // gathering
  const r = d.send({ type: "CloseRequested", at: 3 });
  assert.deepEqual(r.lines, [
    "cancel gather:rec",
    "reject c2 retryable: the decoder pool was closed",
    "cancel stall:1",
    "stop d1 kill",
    "reject c1 retryable: the decoder pool was closed",
    "cancel idle:2",
    "stop d2",
  ]);
  assert.deepEqual(d.queue(4, 3, [1]).lines, ["reject c3 retryable: the decoder pool was closed"]);
  assert.equal(d.send({ type: "WarmRequested", at: 5 }).outcome, "ignored");
  assert.deepEqual(d.send({ type: "DecoderExited", at: 6, decoder: 1, message: "psx exited with SIGKILL", retryable: true }).lines, []);
  assert.deepEqual(d.send({ type: "DecoderExited", at: 7, decoder: 2, message: "psx exited with 0", retryable: true }).lines, []);
  assert.deepEqual(d.state.decoders, []);
  assert.deepEqual(d.state.timers, {});
});

test("the state given to handle is never mutated; malformed events are refused; a transition outside the table throws with the decoder's history", () => {
  const d = new Driver({ size: 1 });
  d.queue(0, 1, [1, 1]);
  const frozen = JSON.stringify(d.state);
  handle(d.state, { type: "SegmentDone", id: "x", at: 5, decoder: 1, call: 1, index: 0 });
  assert.equal(JSON.stringify(d.state), frozen);
  assert.throws(() => handle(d.state, { type: "CallQueued", id: "", at: 0, call: 2, segments: [1] }), EventSchemaError);
  assert.throws(() => handle(d.state, { type: "CallQueued", id: "y", at: 0, call: 0, segments: [1] }), EventSchemaError);

  assert.deepEqual(DECODER_TRANSITIONS.stopping, ["gone"]);
  // a corrupted state: a decoder told to stop that still holds a segment
  const broken = structuredClone(d.state);
  broken.decoders[0]!.status = "stopping";
  assert.throws(
    () => handle(broken, { type: "CallAborted", id: "abort", at: 6, call: 1 }),
    (e: unknown) => e instanceof IllegalTransitionError && /decoder 1: stopping → stopping on event abort/.test(e.message) && /#1 e1: new → busy/.test(e.message),
  );
});
