/**
 * Wake-ups for the worker host's polls (see sdk.ts, `heldPoll`).
 *
 * Conductor's SQLite queue answers a held (long) poll by popping every 100 ms, so each
 * hand-off between two steps waited 50–100 ms for that cadence, about a dozen times per
 * recording. The host now holds its polls itself: it asks the server without a wait and,
 * when nothing is there, waits here until the slice ends or something in this process
 * says a task of that type may just have been scheduled:
 *  - a task result acknowledged by the server: Conductor decides inside the update call,
 *    so its successors are queued by then (gated ones, behind a JOIN, a little later:
 *    woken again over a short burst);
 *  - a workflow started from this process: its first task type.
 * A wake-up that finds no poll waiting is kept, so a poll that was on the wire when it
 * came asks again at once instead of sleeping through it.
 */
export type WaitOutcome = "woken" | "timeout" | "closed";

export interface PollHints {
  /**
   * wake polls for these types now, and again after each of `laterMs`; a burst with a `key`
   * (the workflow it waits on) ends early at `arrived(type, key)`
   */
  wake(types: Iterable<string>, laterMs?: readonly number[], key?: string): void;
  /**
   * a task of `type` for `key` (its workflow) has been handed to this process: the later
   * wake-ups of that burst are not needed any more (each would be one more empty ask)
   */
  arrived(type: string, key: string): void;
  /** resolves when woken for `type` (or a wake-up is pending), after `ms`, or on close */
  wait(type: string, ms: number): Promise<WaitOutcome>;
  /** something of workflow `id` changed here (a task result acknowledged) */
  touched(workflowId: string): void;
  /** resolves at the next touched(workflowId), after `ms`, or on close */
  waitForWorkflow(workflowId: string, ms: number): Promise<WaitOutcome>;
  close(): void;
  readonly closed: boolean;
}

/**
 * When a gated successor (behind a JOIN) is polled again after a branch completes, ms.
 * The server completes the JOIN on its system-task poller, every 250 ms
 * (CONDUCTOR_SYSTEM_TASK_POLL; 50 ms when this schedule was measured): 15–25 ms steps at
 * first, then sparser ones up to 700 ms, past one poll interval and a busy machine's
 * delay (at 50 ms a JOIN took up to 200 ms, and a burst that had ended at 150 ms left the
 * next step to the 1 s slice: 800 ms late). The burst ends as soon as the step it waits for has been
 * handed to this process (`arrived`): before, each later wake-up was one more empty ask,
 * about 30 requests per recording.
 */
export const GATED_BURST_MS: readonly number[] = [15, 30, 45, 60, 80, 100, 125, 150, 200, 250, 300, 400, 500, 700];

export function createPollHints(): PollHints {
  const waiters = new Map<string, Set<(o: WaitOutcome) => void>>();
  const pending = new Set<string>();
  const wfWaiters = new Map<string, Set<(o: WaitOutcome) => void>>();
  /** the pending later wake-ups, by `${type}\u0000${key}` (key "" when the burst has none) */
  const bursts = new Map<string, Set<NodeJS.Timeout>>();
  let closed = false;

  const fire = (type: string): void => {
    const set = waiters.get(type);
    if (!set || set.size === 0) {
      pending.add(type);
      return;
    }
    waiters.delete(type);
    for (const resolve of set) resolve("woken");
  };
  const park = (map: Map<string, Set<(o: WaitOutcome) => void>>, key: string, ms: number): Promise<WaitOutcome> =>
    new Promise((resolve) => {
      let set = map.get(key);
      if (!set) map.set(key, (set = new Set()));
      const done = (o: WaitOutcome): void => {
        clearTimeout(timer);
        set!.delete(done);
        if (set!.size === 0 && map.get(key) === set) map.delete(key);
        resolve(o);
      };
      const timer = setTimeout(() => done("timeout"), Math.max(0, ms));
      set.add(done);
    });

  return {
    get closed() {
      return closed;
    },
    wake(types, laterMs = [], key = "") {
      if (closed) return;
      for (const t of types) {
        fire(t);
        if (laterMs.length === 0) continue;
        // one timer chain per type and key, so a keyed burst can end on its own (`arrived`)
        const id = `${t}\u0000${key}`;
        let mine = bursts.get(id);
        if (!mine) bursts.set(id, (mine = new Set()));
        const chain = mine;
        for (const ms of laterMs) {
          const timer = setTimeout(() => {
            chain.delete(timer);
            if (chain.size === 0 && bursts.get(id) === chain) bursts.delete(id);
            if (!closed) fire(t);
          }, ms);
          timer.unref();
          chain.add(timer);
        }
      }
    },
    arrived(type, key) {
      const id = `${type}\u0000${key}`;
      const mine = bursts.get(id);
      if (!mine) return;
      bursts.delete(id);
      for (const t of mine) clearTimeout(t);
    },
    wait(type, ms) {
      if (closed) return Promise.resolve("closed");
      if (pending.delete(type)) return Promise.resolve("woken");
      return park(waiters, type, ms);
    },
    touched(workflowId) {
      const set = wfWaiters.get(workflowId);
      if (!set) return;
      wfWaiters.delete(workflowId);
      for (const resolve of set) resolve("woken");
    },
    waitForWorkflow(workflowId, ms) {
      if (closed) return Promise.resolve("closed");
      return park(wfWaiters, workflowId, ms);
    },
    close() {
      closed = true;
      for (const chain of bursts.values()) for (const t of chain) clearTimeout(t);
      bursts.clear();
      pending.clear();
      for (const map of [waiters, wfWaiters]) {
        for (const set of map.values()) for (const resolve of [...set]) resolve("closed");
        map.clear();
      }
    },
  };
}
