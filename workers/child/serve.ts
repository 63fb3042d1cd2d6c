/**
 * The child side of the channel. Calls run asynchronously; the message handler stays on
 * the event loop, so `ping` and `shutdown` are answered while a long call runs (as long
 * as the call does not block the loop, which the parent detects by missing pongs).
 * Answers larger than the cap are replaced by a PayloadTooLargeError before sending.
 */
import { MAX_PAYLOAD_ENV, messageBytes, ToChildMessage, type FromChildMessage, type RemoteError } from "./protocol.ts";

export interface CallContext {
  id: number;
  /** aborted on `cancel`, `shutdown` or when the parent goes away */
  signal: AbortSignal;
  /** stream progress to the parent (resets its stall timer) */
  progress(p: unknown): void;
}

export type CallHandler = (params: unknown, ctx: CallContext) => Promise<unknown>;

export interface ServeOptions {
  /** default: CHILD_MAX_PAYLOAD_BYTES from the environment the parent gave us */
  maxPayloadBytes?: number;
  /** how long running calls get to stop after `shutdown` before the process exits (default 1 s) */
  shutdownGraceMs?: number;
  /** called before exiting (close clients, remove files) */
  onShutdown?(): Promise<void>;
}

export function toRemoteError(err: unknown): RemoteError {
  if (err instanceof Error) {
    const retryable = (err as { retryable?: unknown }).retryable;
    return { name: err.name, message: err.message, ...(typeof retryable === "boolean" ? { retryable } : {}), ...(err.stack ? { stack: err.stack } : {}) };
  }
  return { name: "Error", message: String(err) };
}

/** Serve `handlers` over this process's IPC channel, then say `ready`. */
export function serveChildChannel(handlers: Record<string, CallHandler>, o: ServeOptions = {}): void {
  if (typeof process.send !== "function") throw new Error("serveChildChannel: this process has no IPC channel (start it with fork)");
  const max = o.maxPayloadBytes ?? (Number(process.env[MAX_PAYLOAD_ENV]) || 64 * 1024 * 1024);
  const running = new Map<number, AbortController>();
  let stopping = false;

  const send = (msg: FromChildMessage): void => {
    if (process.connected) process.send!(msg);
  };

  const answer = (id: number, value: unknown): void => {
    const msg: FromChildMessage = { kind: "result", id, ok: true, value };
    const bytes = messageBytes(msg);
    if (bytes > max) {
      send({
        kind: "result",
        id,
        ok: false,
        error: {
          name: "PayloadTooLargeError",
          message: `the answer is ${bytes} bytes, more than the child channel's limit of ${max} bytes (CHILD_MAX_PAYLOAD_BYTES); write large data to storage and return its key`,
          retryable: false,
        },
      });
      return;
    }
    send(msg);
  };

  const stop = async (why: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    for (const c of running.values()) c.abort(new Error(`child stopping: ${why}`));
    const deadline = Date.now() + (o.shutdownGraceMs ?? 1000);
    while (running.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    try {
      await o.onShutdown?.();
    } finally {
      process.exit(0);
    }
  };

  process.on("message", (raw) => {
    const parsed = ToChildMessage.safeParse(raw);
    if (!parsed.success) return;
    const m = parsed.data;
    switch (m.kind) {
      case "ping":
        send({ kind: "pong", id: m.id });
        return;
      case "cancel":
        running.get(m.id)?.abort(new Error("cancelled by the parent"));
        return;
      case "shutdown":
        void stop("shutdown requested");
        return;
      case "call": {
        const handler = handlers[m.method];
        if (!handler) {
          send({ kind: "result", id: m.id, ok: false, error: { name: "UnknownMethodError", message: `no method '${m.method}' in this child`, retryable: false } });
          return;
        }
        if (stopping) {
          send({ kind: "result", id: m.id, ok: false, error: { name: "ChildStoppingError", message: "the child is shutting down" } });
          return;
        }
        const ctrl = new AbortController();
        running.set(m.id, ctrl);
        const ctx: CallContext = {
          id: m.id,
          signal: ctrl.signal,
          progress: (p) => {
            if (!ctrl.signal.aborted) send({ kind: "progress", id: m.id, progress: p });
          },
        };
        // run after this handler returns so the loop keeps serving pings meanwhile
        setImmediate(() => {
          Promise.resolve()
            .then(() => handler(m.params, ctx))
            .then(
              (value) => answer(m.id, value),
              (err: unknown) => send({ kind: "result", id: m.id, ok: false, error: toRemoteError(err) }),
            )
            .finally(() => running.delete(m.id));
        });
        return;
      }
    }
  });
  // the parent died or closed the channel: never linger as an orphan
  process.on("disconnect", () => void stop("parent gone"));
  send({ kind: "ready", pid: process.pid });
}
