/**
 * The supervisor's state machine: `handle(state, event) → {state, instructions}`, in the
 * style of pipeline/state. Events are a zod union, each with an `id` (the shell numbers
 * them) and `at` (the shell's clock, ms); every effect leaves as an instruction carrying
 * the id of the event that caused it (`stimulus_id`). No processes, timers or clocks here:
 * supervisor.ts turns instructions into fork/kill/timers/log lines and feeds what happens
 * back as events, and tests drive this file with plain numbers.
 *
 * A slot's status only changes through `move()`, checked against SLOT_TRANSITIONS (the
 * phase against PHASE_TRANSITIONS); anything else is a bug and throws with the slot's
 * history. Every event is logged with its outcome: `ignored` with a note when it comes from
 * a child that is no longer its slot's current one, or arrives when it no longer matters.
 * The supervisor lives for weeks, unlike a pipeline run: the log and the histories keep
 * their latest entries only.
 *
 * Rules:
 *  - N stable slots; a slot's child that exits is restarted after 1, 2, 4, 8, 16, then 30 s
 *    (× backoffScale), counted per slot; a child that ran `healthyAfterMs` before exiting
 *    resets its slot's count, so the next restart is after 1 s again.
 *  - every exit is logged with slot, pid, exit code or signal and the tasks it had in flight.
 *  - shutdown: every child is told to stop polling and drain; at `drainMs + drainGraceMs`
 *    the ones still alive are SIGKILLed and the tasks they still had are logged as cut off.
 *    A second shutdown signal force-kills at once.
 */
import { EventSchemaError, IllegalTransitionError } from "../../pipeline/state/errors.ts";
import { z } from "zod/v4";

// ---- policy -----------------------------------------------------------------------

/** The restart back-off in ms: 1, 2, 4, 8, 16, then 30 s for every further exit. */
export const RESTART_BACKOFF_MS = [1000, 2000, 4000, 8000, 16000, 30000] as const;

/** Delay before restarting a slot whose child has exited `failures` times in a row before (0-based). */
export function restartDelayMs(failures: number, scale = 1): number {
  const i = Math.min(Math.max(0, Math.floor(failures)), RESTART_BACKOFF_MS.length - 1);
  return Math.max(0, Math.round(RESTART_BACKOFF_MS[i]! * scale));
}

export interface SupervisorPolicy {
  slots: number;
  /** how long children may take to finish in-flight tasks after being told to stop */
  drainMs: number;
  /** extra time after `drainMs` for children to report and exit before SIGKILL */
  drainGraceMs: number;
  /** a child that lived this long before exiting resets its slot's back-off */
  healthyAfterMs: number;
  /** multiplies RESTART_BACKOFF_MS (1 in production, e.g. 0.01 in tests) */
  backoffScale: number;
}

// ---- events -----------------------------------------------------------------------

const EventId = z.string().min(1).max(512);
const base = { id: EventId, at: z.number() };
const Slot = z.number().int().nonnegative();
const Pid = z.number().int().positive();

/** The supervisor process began: start every slot's child. */
export const SupervisorStarted = z.object({ type: z.literal("SupervisorStarted"), ...base });
/** A slot's child process exists (not yet ready). */
export const ChildSpawned = z.object({ type: z.literal("ChildSpawned"), ...base, slot: Slot, pid: Pid });
/** A slot's child could not be started at all. */
export const ChildSpawnFailed = z.object({ type: z.literal("ChildSpawnFailed"), ...base, slot: Slot, error: z.string() });
/** The child's worker host runs and polls as `worker_id`. */
export const ChildReady = z.object({ type: z.literal("ChildReady"), ...base, slot: Slot, pid: Pid, worker_id: z.string().min(1) });
/** The ids of the tasks the child runs now (sent whenever the set changes). */
export const ChildInflight = z.object({ type: z.literal("ChildInflight"), ...base, slot: Slot, pid: Pid, task_ids: z.array(z.string()) });
/** The child finished its own drain; `cut_off` are tasks its host abandoned at the deadline. */
export const ChildDrained = z.object({ type: z.literal("ChildDrained"), ...base, slot: Slot, pid: Pid, cut_off: z.array(z.string()) });
/** The child process is gone. */
export const ChildExited = z.object({
  type: z.literal("ChildExited"),
  ...base,
  slot: Slot,
  pid: Pid,
  code: z.number().int().nullable(),
  signal: z.string().nullable(),
});
/** The back-off of a slot elapsed (a SetTimer of RESTART_TIMER_KEY fired). */
export const RestartTimerFired = z.object({ type: z.literal("RestartTimerFired"), ...base, slot: Slot });
/** A shutdown signal arrived (the second one force-kills). */
export const ShutdownRequested = z.object({ type: z.literal("ShutdownRequested"), ...base, signal: z.string().min(1) });
/** drainMs + drainGraceMs passed since the shutdown began. */
export const DrainDeadlinePassed = z.object({ type: z.literal("DrainDeadlinePassed"), ...base });

export const SupervisorEvent = z.discriminatedUnion("type", [
  SupervisorStarted,
  ChildSpawned,
  ChildSpawnFailed,
  ChildReady,
  ChildInflight,
  ChildDrained,
  ChildExited,
  RestartTimerFired,
  ShutdownRequested,
  DrainDeadlinePassed,
]);
export type SupervisorEvent = z.infer<typeof SupervisorEvent>;

/** What a timer delivers when it fires; the shell adds `id` and `at`. */
export type TimerEvent = { type: "RestartTimerFired"; slot: number } | { type: "DrainDeadlinePassed" };

// ---- instructions -----------------------------------------------------------------

interface InstructionBase {
  /** id of the event that produced this instruction */
  stimulus_id: string;
}
export type LogLevel = "debug" | "info" | "warn" | "error";

/** Start the slot's child (after the slot's previous files are removed); answer with ChildSpawned or ChildSpawnFailed. */
export interface SpawnChild extends InstructionBase {
  type: "SpawnChild";
  slot: number;
}
/** Start (or restart) the timer `key`; when it fires, feed `event`. */
export interface SetTimer extends InstructionBase {
  type: "SetTimer";
  key: string;
  delay_ms: number;
  event: TimerEvent;
}
export interface CancelTimer extends InstructionBase {
  type: "CancelTimer";
  key: string;
}
/** Tell the child to stop polling and drain within `drain_ms`. */
export interface SendStop extends InstructionBase {
  type: "SendStop";
  slot: number;
  pid: number;
  drain_ms: number;
}
export interface KillChild extends InstructionBase {
  type: "KillChild";
  slot: number;
  pid: number;
  signal: "SIGKILL";
}
/** Remove the temporary files of the slot's dead child (its scratch dir). */
export interface CleanupSlot extends InstructionBase {
  type: "CleanupSlot";
  slot: number;
}
export interface Log extends InstructionBase {
  type: "Log";
  level: LogLevel;
  msg: string;
  fields: Record<string, unknown>;
}
/** Every child is gone: exit the supervisor process with `code`. */
export interface Exit extends InstructionBase {
  type: "Exit";
  code: number;
}
export type Instruction = SpawnChild | SetTimer | CancelTimer | SendStop | KillChild | CleanupSlot | Log | Exit;

export const restartTimerKey = (slot: number): string => `restart:${slot}`;
export const DRAIN_TIMER_KEY = "drain";

// ---- state ------------------------------------------------------------------------

export type SlotStatus = "stopped" | "spawning" | "running" | "backoff" | "stopping";
export type SupervisorPhase = "running" | "draining" | "stopped";

/** The legal slot transitions; anything else is a bug and raises IllegalTransitionError. */
export const SLOT_TRANSITIONS: { readonly [F in SlotStatus]: readonly SlotStatus[] } = {
  stopped: ["spawning"],
  // spawned; spawned after shutdown began; could not start; could not start while draining
  spawning: ["running", "stopping", "backoff", "stopped"],
  // exited unexpectedly; told to drain
  running: ["backoff", "stopping"],
  // back-off over; shutdown during the back-off
  backoff: ["spawning", "stopped"],
  stopping: ["stopped"],
};

export const PHASE_TRANSITIONS: { readonly [F in SupervisorPhase]: readonly SupervisorPhase[] } = {
  running: ["draining"],
  draining: ["stopped"],
  stopped: [],
};

export interface SlotTransition {
  seq: number;
  event_id: string;
  from: SlotStatus;
  to: SlotStatus;
  pid: number | null;
}

export interface SlotState {
  slot: number;
  status: SlotStatus;
  pid: number | null;
  started_at: number | null;
  /** consecutive exits without a healthy period in between */
  failures: number;
  restarts: number;
  worker_id: string | null;
  /** task ids the child last reported as running */
  inflight: string[];
  /** the latest transitions (HISTORY_LIMIT) */
  history: SlotTransition[];
}

export type Outcome = "applied" | "ignored";

export interface LogEntry {
  seq: number;
  event_id: string;
  type: SupervisorEvent["type"];
  outcome: Outcome;
  note: string | null;
  slot: number | null;
}

export interface SupervisorState {
  phase: SupervisorPhase;
  policy: SupervisorPolicy;
  slots: SlotState[];
  /** set when shutdown had to kill children or children reported tasks they cut off */
  cut_off: { slot: number; pid: number; task_ids: string[] }[];
  forced: boolean;
  exit_code: number | null;
  /** events handled */
  seq: number;
  /** the latest events with their outcome (LOG_LIMIT) */
  log: LogEntry[];
}

export const HISTORY_LIMIT = 50;
export const LOG_LIMIT = 200;

export function initialState(policy: SupervisorPolicy): SupervisorState {
  if (!Number.isInteger(policy.slots) || policy.slots < 1) throw new Error(`supervisor needs at least one slot (got ${policy.slots})`);
  return {
    phase: "running",
    policy,
    slots: Array.from({ length: policy.slots }, (_, slot) => ({
      slot,
      status: "stopped" as SlotStatus,
      pid: null,
      started_at: null,
      failures: 0,
      restarts: 0,
      worker_id: null,
      inflight: [],
      history: [],
    })),
    cut_off: [],
    forced: false,
    exit_code: null,
    seq: 0,
    log: [],
  };
}

// ---- errors -----------------------------------------------------------------------

export { EventSchemaError, IllegalTransitionError };


// ---- entry point ------------------------------------------------------------------

export interface HandleResult {
  state: SupervisorState;
  instructions: Instruction[];
  outcome: Outcome;
  note: string | null;
}

interface Verdict {
  outcome: Outcome;
  note: string | null;
  slot: number | null;
}

/** Everything a handler needs; `s` is the machine's private copy of the state. */
interface Ctx {
  s: SupervisorState;
  seq: number;
  event: SupervisorEvent;
  out: Instruction[];
}

const applied = (slot: number | null = null): Verdict => ({ outcome: "applied", note: null, slot });
const ignored = (note: string, slot: number | null = null): Verdict => ({ outcome: "ignored", note, slot });

/**
 * Handle one event. Never mutates `state`; returns the next state and the instructions
 * to run. Throws only EventSchemaError (malformed event) and IllegalTransitionError (a bug).
 */
export function handle(state: SupervisorState, rawEvent: SupervisorEvent): HandleResult {
  const parsed = SupervisorEvent.safeParse(rawEvent);
  if (!parsed.success) throw new EventSchemaError("supervisor", parsed.error);
  const event = parsed.data;
  // log entries are never changed once written: share them instead of copying them all each time
  const { log: entries, ...rest } = state;
  const s: SupervisorState = { ...structuredClone(rest), log: entries.slice() };
  s.seq += 1;
  const ctx: Ctx = { s, seq: s.seq, event, out: [] };
  const verdict = dispatch(ctx, event);
  s.log.push({ seq: s.seq, event_id: event.id, type: event.type, outcome: verdict.outcome, note: verdict.note, slot: verdict.slot });
  if (s.log.length > LOG_LIMIT) s.log.splice(0, s.log.length - LOG_LIMIT);
  return { state: s, instructions: ctx.out, outcome: verdict.outcome, note: verdict.note };
}

function dispatch(ctx: Ctx, event: SupervisorEvent): Verdict {
  const { s } = ctx;
  switch (event.type) {
    case "SupervisorStarted": {
      if (s.phase !== "running") return ignored(`supervisor already ${s.phase}`);
      for (const x of s.slots) {
        if (x.status !== "stopped" || x.pid !== null) continue;
        spawnSlot(ctx, x);
      }
      log(ctx, "info", "supervisor started", { slots: s.policy.slots, drain_ms: s.policy.drainMs });
      return applied();
    }
    case "ChildSpawned": {
      const x = s.slots[event.slot];
      if (!x) return ignored(`no slot ${event.slot}`);
      x.pid = event.pid;
      x.started_at = event.at;
      x.worker_id = null;
      x.inflight = [];
      if (s.phase === "draining") {
        // spawned while shutdown began: tell it to stop at once
        move(ctx, x, "stopping");
        push(ctx, { type: "SendStop", slot: x.slot, pid: event.pid, drain_ms: s.policy.drainMs });
      } else {
        move(ctx, x, "running");
      }
      log(ctx, "info", "worker child started", { slot: x.slot, pid: event.pid, restarts: x.restarts });
      return applied(x.slot);
    }
    case "ChildSpawnFailed": {
      const x = s.slots[event.slot];
      if (!x) return ignored(`no slot ${event.slot}`);
      x.pid = null;
      if (s.phase === "draining") {
        move(ctx, x, "stopped");
        log(ctx, "error", "could not start worker child", { slot: x.slot, error: event.error });
        finishIfAllStopped(ctx);
      } else {
        afterExit(ctx, x, null, { error: event.error }, "could not start worker child");
      }
      return applied(x.slot);
    }
    case "ChildReady": {
      const x = current(s, event.slot, event.pid);
      if (!x) return stale(event.slot, event.pid);
      x.worker_id = event.worker_id;
      log(ctx, "info", "worker child ready", { slot: x.slot, pid: event.pid, worker_id: event.worker_id });
      return applied(x.slot);
    }
    case "ChildInflight": {
      const x = current(s, event.slot, event.pid);
      if (!x) return stale(event.slot, event.pid);
      x.inflight = [...event.task_ids];
      return applied(x.slot);
    }
    case "ChildDrained": {
      const x = current(s, event.slot, event.pid);
      if (!x) return stale(event.slot, event.pid);
      if (event.cut_off.length > 0) {
        s.cut_off.push({ slot: x.slot, pid: event.pid, task_ids: [...event.cut_off] });
        log(ctx, "warn", "worker child cut off tasks at its drain deadline", { slot: x.slot, pid: event.pid, worker_id: x.worker_id, cut_off: event.cut_off });
      } else {
        log(ctx, "info", "worker child drained", { slot: x.slot, pid: event.pid, worker_id: x.worker_id });
      }
      x.inflight = [];
      return applied(x.slot);
    }
    case "ChildExited": {
      const x = current(s, event.slot, event.pid);
      if (!x) return stale(event.slot, event.pid);
      const fields = { code: event.code, signal: event.signal };
      if (s.phase === "draining") {
        const clean = event.code === 0 && event.signal === null;
        log(ctx, clean ? "info" : "warn", "worker child exited", {
          slot: x.slot,
          pid: event.pid,
          worker_id: x.worker_id,
          ...fields,
          uptime_ms: x.started_at === null ? null : event.at - x.started_at,
        });
        move(ctx, x, "stopped");
        x.pid = null;
        x.inflight = [];
        push(ctx, { type: "CleanupSlot", slot: x.slot });
        finishIfAllStopped(ctx);
      } else {
        afterExit(ctx, x, x.pid, fields, "worker child exited");
      }
      return applied(x.slot);
    }
    case "RestartTimerFired": {
      const x = s.slots[event.slot];
      if (!x) return ignored(`no slot ${event.slot}`);
      if (s.phase !== "running") return ignored(`supervisor ${s.phase}: no restart`, x.slot);
      if (x.status !== "backoff") return ignored(`slot is ${x.status}, not waiting to restart`, x.slot);
      x.restarts += 1;
      spawnSlot(ctx, x);
      return applied(x.slot);
    }
    case "ShutdownRequested": {
      if (s.phase === "stopped") return ignored("supervisor already stopped");
      if (s.phase === "draining") {
        log(ctx, "warn", "second shutdown signal: force-killing worker children now", { signal: event.signal });
        forceKill(ctx, "second signal");
        return applied();
      }
      movePhase(ctx, "draining");
      log(ctx, "info", "shutting down: workers stop polling and drain", {
        signal: event.signal,
        drain_ms: s.policy.drainMs,
        kill_after_ms: s.policy.drainMs + s.policy.drainGraceMs,
      });
      for (const x of s.slots) {
        if (x.status === "backoff") {
          push(ctx, { type: "CancelTimer", key: restartTimerKey(x.slot) });
          move(ctx, x, "stopped");
        } else if (x.status === "running" && x.pid !== null) {
          move(ctx, x, "stopping");
          push(ctx, { type: "SendStop", slot: x.slot, pid: x.pid, drain_ms: s.policy.drainMs });
        }
        // "spawning": the stop is sent when ChildSpawned arrives
      }
      push(ctx, { type: "SetTimer", key: DRAIN_TIMER_KEY, delay_ms: s.policy.drainMs + s.policy.drainGraceMs, event: { type: "DrainDeadlinePassed" } });
      finishIfAllStopped(ctx);
      return applied();
    }
    case "DrainDeadlinePassed": {
      if (s.phase !== "draining") return ignored(`supervisor ${s.phase}, not draining`);
      forceKill(ctx, "drain deadline passed");
      return applied();
    }
  }
}

// ---- transitions ------------------------------------------------------------------

/** The only way a slot changes status: checked against SLOT_TRANSITIONS, recorded in its history. */
function move(ctx: Ctx, x: SlotState, to: SlotStatus): void {
  if (!SLOT_TRANSITIONS[x.status].includes(to)) {
    throw new IllegalTransitionError(`slot ${x.slot}`, x.status, to, ctx.event.id, x.history, (h) => ` (pid ${h.pid ?? "-"})`);
  }
  x.history.push({ seq: ctx.seq, event_id: ctx.event.id, from: x.status, to, pid: x.pid });
  if (x.history.length > HISTORY_LIMIT) x.history.splice(0, x.history.length - HISTORY_LIMIT);
  x.status = to;
}

function movePhase(ctx: Ctx, to: SupervisorPhase): void {
  const { s } = ctx;
  if (!PHASE_TRANSITIONS[s.phase].includes(to)) throw new IllegalTransitionError("supervisor", s.phase, to, ctx.event.id, []);
  s.phase = to;
}

function spawnSlot(ctx: Ctx, x: SlotState): void {
  move(ctx, x, "spawning");
  push(ctx, { type: "SpawnChild", slot: x.slot });
}

/** Unexpected exit (or failed start) while running: log it, clean the slot's scratch, schedule the restart. */
function afterExit(ctx: Ctx, x: SlotState, pid: number | null, fields: Record<string, unknown>, msg: string): void {
  const { s } = ctx;
  const uptime = x.started_at === null ? 0 : ctx.event.at - x.started_at;
  if (x.started_at !== null && uptime >= s.policy.healthyAfterMs) x.failures = 0;
  const delay = restartDelayMs(x.failures, s.policy.backoffScale);
  const lost = x.inflight;
  x.failures += 1;
  move(ctx, x, "backoff");
  x.pid = null;
  x.started_at = null;
  x.inflight = [];
  log(ctx, "error", msg, {
    slot: x.slot,
    pid,
    worker_id: x.worker_id,
    ...fields,
    uptime_ms: uptime,
    inflight: lost,
    consecutive_failures: x.failures,
    restart_in_ms: delay,
  });
  push(ctx, { type: "CleanupSlot", slot: x.slot });
  push(ctx, { type: "SetTimer", key: restartTimerKey(x.slot), delay_ms: delay, event: { type: "RestartTimerFired", slot: x.slot } });
}

function forceKill(ctx: Ctx, reason: string): void {
  const { s } = ctx;
  for (const x of s.slots) {
    if (x.pid === null || (x.status !== "stopping" && x.status !== "running")) continue;
    s.forced = true;
    if (x.inflight.length > 0) s.cut_off.push({ slot: x.slot, pid: x.pid, task_ids: [...x.inflight] });
    log(ctx, "error", "force-killing worker child", { reason, slot: x.slot, pid: x.pid, worker_id: x.worker_id, cut_off: x.inflight });
    push(ctx, { type: "KillChild", slot: x.slot, pid: x.pid, signal: "SIGKILL" });
  }
}

function finishIfAllStopped(ctx: Ctx): void {
  const { s } = ctx;
  if (s.phase !== "draining" || !s.slots.every((x) => x.status === "stopped")) return;
  movePhase(ctx, "stopped");
  const code = s.forced || s.cut_off.length > 0 ? 1 : 0;
  s.exit_code = code;
  const cut = s.cut_off.flatMap((c) => c.task_ids);
  push(ctx, { type: "CancelTimer", key: DRAIN_TIMER_KEY });
  log(ctx, code === 0 ? "info" : "warn", "supervisor stopped", { forced: s.forced, cut_off: cut, exit_code: code });
  push(ctx, { type: "Exit", code });
}

// ---- helpers ----------------------------------------------------------------------

/** The slot, when `pid` is its current child; events of an earlier child are stale. */
function current(s: SupervisorState, slot: number, pid: number): SlotState | undefined {
  const x = s.slots[slot];
  return x && x.pid === pid ? x : undefined;
}

const stale = (slot: number, pid: number): Verdict => ignored(`pid ${pid} is not the current child of slot ${slot}`, slot);

type Without<T> = T extends unknown ? Omit<T, "stimulus_id"> : never;
function push(ctx: Ctx, i: Without<Instruction>): void {
  ctx.out.push({ ...i, stimulus_id: ctx.event.id } as Instruction);
}

function log(ctx: Ctx, level: LogLevel, msg: string, fields: Record<string, unknown>): void {
  push(ctx, { type: "Log", level, msg, fields });
}

// ---- queries ----------------------------------------------------------------------

/** Every kept log entry about one slot, plus its transitions. */
export function story(state: SupervisorState, slot: number): { log: LogEntry[]; transitions: SlotTransition[] } {
  return { log: state.log.filter((l) => l.slot === slot), transitions: state.slots[slot]?.history ?? [] };
}
