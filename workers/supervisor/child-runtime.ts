/**
 * The child side of the supervisor protocol, shared by every worker child whatever its
 * engine: start the host, say `ready`, report in-flight task ids whenever they change,
 * and on `stop` (or SIGTERM, or the supervisor vanishing) stop polling, drain, report
 * `drained` with the tasks cut off, and return the exit code.
 *
 * Why the drain is ours and not the SDK's: the Conductor JS SDK's `stopPolling()` returns
 * without waiting for running tasks, so every host exposes `stop(drainMs)` that waits for
 * them itself and `active()` that lists them.
 */
import type { Logger } from "pino";
import { ToChild, type FromChild } from "./messages.ts";

/** What a worker host must offer to be supervised. */
export interface SupervisedHost {
  /** ids of the tasks running now (Conductor task ids, BullMQ job ids) */
  active(): string[];
  /** stop polling, wait for running tasks up to `drainMs`, then abandon them; close connections */
  stop(drainMs: number): Promise<{ cutOff?: string[] } | void>;
}

/** The IPC side of `process` (absent when the worker runs without a supervisor). */
export interface ParentChannel {
  send(msg: FromChild, cb: (err: Error | null) => void): void;
  on(event: "message", fn: (msg: unknown) => void): void;
  on(event: "disconnect", fn: () => void): void;
  disconnect(): void;
  readonly connected: boolean;
}

export interface SupervisedWorkerOptions {
  startHost(): Promise<SupervisedHost>;
  worker_id: string;
  build: string;
  log: Logger;
  /** drain used when stopped by a signal or by the supervisor vanishing */
  drainMs: number;
  /** how often `active()` is checked for changes */
  inflightPollMs?: number;
  /** the IPC channel; default: this process's, when it has one */
  parent?: ParentChannel | null;
  /** process signals to listen to; default: this process */
  signals?: Pick<NodeJS.Process, "on" | "off">;
}

function processParent(): ParentChannel | null {
  if (typeof process.send !== "function") return null;
  return {
    send: (msg, cb) => {
      if (!process.connected || !process.send) return cb(new Error("IPC channel closed"));
      process.send(msg, undefined, {}, (err: Error | null) => cb(err));
    },
    on: (event: "message" | "disconnect", fn: (...a: never[]) => void) => void process.on(event as "message", fn as () => void),
    disconnect: () => process.disconnect?.(),
    get connected() {
      return process.connected;
    },
  } as ParentChannel;
}

/** Run a worker until it is told to stop; resolves with the exit code (0 = drained). */
export async function runSupervisedWorker(opts: SupervisedWorkerOptions): Promise<number> {
  const parent = opts.parent === undefined ? processParent() : opts.parent;
  const signals = opts.signals ?? process;
  const log = opts.log;
  const send = (msg: FromChild): Promise<void> =>
    new Promise((resolve) => {
      if (!parent || !parent.connected) return resolve();
      parent.send(msg, (err) => {
        if (err) log.debug({ err }, "could not reach the supervisor");
        resolve();
      });
    });

  let stopRequest: { drainMs: number; why: string } | null = null;
  let wake: (() => void) | null = null;
  const requestStop = (drainMs: number, why: string): void => {
    if (stopRequest) return;
    stopRequest = { drainMs, why };
    wake?.();
  };

  const onSigterm = (): void => requestStop(opts.drainMs, "SIGTERM");
  // Under a supervisor a terminal's Ctrl-C reaches the whole process group: the supervisor
  // decides, so the child ignores SIGINT. Without one, SIGINT drains like SIGTERM.
  const onSigint = (): void => {
    if (!parent) requestStop(opts.drainMs, "SIGINT");
  };
  signals.on("SIGTERM", onSigterm);
  signals.on("SIGINT", onSigint);
  if (parent) {
    parent.on("message", (raw) => {
      const m = ToChild.safeParse(raw);
      if (!m.success) return void log.warn({ message: raw }, "ignoring malformed message from the supervisor");
      if (m.data.type === "stop") requestStop(m.data.drain_ms, "supervisor");
    });
    // the supervisor died (even by SIGKILL): never outlive it as an unsupervised orphan
    parent.on("disconnect", () => requestStop(opts.drainMs, "supervisor gone"));
  }

  // a stop that arrives while the host is still starting (e.g. waiting for Conductor)
  // ends the child at once: it has no tasks yet
  const stopped = new Promise<null>((resolve) => {
    const prev = wake;
    wake = () => {
      prev?.();
      resolve(null);
    };
    if (stopRequest) resolve(null);
  });
  let host: SupervisedHost;
  try {
    const first = await Promise.race([opts.startHost(), stopped]);
    if (first === null) {
      log.info({ worker_id: opts.worker_id, reason: stopRequest ? (stopRequest as { why: string }).why : "stop" }, "stopped before the worker host was ready");
      signals.off("SIGTERM", onSigterm);
      signals.off("SIGINT", onSigint);
      await send({ type: "drained", cut_off: [] });
      if (parent?.connected) parent.disconnect();
      return 0;
    }
    host = first;
  } catch (err) {
    signals.off("SIGTERM", onSigterm);
    signals.off("SIGINT", onSigint);
    throw err;
  }
  await send({ type: "ready", worker_id: opts.worker_id, build: opts.build });
  log.info({ worker_id: opts.worker_id, build: opts.build, supervised: parent !== null }, "worker ready");

  let last = "[]";
  const report = (): void => {
    const ids = [...host.active()].sort();
    const key = JSON.stringify(ids);
    if (key === last) return;
    last = key;
    void send({ type: "inflight", task_ids: ids });
  };
  const poll = setInterval(report, opts.inflightPollMs ?? 200);

  if (!stopRequest) await new Promise<void>((r) => (wake = r));
  const req = stopRequest as unknown as { drainMs: number; why: string };
  log.info({ worker_id: opts.worker_id, drain_ms: req.drainMs, reason: req.why, inflight: host.active() }, "stopping: no new tasks, draining");
  let cutOff: string[] = [];
  let code = 0;
  const reporter = setInterval(report, 50); // the supervisor must know what is left if it has to kill us
  try {
    const r = await host.stop(req.drainMs);
    cutOff = (r && r.cutOff) || [];
  } catch (err) {
    log.error({ err }, "worker host failed to stop cleanly");
    cutOff = host.active();
    code = 1;
  } finally {
    clearInterval(poll);
    clearInterval(reporter);
    signals.off("SIGTERM", onSigterm);
    signals.off("SIGINT", onSigint);
  }
  report();
  if (cutOff.length > 0) log.warn({ worker_id: opts.worker_id, cut_off: cutOff }, "drain deadline passed: tasks cut off");
  else log.info({ worker_id: opts.worker_id }, "drained");
  await send({ type: "drained", cut_off: cutOff });
  if (parent?.connected) parent.disconnect();
  return code;
}
