/**
 * The supervisor's decisions as a pure state machine (lesson 13): `handle(state, event)`
 * returns the next state and the instructions to carry out, and does nothing itself. The
 * process shell (supervisor.ts) turns instructions into fork/kill/timers/log lines and feeds
 * what happens back as events. Time only enters through `event.at`, so tests drive it with
 * plain numbers: no timers, no processes.
 *
 * Rules (lesson 11):
 *  - N stable slots; a slot's child that exits is restarted after 1, 2, 4, 8, 16, then 30 s
 *    (× backoffScale), counted per slot; a child that ran `healthyAfterMs` before exiting
 *    resets its slot's count, so the next restart is after 1 s again.
 *  - every exit is logged with slot, pid, exit code or signal and the tasks it had in flight.
 *  - shutdown: every child is told to stop polling and drain; at `drainMs + drainGraceMs`
 *    the ones still alive are SIGKILLed and the tasks they still had are logged as cut off.
 *    A second shutdown signal force-kills at once.
 */

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

export type SlotStatus = "spawning" | "running" | "backoff" | "stopping" | "stopped";

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
}

export interface SupervisorState {
  phase: "running" | "draining" | "stopped";
  policy: SupervisorPolicy;
  slots: SlotState[];
  /** set when shutdown had to kill children or children reported tasks they cut off */
  cut_off: { slot: number; pid: number; task_ids: string[] }[];
  forced: boolean;
  exit_code: number | null;
}

export type ExitSignal = NodeJS.Signals | null;

export type SupervisorEvent = { at: number } & (
  | { type: "start" }
  | { type: "spawned"; slot: number; pid: number }
  | { type: "spawn_failed"; slot: number; error: string }
  | { type: "ready"; slot: number; pid: number; worker_id: string }
  | { type: "inflight"; slot: number; pid: number; task_ids: string[] }
  /** the child finished its own drain; `cut_off` are tasks its host abandoned at the deadline */
  | { type: "drained"; slot: number; pid: number; cut_off: string[] }
  | { type: "exited"; slot: number; pid: number; code: number | null; signal: ExitSignal }
  | { type: "restart_due"; slot: number }
  | { type: "shutdown"; signal: string }
  | { type: "drain_deadline" }
);

export type LogLevel = "debug" | "info" | "warn" | "error";

export type Instruction =
  | { type: "spawn"; slot: number }
  | { type: "set_timer"; key: string; delay_ms: number; event: TimerEvent }
  | { type: "cancel_timer"; key: string }
  | { type: "send_stop"; slot: number; pid: number; drain_ms: number }
  | { type: "kill"; slot: number; pid: number; signal: "SIGKILL" }
  | { type: "cleanup_slot"; slot: number }
  | { type: "log"; level: LogLevel; msg: string; fields: Record<string, unknown> }
  | { type: "exit"; code: number };

/** Events the shell delivers when a timer fires (it stamps `at` itself). */
export type TimerEvent = { type: "restart_due"; slot: number } | { type: "drain_deadline" };

export const restartTimerKey = (slot: number): string => `restart:${slot}`;
export const DRAIN_TIMER_KEY = "drain";

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
    })),
    cut_off: [],
    forced: false,
    exit_code: null,
  };
}

export interface Transition {
  state: SupervisorState;
  instructions: Instruction[];
}

const log = (level: LogLevel, msg: string, fields: Record<string, unknown>): Instruction => ({ type: "log", level, msg, fields });

/** Pure: the next state and what to do. Never mutates `state`. */
export function handle(state: SupervisorState, event: SupervisorEvent): Transition {
  const s: SupervisorState = { ...state, slots: state.slots.map((x) => ({ ...x, inflight: [...x.inflight] })), cut_off: [...state.cut_off] };
  const out: Instruction[] = [];
  const slotOf = (n: number): SlotState | undefined => s.slots[n];
  // events from a child that is no longer the slot's current one are stale
  const current = (n: number, pid: number): SlotState | undefined => {
    const x = slotOf(n);
    return x && x.pid === pid ? x : undefined;
  };

  switch (event.type) {
    case "start": {
      if (s.phase !== "running") break;
      for (const x of s.slots) {
        if (x.status !== "stopped" || x.pid !== null) continue;
        x.status = "spawning";
        out.push({ type: "spawn", slot: x.slot });
      }
      out.push(log("info", "supervisor started", { slots: s.policy.slots, drain_ms: s.policy.drainMs }));
      break;
    }

    case "spawned": {
      const x = slotOf(event.slot);
      if (!x) break;
      x.pid = event.pid;
      x.started_at = event.at;
      x.worker_id = null;
      x.inflight = [];
      if (s.phase === "draining") {
        // spawned while shutdown began: tell it to stop at once
        x.status = "stopping";
        out.push({ type: "send_stop", slot: x.slot, pid: event.pid, drain_ms: s.policy.drainMs });
      } else {
        x.status = "running";
      }
      out.push(log("info", "worker child started", { slot: x.slot, pid: event.pid, restarts: x.restarts }));
      break;
    }

    case "spawn_failed": {
      const x = slotOf(event.slot);
      if (!x) break;
      if (s.phase === "draining") {
        x.status = "stopped";
        x.pid = null;
        out.push(log("error", "could not start worker child", { slot: x.slot, error: event.error }));
        out.push(...finishIfAllStopped(s));
        break;
      }
      x.pid = null;
      out.push(...afterExit(s, x, event.at, { error: event.error }, "could not start worker child"));
      break;
    }

    case "ready": {
      const x = current(event.slot, event.pid);
      if (!x) break;
      x.worker_id = event.worker_id;
      out.push(log("info", "worker child ready", { slot: x.slot, pid: event.pid, worker_id: event.worker_id }));
      break;
    }

    case "inflight": {
      const x = current(event.slot, event.pid);
      if (!x) break;
      x.inflight = [...event.task_ids];
      break;
    }

    case "drained": {
      const x = current(event.slot, event.pid);
      if (!x) break;
      if (event.cut_off.length > 0) {
        s.cut_off.push({ slot: x.slot, pid: event.pid, task_ids: [...event.cut_off] });
        out.push(log("warn", "worker child cut off tasks at its drain deadline", { slot: x.slot, pid: event.pid, worker_id: x.worker_id, cut_off: event.cut_off }));
      } else {
        out.push(log("info", "worker child drained", { slot: x.slot, pid: event.pid, worker_id: x.worker_id }));
      }
      x.inflight = [];
      break;
    }

    case "exited": {
      const x = current(event.slot, event.pid);
      if (!x) break;
      const fields = { code: event.code, signal: event.signal };
      if (s.phase === "draining") {
        const clean = event.code === 0 && event.signal === null;
        out.push(
          log(clean ? "info" : "warn", "worker child exited", {
            slot: x.slot,
            pid: event.pid,
            worker_id: x.worker_id,
            ...fields,
            uptime_ms: x.started_at === null ? null : event.at - x.started_at,
          }),
        );
        x.status = "stopped";
        x.pid = null;
        x.inflight = [];
        out.push({ type: "cleanup_slot", slot: x.slot });
        out.push(...finishIfAllStopped(s));
      } else {
        out.push(...afterExit(s, x, event.at, fields, "worker child exited"));
      }
      break;
    }

    case "restart_due": {
      const x = slotOf(event.slot);
      if (!x || s.phase !== "running" || x.status !== "backoff") break;
      x.status = "spawning";
      x.restarts += 1;
      out.push({ type: "spawn", slot: x.slot });
      break;
    }

    case "shutdown": {
      if (s.phase === "stopped") break;
      if (s.phase === "draining") {
        out.push(log("warn", "second shutdown signal: force-killing worker children now", { signal: event.signal }));
        out.push(...forceKill(s, "second signal"));
        break;
      }
      s.phase = "draining";
      out.push(
        log("info", "shutting down: workers stop polling and drain", {
          signal: event.signal,
          drain_ms: s.policy.drainMs,
          kill_after_ms: s.policy.drainMs + s.policy.drainGraceMs,
        }),
      );
      for (const x of s.slots) {
        if (x.status === "backoff") {
          out.push({ type: "cancel_timer", key: restartTimerKey(x.slot) });
          x.status = "stopped";
        } else if (x.status === "running" && x.pid !== null) {
          x.status = "stopping";
          out.push({ type: "send_stop", slot: x.slot, pid: x.pid, drain_ms: s.policy.drainMs });
        }
        // "spawning": the stop is sent when `spawned` arrives
      }
      out.push({ type: "set_timer", key: DRAIN_TIMER_KEY, delay_ms: s.policy.drainMs + s.policy.drainGraceMs, event: { type: "drain_deadline" } });
      out.push(...finishIfAllStopped(s));
      break;
    }

    case "drain_deadline": {
      if (s.phase !== "draining") break;
      out.push(...forceKill(s, "drain deadline passed"));
      break;
    }
  }
  return { state: s, instructions: out };
}

/** Unexpected exit while running: log it, clean the slot's scratch, schedule the restart. */
function afterExit(s: SupervisorState, x: SlotState, at: number, fields: Record<string, unknown>, msg: string): Instruction[] {
  const uptime = x.started_at === null ? 0 : at - x.started_at;
  if (x.started_at !== null && uptime >= s.policy.healthyAfterMs) x.failures = 0;
  const delay = restartDelayMs(x.failures, s.policy.backoffScale);
  const lost = x.inflight;
  x.failures += 1;
  const pid = x.pid;
  x.status = "backoff";
  x.pid = null;
  x.started_at = null;
  x.inflight = [];
  return [
    log("error", msg, {
      slot: x.slot,
      pid,
      worker_id: x.worker_id,
      ...fields,
      uptime_ms: uptime,
      inflight: lost,
      consecutive_failures: x.failures,
      restart_in_ms: delay,
    }),
    { type: "cleanup_slot", slot: x.slot },
    { type: "set_timer", key: restartTimerKey(x.slot), delay_ms: delay, event: { type: "restart_due", slot: x.slot } },
  ];
}

function forceKill(s: SupervisorState, reason: string): Instruction[] {
  const out: Instruction[] = [];
  for (const x of s.slots) {
    if (x.pid === null || (x.status !== "stopping" && x.status !== "running")) continue;
    s.forced = true;
    if (x.inflight.length > 0) s.cut_off.push({ slot: x.slot, pid: x.pid, task_ids: [...x.inflight] });
    out.push(
      log("error", "force-killing worker child", {
        reason,
        slot: x.slot,
        pid: x.pid,
        worker_id: x.worker_id,
        cut_off: x.inflight,
      }),
    );
    out.push({ type: "kill", slot: x.slot, pid: x.pid, signal: "SIGKILL" });
  }
  return out;
}

function finishIfAllStopped(s: SupervisorState): Instruction[] {
  if (s.phase !== "draining" || !s.slots.every((x) => x.status === "stopped")) return [];
  s.phase = "stopped";
  const code = s.forced || s.cut_off.length > 0 ? 1 : 0;
  s.exit_code = code;
  const cut = s.cut_off.flatMap((c) => c.task_ids);
  return [
    { type: "cancel_timer", key: DRAIN_TIMER_KEY },
    log(code === 0 ? "info" : "warn", "supervisor stopped", { forced: s.forced, cut_off: cut, exit_code: code }),
    { type: "exit", code },
  ];
}
