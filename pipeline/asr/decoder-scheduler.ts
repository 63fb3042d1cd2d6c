/**
 * The decoder pool's decisions as a pure state machine: `handle(state, event) →
 * {state, instructions}`, in the style of pipeline/state. Which queued segment goes to
 * which decoder, when a decoder starts, idles out, is declared stuck or is replaced, which
 * call fails, resolves or reports progress: all decided here, from events that carry the
 * time (`at`, ms of the pool's clock). No processes, files or timers: decoder-pool.ts turns
 * the instructions into decoder processes (decoder-process.ts), timers and promise
 * settlements, and feeds what happens back as events. Tests drive it with plain numbers.
 *
 * Scheduling (why: see decoder-pool.ts):
 *  - calls arriving within `burstMs` of a burst's first share its longest-first order;
 *    bursts go in arrival order, so a later meeting cannot starve an earlier one;
 *  - a free decoder takes the segment after which the burst's remaining segments end
 *    soonest (`pick`), from audio seconds and the decode speed seen so far;
 *  - a batch's calls (`batch: {id, size}`) hold their segments until all `size` calls are
 *    in or `gatherMs` has passed since the first; other work goes ahead meanwhile;
 *  - an idle decoder is stopped after `idleMs` (never when it is infinite or ≤ 0); a
 *    segment running longer than max(minStallMs, stallFactor × its seconds) fails its
 *    call; a decoder that dies fails the call it held, and the rest go to a fresh one.
 *
 * A decoder's status only changes through `move()`, checked against DECODER_TRANSITIONS;
 * anything else is a bug and throws with the decoder's history. Timers are named in the
 * state: a TimerFired for a timer that was cancelled or replaced is ignored.
 */
import { EventSchemaError, IllegalTransitionError } from "../state/errors.ts";
import { z } from "zod/v4";

// ---- config -----------------------------------------------------------------------

export interface SchedulerConfig {
  /** decoders at most (≥ 1) */
  size: number;
  /** an idle decoder is stopped after this long; Infinity or ≤ 0: never */
  idleMs: number;
  stallFactor: number;
  minStallMs: number;
  burstMs: number;
  gatherMs: number;
  /** how a gathered batch is remembered, so that a late call of it does not wait again */
  batchMemoryMs: number;
  /** the decoder program, for messages */
  decoderName: string;
}

export const DEFAULT_SCHEDULER_CONFIG: Omit<SchedulerConfig, "size" | "decoderName"> = {
  idleMs: 15_000,
  stallFactor: 10,
  minStallMs: 120_000,
  burstMs: 2000,
  gatherMs: 300,
  batchMemoryMs: 60_000,
};

// ---- events -----------------------------------------------------------------------

const base = { id: z.string().min(1).max(512), at: z.number() };
const CallId = z.number().int().positive();
const DecoderId = z.number().int().positive();
const SegmentIndex = z.number().int().nonnegative();
const Batch = z.object({ id: z.string().min(1), size: z.number().int().positive() });

/** A call's segments (their audio seconds, in input order) join the queue. No segments: it only counts in its batch. */
export const CallQueued = z.object({ type: z.literal("CallQueued"), ...base, call: CallId, segments: z.array(z.number().nonnegative()), batch: Batch.optional() });
/** The caller gave up on a call (its abort signal). */
export const CallAborted = z.object({ type: z.literal("CallAborted"), ...base, call: CallId });
/** Start the decoders now, so that the first segments do not wait for a model load. */
export const WarmRequested = z.object({ type: z.literal("WarmRequested"), ...base });
/** A decoder finished a segment (its words are with the pool). */
export const SegmentDone = z.object({ type: z.literal("SegmentDone"), ...base, decoder: DecoderId, call: CallId, index: SegmentIndex });
/** A decoder finished a segment whose output could not be read. */
export const SegmentFailed = z.object({ type: z.literal("SegmentFailed"), ...base, decoder: DecoderId, call: CallId, index: SegmentIndex, message: z.string() });
/** A decoder process is gone (exited, killed, or could not start: `retryable` false). */
export const DecoderExited = z.object({ type: z.literal("DecoderExited"), ...base, decoder: DecoderId, message: z.string(), retryable: z.boolean() });
/** A timer set by SetTimer went off. */
export const TimerFired = z.object({ type: z.literal("TimerFired"), ...base, key: z.string().min(1) });
/** Stop everything: fail what is queued or running, stop every decoder. */
export const CloseRequested = z.object({ type: z.literal("CloseRequested"), ...base });

export const SchedulerEvent = z.discriminatedUnion("type", [CallQueued, CallAborted, WarmRequested, SegmentDone, SegmentFailed, DecoderExited, TimerFired, CloseRequested]);
export type SchedulerEvent = z.infer<typeof SchedulerEvent>;

// ---- instructions -----------------------------------------------------------------

interface InstructionBase {
  /** id of the event that produced this instruction */
  stimulus_id: string;
}
/** Why a call failed: its caller's abort, or a decoder error. */
export type CallFailure = { kind: "aborted" } | { kind: "error"; message: string; retryable: boolean };

/** Start decoder process `decoder` (it loads the model, then reads segments). */
export interface StartDecoder extends InstructionBase {
  type: "StartDecoder";
  decoder: number;
}
/** Hand segment `index` of `call` to `decoder`; answer with SegmentDone/SegmentFailed. */
export interface AssignSegment extends InstructionBase {
  type: "AssignSegment";
  decoder: number;
  call: number;
  index: number;
}
/** Stop a decoder: `kill` at once (it cannot be interrupted otherwise), or let it exit after its current line. */
export interface StopDecoder extends InstructionBase {
  type: "StopDecoder";
  decoder: number;
  kill: boolean;
}
/** Start (or restart) timer `key`; feed TimerFired(key) when it goes off. `keep_alive`: it holds the process open. */
export interface SetTimer extends InstructionBase {
  type: "SetTimer";
  key: string;
  delay_ms: number;
  keep_alive: boolean;
}
export interface CancelTimer extends InstructionBase {
  type: "CancelTimer";
  key: string;
}
export interface ReportProgress extends InstructionBase {
  type: "ReportProgress";
  call: number;
  fraction: number;
}
/** Every segment of the call is decoded: settle it with their words. */
export interface ResolveCall extends InstructionBase {
  type: "ResolveCall";
  call: number;
}
export interface RejectCall extends InstructionBase {
  type: "RejectCall";
  call: number;
  failure: CallFailure;
}
export type SchedulerInstruction = StartDecoder | AssignSegment | StopDecoder | SetTimer | CancelTimer | ReportProgress | ResolveCall | RejectCall;

export const idleTimerKey = (decoder: number): string => `idle:${decoder}`;
export const stallTimerKey = (decoder: number): string => `stall:${decoder}`;
export const gatherTimerKey = (batch: string): string => `gather:${batch}`;
export const forgetTimerKey = (batch: string): string => `forget:${batch}`;

// ---- state ------------------------------------------------------------------------

export type DecoderStatus = "idle" | "busy" | "stopping" | "gone";

/** The legal decoder transitions; anything else is a bug and raises IllegalTransitionError. */
export const DECODER_TRANSITIONS: { readonly [F in DecoderStatus]: readonly DecoderStatus[] } = {
  idle: ["busy", "stopping", "gone"],
  busy: ["idle", "stopping", "gone"],
  stopping: ["gone"],
  gone: [],
};

export interface Job {
  call: number;
  index: number;
  seconds: number;
  burst: number;
  /** the batch it waits for while the batch gathers */
  batch: string | null;
}

export interface DecoderTransition {
  seq: number;
  event_id: string;
  from: DecoderStatus | "new";
  to: DecoderStatus;
}

export interface DecoderState {
  id: number;
  status: DecoderStatus;
  job: Job | null;
  /** `at` when the current job was handed over */
  job_started_at: number;
  history: DecoderTransition[];
}

export interface CallState {
  id: number;
  total: number;
  done: number;
  remaining: number;
  started: boolean;
}

export interface BatchState {
  size: number;
  arrived: number;
  /** still gathering: its segments wait */
  open: boolean;
}

export type Outcome = "applied" | "ignored";

export interface LogEntry {
  seq: number;
  event_id: string;
  type: SchedulerEvent["type"];
  outcome: Outcome;
  note: string | null;
}

export interface SchedulerState {
  config: SchedulerConfig;
  closed: boolean;
  /** waiting segments, in dispatch order (burst, longest first, call, index) */
  queue: Job[];
  /** calls not yet settled */
  calls: Record<number, CallState>;
  /** live decoders (stopping ones until they exit), in start order */
  decoders: DecoderState[];
  next_decoder: number;
  batches: Record<string, BatchState>;
  burst: { id: number; started_at: number | null };
  /** decode seconds per audio second, from the segments decoded so far (for pick) */
  rtf: number;
  /** armed timers: key → due at */
  timers: Record<string, number>;
  seq: number;
  /** the latest events with their outcome (LOG_LIMIT) */
  log: LogEntry[];
}

export const LOG_LIMIT = 200;
export const HISTORY_LIMIT = 20;

export function initialSchedulerState(config: SchedulerConfig): SchedulerState {
  if (!(config.size >= 1)) throw new Error(`decoder pool size must be ≥ 1, got ${config.size}`);
  return {
    config,
    closed: false,
    queue: [],
    calls: {},
    decoders: [],
    next_decoder: 1,
    batches: {},
    burst: { id: 0, started_at: null },
    rtf: 0.25,
    timers: {},
    seq: 0,
    log: [],
  };
}

// ---- errors -----------------------------------------------------------------------

export { EventSchemaError, IllegalTransitionError };


// ---- entry point ------------------------------------------------------------------

export interface HandleResult {
  state: SchedulerState;
  instructions: SchedulerInstruction[];
  outcome: Outcome;
  note: string | null;
}

interface Ctx {
  s: SchedulerState;
  seq: number;
  event: SchedulerEvent;
  out: SchedulerInstruction[];
}

const APPLIED = { outcome: "applied" as const, note: null };
const ignored = (note: string) => ({ outcome: "ignored" as const, note });

/** Handle one event. Never mutates `state`. Throws only EventSchemaError and IllegalTransitionError. */
export function handle(state: SchedulerState, rawEvent: SchedulerEvent): HandleResult {
  const parsed = SchedulerEvent.safeParse(rawEvent);
  if (!parsed.success) throw new EventSchemaError("decoder scheduler", parsed.error);
  const event = parsed.data;
  // log entries are never changed once written: share them instead of copying 200 each time
  const { log: entries, ...rest } = state;
  const s: SchedulerState = { ...structuredClone(rest), log: entries.slice() };
  s.seq += 1;
  const ctx: Ctx = { s, seq: s.seq, event, out: [] };
  const verdict = dispatch(ctx, event);
  s.log.push({ seq: s.seq, event_id: event.id, type: event.type, ...verdict });
  if (s.log.length > LOG_LIMIT) s.log.splice(0, s.log.length - LOG_LIMIT);
  return { state: s, instructions: ctx.out, ...verdict };
}

function dispatch(ctx: Ctx, event: SchedulerEvent): { outcome: Outcome; note: string | null } {
  const { s } = ctx;
  switch (event.type) {
    case "CallQueued": {
      if (s.closed) {
        if (event.segments.length > 0) push(ctx, { type: "RejectCall", call: event.call, failure: closedFailure });
        return ignored("the pool is closed");
      }
      if (event.segments.length > 0) {
        if (s.calls[event.call]) return ignored(`call ${event.call} is already queued`);
        if (s.burst.started_at === null || event.at - s.burst.started_at > s.config.burstMs) s.burst = { id: s.burst.id + 1, started_at: event.at };
        const batch = event.batch && event.batch.size > 1 ? event.batch.id : null;
        s.calls[event.call] = { id: event.call, total: event.segments.reduce((a, b) => a + b, 0), done: 0, remaining: event.segments.length, started: false };
        s.queue.push(...event.segments.map((seconds, index): Job => ({ call: event.call, index, seconds, burst: s.burst.id, batch })));
        s.queue.sort((a, b) => a.burst - b.burst || b.seconds - a.seconds || a.call - b.call || a.index - b.index);
      }
      // counted after its segments are queued, so a call completing the batch is ordered with it
      if (event.batch) arrive(ctx, event.batch);
      dispatchQueue(ctx);
      return APPLIED;
    }
    case "CallAborted": {
      if (!s.calls[event.call]) return ignored(`call ${event.call} is already settled`);
      failCall(ctx, event.call, { kind: "aborted" });
      return APPLIED;
    }
    case "WarmRequested": {
      if (s.closed) return ignored("the pool is closed");
      while (s.decoders.length < s.config.size) idle(ctx, startDecoder(ctx, "idle"));
      return APPLIED;
    }
    case "SegmentDone":
    case "SegmentFailed": {
      const d = s.decoders.find((x) => x.id === event.decoder);
      if (!d || d.status !== "busy" || d.job?.call !== event.call || d.job.index !== event.index) {
        return ignored(`decoder ${event.decoder} does not hold segment ${event.index} of call ${event.call}`);
      }
      const job = d.job;
      cancelTimer(ctx, stallTimerKey(d.id));
      if (event.type === "SegmentFailed") {
        // also stops this decoder: its output can no longer be trusted to line up
        failCall(ctx, job.call, { kind: "error", message: `could not read the decoder's output: ${event.message}`, retryable: true });
        dispatchQueue(ctx);
        return APPLIED;
      }
      // a running estimate of the decode speed; segments under a second say little
      if (job.seconds >= 1) s.rtf = 0.7 * s.rtf + 0.3 * ((event.at - d.job_started_at) / 1000 / job.seconds);
      d.job = null;
      move(ctx, d, "idle");
      const call = s.calls[job.call];
      if (call) {
        call.done += job.seconds;
        call.remaining -= 1;
        if (call.total > 0) push(ctx, { type: "ReportProgress", call: call.id, fraction: call.remaining === 0 ? 1 : Math.min(1, call.done / call.total) });
        if (call.remaining === 0) {
          delete s.calls[call.id];
          push(ctx, { type: "ResolveCall", call: call.id });
        }
      }
      idle(ctx, d);
      dispatchQueue(ctx);
      return APPLIED;
    }
    case "DecoderExited": {
      const d = s.decoders.find((x) => x.id === event.decoder);
      if (!d) return ignored(`decoder ${event.decoder} is already gone`);
      cancelTimer(ctx, stallTimerKey(d.id));
      cancelTimer(ctx, idleTimerKey(d.id));
      const job = d.job;
      d.job = null;
      move(ctx, d, "gone");
      s.decoders = s.decoders.filter((x) => x !== d);
      const failure: CallFailure = { kind: "error", message: event.message, retryable: event.retryable };
      if (job) failCall(ctx, job.call, failure);
      // could not even start: everything queued would fail the same way
      if (!event.retryable) for (const call of queuedCalls(s)) failCall(ctx, call, failure);
      if (!s.closed) dispatchQueue(ctx);
      return APPLIED;
    }
    case "TimerFired": {
      if (s.timers[event.key] === undefined) return ignored(`timer ${event.key} is not armed`);
      delete s.timers[event.key];
      const [kind, name] = splitKey(event.key);
      if (kind === "idle") {
        const d = s.decoders.find((x) => x.id === Number(name));
        if (!d || d.status !== "idle") return ignored(`decoder ${name} is not idle`);
        stopDecoder(ctx, d, false);
      } else if (kind === "stall") {
        const d = s.decoders.find((x) => x.id === Number(name));
        if (!d || !d.job) return ignored(`decoder ${name} holds no segment`);
        const limitMs = stallLimitMs(s.config, d.job.seconds);
        failCall(ctx, d.job.call, {
          kind: "error",
          message: `${s.config.decoderName} took longer than ${Math.round(limitMs / 1000)} s on a ${d.job.seconds.toFixed(1)} s segment`,
          retryable: true,
        });
      } else if (kind === "gather") {
        const b = s.batches[name];
        if (!b?.open) return ignored(`batch ${name} is not gathering`);
        closeBatch(ctx, name, b);
      } else if (kind === "forget") {
        delete s.batches[name];
      } else {
        return ignored(`unknown timer ${event.key}`);
      }
      return APPLIED;
    }
    case "CloseRequested": {
      if (s.closed) return ignored("the pool is already closed");
      s.closed = true;
      for (const key of Object.keys(s.timers)) if (key.startsWith("gather:") || key.startsWith("forget:")) cancelTimer(ctx, key);
      s.batches = {};
      for (const call of queuedCalls(s)) failCall(ctx, call, closedFailure);
      for (const d of [...s.decoders]) {
        if (d.job) failCall(ctx, d.job.call, closedFailure); // stops it with a kill
        else if (d.status === "idle") stopDecoder(ctx, d, false);
      }
      return APPLIED;
    }
  }
}

const closedFailure: CallFailure = { kind: "error", message: "the decoder pool was closed", retryable: true };

// ---- decisions --------------------------------------------------------------------

function dispatchQueue(ctx: Ctx): void {
  const { s } = ctx;
  if (s.closed) return;
  for (;;) {
    const eligible = (j: Job): boolean => j.batch === null || !s.batches[j.batch]?.open;
    if (!s.queue.some(eligible)) return;
    let d = s.decoders.find((x) => x.status === "idle");
    if (!d) {
      if (s.decoders.length >= s.config.size) return;
      d = startDecoder(ctx, "busy");
    }
    const [job] = s.queue.splice(pick(s, d, eligible, ctx.event.at), 1);
    assign(ctx, d, job!);
  }
}

/**
 * Which queued job decoder `d` takes: the one after which the burst's remaining jobs,
 * placed longest first on whichever decoder frees up first, end soonest (estimated from
 * audio seconds and the decode speed seen so far). Plain longest-first leaves a gap when
 * the segments do not divide evenly: the 3-track fixture's 7.6, 6.4, 5.4, 3.8 and 3.5 s
 * went 14.9 s against 11.8 s of audio on 2 decoders, where 13.0 against 13.7 was possible.
 * Among equal ends the longer job goes first. One decoder, or one candidate: the head.
 */
export function pick(s: SchedulerState, d: DecoderState, eligible: (j: Job) => boolean, now: number): number {
  const head = s.queue.findIndex(eligible);
  if (s.config.size < 2) return head;
  const burst = s.queue[head]!.burst;
  const candidates: number[] = [];
  for (let i = head; i < s.queue.length && candidates.length < 12; i++) {
    const j = s.queue[i]!;
    if (j.burst === burst && eligible(j)) candidates.push(i);
  }
  if (candidates.length < 2) return head;
  // seconds until each other decoder is free (a decoder not started yet counts as free now)
  const others: number[] = [];
  for (const x of s.decoders) {
    if (x.id === d.id || x.status === "stopping" || x.status === "gone") continue;
    others.push(x.job ? Math.max(0, x.job.seconds * s.rtf - (now - x.job_started_at) / 1000) : 0);
  }
  while (others.length < s.config.size - 1) others.push(0);
  const rest = (skip: number): number[] => candidates.filter((i) => i !== skip).map((i) => s.queue[i]!.seconds * s.rtf);
  let best = head;
  let bestEnd = Infinity;
  for (const c of candidates) {
    const free = [s.queue[c]!.seconds * s.rtf, ...others];
    for (const t of rest(c)) {
      let k = 0;
      for (let m = 1; m < free.length; m++) if (free[m]! < free[k]!) k = m;
      free[k]! += t;
    }
    const end = Math.max(...free);
    if (end < bestEnd - 1e-9) {
      bestEnd = end;
      best = c;
    }
  }
  return best;
}

export const stallLimitMs = (c: Pick<SchedulerConfig, "minStallMs" | "stallFactor">, seconds: number): number => Math.max(c.minStallMs, c.stallFactor * seconds * 1000);

function startDecoder(ctx: Ctx, status: "idle" | "busy"): DecoderState {
  const { s } = ctx;
  const d: DecoderState = { id: s.next_decoder++, status, job: null, job_started_at: 0, history: [{ seq: ctx.seq, event_id: ctx.event.id, from: "new", to: status }] };
  s.decoders.push(d);
  push(ctx, { type: "StartDecoder", decoder: d.id });
  return d;
}

function assign(ctx: Ctx, d: DecoderState, job: Job): void {
  const { s } = ctx;
  cancelTimer(ctx, idleTimerKey(d.id));
  if (d.status !== "busy") move(ctx, d, "busy");
  d.job = job;
  d.job_started_at = ctx.event.at;
  const call = s.calls[job.call]!;
  if (!call.started) {
    call.started = true;
    push(ctx, { type: "ReportProgress", call: call.id, fraction: 0 }); // decoding has begun (the call may have waited in the queue)
  }
  setTimer(ctx, stallTimerKey(d.id), stallLimitMs(s.config, job.seconds), true);
  push(ctx, { type: "AssignSegment", decoder: d.id, call: job.call, index: job.index });
}

function idle(ctx: Ctx, d: DecoderState): void {
  const ms = ctx.s.config.idleMs;
  if (!(ms > 0 && Number.isFinite(ms))) return; // kept loaded
  setTimer(ctx, idleTimerKey(d.id), ms, false);
}

function stopDecoder(ctx: Ctx, d: DecoderState, kill: boolean): void {
  cancelTimer(ctx, idleTimerKey(d.id));
  move(ctx, d, "stopping");
  push(ctx, { type: "StopDecoder", decoder: d.id, kill });
}

/** Fail a call: drop its queued segments, kill decoders busy with it (they cannot be interrupted otherwise). */
function failCall(ctx: Ctx, callId: number, failure: CallFailure): void {
  const { s } = ctx;
  if (!s.calls[callId]) return;
  delete s.calls[callId];
  s.queue = s.queue.filter((j) => j.call !== callId);
  for (const d of s.decoders) {
    if (d.job?.call !== callId) continue;
    d.job = null;
    cancelTimer(ctx, stallTimerKey(d.id));
    stopDecoder(ctx, d, true);
  }
  push(ctx, { type: "RejectCall", call: callId, failure });
}

/** Count a call's arrival in its batch; the batch stops gathering once all its calls are in. */
function arrive(ctx: Ctx, b: { id: string; size: number }): void {
  const { s } = ctx;
  let e = s.batches[b.id];
  if (!e) {
    if (b.size <= 1) return;
    e = { size: b.size, arrived: 0, open: true };
    s.batches[b.id] = e;
    setTimer(ctx, gatherTimerKey(b.id), s.config.gatherMs, true);
  }
  e.arrived += 1;
  if (e.open && e.arrived >= e.size) closeBatch(ctx, b.id, e);
}

function closeBatch(ctx: Ctx, id: string, e: BatchState): void {
  cancelTimer(ctx, gatherTimerKey(id));
  e.open = false;
  // forget it after a while; until then a late call of the batch does not wait again
  setTimer(ctx, forgetTimerKey(id), ctx.s.config.batchMemoryMs, false);
  dispatchQueue(ctx);
}

// ---- transitions and helpers ------------------------------------------------------

function move(ctx: Ctx, d: DecoderState, to: DecoderStatus): void {
  if (!DECODER_TRANSITIONS[d.status].includes(to)) throw new IllegalTransitionError(`decoder ${d.id}`, d.status, to, ctx.event.id, d.history);
  d.history.push({ seq: ctx.seq, event_id: ctx.event.id, from: d.status, to });
  if (d.history.length > HISTORY_LIMIT) d.history.splice(0, d.history.length - HISTORY_LIMIT);
  d.status = to;
}

function setTimer(ctx: Ctx, key: string, delay_ms: number, keep_alive: boolean): void {
  ctx.s.timers[key] = ctx.event.at + delay_ms;
  push(ctx, { type: "SetTimer", key, delay_ms, keep_alive });
}

function cancelTimer(ctx: Ctx, key: string): void {
  if (ctx.s.timers[key] === undefined) return;
  delete ctx.s.timers[key];
  push(ctx, { type: "CancelTimer", key });
}

/** Calls with segments still in the queue, in queue order. */
const queuedCalls = (s: SchedulerState): number[] => [...new Set(s.queue.map((j) => j.call))];

function splitKey(key: string): [string, string] {
  const i = key.indexOf(":");
  return i < 0 ? [key, ""] : [key.slice(0, i), key.slice(i + 1)];
}

type Without<T> = T extends unknown ? Omit<T, "stimulus_id"> : never;
function push(ctx: Ctx, i: Without<SchedulerInstruction>): void {
  ctx.out.push({ ...i, stimulus_id: ctx.event.id } as SchedulerInstruction);
}
