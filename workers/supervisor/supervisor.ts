/**
 * The supervisor's thin shell around its state machine (supervisor-machine.ts): it turns
 * instructions into child processes, signals, timers and log lines, and feeds what happens
 * back as events, numbered in the order they happen and stamped with the clock. Spawning
 * and the clock are injected, so the same shell runs real processes in production and tests.
 */
import type { Logger } from "pino";
import { FromChild, type ToChild } from "./messages.ts";
import {
  handle,
  initialState,
  type Instruction,
  type SupervisorEvent,
  type SupervisorPolicy,
  type SupervisorState,
  type TimerEvent,
} from "./supervisor-machine.ts";

/** A running child as the shell sees it. */
export interface ChildHandle {
  readonly pid: number;
  /** best effort: a child whose channel is gone will report its exit instead */
  send(msg: ToChild): void;
  kill(signal: NodeJS.Signals): void;
}

export interface ChildHooks {
  onMessage(msg: unknown): void;
  onExit(code: number | null, signal: NodeJS.Signals | null): void;
}

/** Start the worker child of `slot`; throws when it cannot be started. */
export type SpawnChild = (slot: number, hooks: ChildHooks) => ChildHandle;

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface SupervisorDeps {
  policy: SupervisorPolicy;
  spawnChild: SpawnChild;
  /** remove the temporary files of a slot's dead child (its scratch dir) */
  cleanupSlot(slot: number): Promise<void>;
  log: Logger;
  clock?: Clock;
  /** observe every event and the instructions it produced (tests, debugging) */
  onTransition?(event: SupervisorEvent, instructions: Instruction[], state: SupervisorState): void;
}

export interface Supervisor {
  /** begin the drain (a second call force-kills) */
  shutdown(signal: string): void;
  /** resolves with the process exit code once every child is gone */
  readonly done: Promise<number>;
  state(): SupervisorState;
  /** live children by slot */
  children(): { slot: number; pid: number }[];
}

export function startSupervisor(deps: SupervisorDeps): Supervisor {
  const clock = deps.clock ?? systemClock;
  const log = deps.log;
  let state = initialState(deps.policy);
  const handles = new Map<number, ChildHandle>();
  const timers = new Map<string, unknown>();
  const cleanups = new Map<number, Promise<void>>();
  const queue: SupervisorEvent[] = [];
  let busy = false;
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));

  let eventSeq = 0;
  /** `id` and `at` for an event happening now */
  const stamp = (kind: string): { id: string; at: number } => ({ id: `${++eventSeq}:${kind}`, at: clock.now() });
  type Fields<E> = E extends unknown ? Omit<E, "id" | "at"> : never;
  const dispatch = (fields: Fields<SupervisorEvent>): void => {
    queue.push({ ...fields, ...stamp(fields.type) } as SupervisorEvent);
    if (busy) return;
    busy = true;
    try {
      for (let e = queue.shift(); e; e = queue.shift()) {
        const t = handle(state, e);
        state = t.state;
        deps.onTransition?.(e, t.instructions, state);
        for (const i of t.instructions) execute(i);
      }
    } finally {
      busy = false;
    }
  };

  const spawn = (slot: number): void => {
    let handleRef: ChildHandle | undefined;
    const hooks: ChildHooks = {
      onMessage(raw) {
        if (!handleRef) return;
        const parsed = FromChild.safeParse(raw);
        if (!parsed.success) {
          log.warn({ slot, pid: handleRef.pid, message: raw }, "ignoring malformed message from worker child");
          return;
        }
        const m = parsed.data;
        const child = { slot, pid: handleRef.pid };
        if (m.type === "ready") dispatch({ type: "ChildReady", ...child, worker_id: m.worker_id });
        else if (m.type === "inflight") dispatch({ type: "ChildInflight", ...child, task_ids: m.task_ids });
        else dispatch({ type: "ChildDrained", ...child, cut_off: m.cut_off });
      },
      onExit(code, signal) {
        if (!handleRef) return;
        if (handles.get(slot) === handleRef) handles.delete(slot);
        dispatch({ type: "ChildExited", slot, pid: handleRef.pid, code, signal });
      },
    };
    try {
      handleRef = deps.spawnChild(slot, hooks);
    } catch (err) {
      dispatch({ type: "ChildSpawnFailed", slot, error: err instanceof Error ? err.message : String(err) });
      return;
    }
    handles.set(slot, handleRef);
    dispatch({ type: "ChildSpawned", slot, pid: handleRef.pid });
  };

  const execute = (i: Instruction): void => {
    switch (i.type) {
      case "SpawnChild": {
        // never start a slot's new child while the old one's files are being removed
        const pending = cleanups.get(i.slot) ?? Promise.resolve();
        void pending.then(() => spawn(i.slot));
        break;
      }
      case "SetTimer": {
        const old = timers.get(i.key);
        if (old !== undefined) clock.clearTimeout(old);
        const event: TimerEvent = i.event;
        timers.set(
          i.key,
          clock.setTimeout(() => {
            timers.delete(i.key);
            dispatch(event);
          }, i.delay_ms),
        );
        break;
      }
      case "CancelTimer": {
        const h = timers.get(i.key);
        if (h !== undefined) clock.clearTimeout(h);
        timers.delete(i.key);
        break;
      }
      case "SendStop": {
        const h = handles.get(i.slot);
        if (h && h.pid === i.pid) h.send({ type: "stop", drain_ms: i.drain_ms });
        break;
      }
      case "KillChild": {
        const h = handles.get(i.slot);
        if (h && h.pid === i.pid) h.kill(i.signal);
        break;
      }
      case "CleanupSlot": {
        const prev = cleanups.get(i.slot) ?? Promise.resolve();
        const next = prev
          .then(() => deps.cleanupSlot(i.slot))
          .catch((err: unknown) => log.warn({ err, slot: i.slot }, "could not remove the temporary files of a dead worker child"));
        cleanups.set(i.slot, next);
        break;
      }
      case "Log":
        log[i.level](i.fields, i.msg);
        break;
      case "Exit": {
        for (const h of timers.values()) clock.clearTimeout(h);
        timers.clear();
        void Promise.all(cleanups.values()).then(() => resolveDone(i.code));
        break;
      }
    }
  };

  dispatch({ type: "SupervisorStarted" });

  return {
    shutdown: (signal) => dispatch({ type: "ShutdownRequested", signal }),
    done,
    state: () => state,
    children: () => [...handles.entries()].map(([slot, h]) => ({ slot, pid: h.pid })),
  };
}
