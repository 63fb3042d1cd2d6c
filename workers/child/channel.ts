/**
 * The parent side of one child process: start it, call methods in it, watch its health.
 *
 *  - framing: every call has an id; results and progress name it (protocol.ts).
 *  - health path: while calls run, the child is pinged every `pingIntervalMs`; the child
 *    answers from its event loop, independent of the call. No pong for `pingTimeoutMs`
 *    means the child is stuck (e.g. a synchronous loop): it is killed (ChildUnresponsiveError).
 *  - time limits: `timeoutMs` per call (ChildCallTimeoutError) and, once a call has
 *    streamed progress (two messages or more), `stallTimeoutMs` of silence
 *    (ChildStallError); both kill the child.
 *  - size cap: a request bigger than `maxPayloadBytes` is refused before it is sent
 *    (PayloadTooLargeError); the child applies the same cap to its answers.
 *  - death: a child that exits while calls run fails them with WorkerCrashError naming
 *    the exit code or signal and the last lines of its output.
 * A channel whose child is gone stays dead; the runner (runner.ts) starts a new one.
 */
import { fork, type ChildProcess } from "node:child_process";
import { LogTail } from "./log-tail.ts";
import { NODE_MEMORY_FLAGS } from "../node-flags.ts";
import { FromChildMessage, MAX_PAYLOAD_ENV, messageBytes, type ToChildMessage } from "./protocol.ts";
import {
  ChildCallCancelledError,
  ChildCallTimeoutError,
  ChildChannelClosedError,
  ChildStallError,
  ChildStepError,
  ChildUnresponsiveError,
  PayloadTooLargeError,
  WorkerCrashError,
  type ChildExit,
} from "./errors.ts";

export interface ChildChannelOptions {
  /** the child's entry module; TypeScript is fine (run with tsx by default) */
  module: string;
  args?: string[];
  /** the environment the child builds its own config from (default: this process's) */
  env?: NodeJS.ProcessEnv;
  /** node flags for the child (default: `--import tsx`) */
  execArgv?: string[];
  cwd?: string;
  maxPayloadBytes: number;
  /** how long the child may take to say `ready` (default 30 s) */
  startTimeoutMs?: number;
  /** ping period while calls run (default 5 s) */
  pingIntervalMs?: number;
  /** no pong for this long: the child is stuck and killed (default 60 s) */
  pingTimeoutMs?: number;
  /** after a cancel, how long the child may take to stop the call before it is killed (default 2 s) */
  cancelGraceMs?: number;
  /** lines kept for crash reports (default 30) */
  logTailLines?: number;
  /** every line the child prints (default: copied to this process's stderr) */
  onLogLine?(line: string, stream: "stdout" | "stderr"): void;
}

export interface CallOptions {
  timeoutMs: number;
  /** silence allowed between progress messages once the call has sent two of them (0/undefined: none) */
  stallTimeoutMs?: number;
  onProgress?(progress: unknown): void;
  signal?: AbortSignal;
  /** how the call is named in errors, e.g. `step transcribe_track` */
  what?: string;
}

interface Pending {
  id: number;
  what: string;
  resolve(v: unknown): void;
  reject(e: Error): void;
  timeout: NodeJS.Timeout;
  stall?: NodeJS.Timeout;
  cancelTimer?: NodeJS.Timeout;
  cancelled?: unknown;
  cleanup(): void;
}

const defaultTsx = (): string => import.meta.resolve("tsx");

/** Signal the child's whole process group (it is a group leader: `detached`). */
function killGroup(proc: ChildProcess, signal: NodeJS.Signals): void {
  if (proc.pid === undefined) return;
  try {
    process.kill(-proc.pid, signal);
  } catch {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
  }
}

export class ChildChannel {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly pings = new Map<number, { sentAt: number; resolve(ms: number): void; reject(e: Error): void }>();
  private monitor: NodeJS.Timeout | undefined;
  private exitInfo: ChildExit | null = null;
  private readonly exited: Promise<ChildExit>;
  private closing = false;
  readonly startedAt = Date.now();

  private constructor(
    private readonly proc: ChildProcess,
    private readonly tail: LogTail,
    private readonly opts: Required<Pick<ChildChannelOptions, "maxPayloadBytes" | "pingIntervalMs" | "pingTimeoutMs" | "cancelGraceMs">>,
  ) {
    // `close` fires once stdio is flushed, so the log tail is complete when calls are failed
    this.exited = new Promise((resolve) => {
      let info: ChildExit | null = null;
      let settled = false;
      const settle = (): void => {
        if (settled || !info) return;
        settled = true;
        resolve(info);
      };
      proc.once("exit", (code, signal) => {
        info = { pid: proc.pid, code, signal };
        this.exitInfo = info;
        killGroup(proc, "SIGKILL"); // leftovers of a child that died (e.g. by an outside kill -9)
        setTimeout(settle, 300).unref(); // a grandchild holding the pipes must not delay the report
      });
      proc.once("close", () => settle());
    });
    void this.exited.then((info) => this.onDead(info));
    proc.on("message", (raw) => this.onMessage(raw));
    proc.on("error", () => {}); // surfaced through `exit`
  }

  /** Start a child and wait until it says it is ready. */
  static async start(o: ChildChannelOptions): Promise<ChildChannel> {
    const tail = new LogTail(o.logTailLines ?? 30, 1000, o.onLogLine ?? ((line) => void process.stderr.write(`${line}\n`)));
    const proc = fork(o.module, o.args ?? [], {
      execArgv: o.execArgv ?? [...NODE_MEMORY_FLAGS, "--import", defaultTsx()],
      env: { ...(o.env ?? process.env), [MAX_PAYLOAD_ENV]: String(o.maxPayloadBytes) },
      cwd: o.cwd,
      stdio: ["ignore", "pipe", "pipe", "ipc"],
      serialization: "json",
      // its own process group, so killing it also kills what it started (ffmpeg, pocketsphinx)
      detached: true,
    });
    proc.stdout?.on("data", (c: Buffer) => tail.push("stdout", c));
    proc.stderr?.on("data", (c: Buffer) => tail.push("stderr", c));
    proc.stdout?.on("end", () => tail.end("stdout"));
    proc.stderr?.on("end", () => tail.end("stderr"));
    const ch = new ChildChannel(proc, tail, {
      maxPayloadBytes: o.maxPayloadBytes,
      pingIntervalMs: o.pingIntervalMs ?? 5000,
      pingTimeoutMs: o.pingTimeoutMs ?? 60_000,
      cancelGraceMs: o.cancelGraceMs ?? 2000,
    });
    const startTimeout = o.startTimeoutMs ?? 30_000;
    await new Promise<void>((resolve, reject) => {
      const onMsg = (raw: unknown): void => {
        const m = FromChildMessage.safeParse(raw);
        if (m.success && m.data.kind === "ready") done();
      };
      const timer = setTimeout(() => {
        done(new ChildUnresponsiveError("while starting (no `ready`)", startTimeout, proc.pid, tail.tail()));
        killGroup(proc, "SIGKILL");
      }, startTimeout);
      let finished = false;
      const done = (err?: Error): void => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        proc.off("message", onMsg);
        if (err) reject(err);
        else resolve();
      };
      proc.on("message", onMsg);
      void ch.exited.then((info) => done(new WorkerCrashError(info, tail.tail(), `while starting (${o.module})`)));
    });
    return ch;
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  /** true while the child runs and has not been told to stop */
  get alive(): boolean {
    return this.exitInfo === null && !this.closing && this.proc.connected;
  }

  get busy(): number {
    return this.pending.size;
  }

  logTail(): string[] {
    return this.tail.tail();
  }

  /** Resolves once the child has exited (how it exited). */
  whenExited(): Promise<ChildExit> {
    return this.exited;
  }

  call(method: string, params: unknown, o: CallOptions): Promise<unknown> {
    const what = o.what ?? method;
    if (!this.alive) return Promise.reject(new ChildChannelClosedError(what));
    if (o.signal?.aborted) return Promise.reject(new ChildCallCancelledError(what, o.signal.reason));
    const id = this.nextId++;
    const msg: ToChildMessage = { kind: "call", id, method, params };
    const bytes = messageBytes(msg);
    if (bytes > this.opts.maxPayloadBytes) return Promise.reject(new PayloadTooLargeError(`the request for ${what}`, bytes, this.opts.maxPayloadBytes));

    return new Promise<unknown>((resolve, reject) => {
      const onAbort = (): void => this.cancel(id, o.signal?.reason);
      const p: Pending = {
        id,
        what,
        resolve,
        reject,
        timeout: setTimeout(() => this.killFor(id, new ChildCallTimeoutError(what, o.timeoutMs, this.pid, this.tail.tail())), o.timeoutMs),
        cleanup: () => {
          clearTimeout(p.timeout);
          if (p.stall) clearTimeout(p.stall);
          if (p.cancelTimer) clearTimeout(p.cancelTimer);
          o.signal?.removeEventListener("abort", onAbort);
        },
      };
      if (o.onProgress || o.stallTimeoutMs) {
        let seen = 0;
        this.progressHandlers.set(id, (progress) => {
          seen += 1;
          // a stream is two or more messages: a lone "starting" note does not promise more
          if (o.stallTimeoutMs && seen >= 2) {
            if (p.stall) clearTimeout(p.stall);
            p.stall = setTimeout(() => this.killFor(id, new ChildStallError(what, o.stallTimeoutMs!, this.pid, this.tail.tail())), o.stallTimeoutMs);
          }
          try {
            o.onProgress?.(progress);
          } catch {
            /* a faulty progress sink must not break the call */
          }
        });
      }
      o.signal?.addEventListener("abort", onAbort, { once: true });
      this.pending.set(id, p);
      this.startMonitor();
      this.send(msg);
    });
  }

  private readonly progressHandlers = new Map<number, (p: unknown) => void>();

  /** Round trip over the health path, in ms. Rejects when the child does not answer in `timeoutMs`. */
  ping(timeoutMs = this.opts.pingTimeoutMs): Promise<number> {
    if (!this.alive) return Promise.reject(new ChildChannelClosedError("ping"));
    const id = this.nextId++;
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pings.delete(id);
        reject(new ChildUnresponsiveError("to a ping", timeoutMs, this.pid, this.tail.tail()));
      }, timeoutMs);
      this.pings.set(id, {
        sentAt: performance.now(),
        resolve: (ms) => {
          clearTimeout(timer);
          resolve(ms);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.send({ kind: "ping", id });
    });
  }

  /** Ask the child to abort its calls and exit; SIGKILL after `graceMs`. Resolves when it is gone. */
  async shutdown(graceMs = 2000): Promise<ChildExit> {
    if (this.exitInfo) return this.exitInfo;
    this.closing = true;
    this.send({ kind: "shutdown" });
    const timer = setTimeout(() => killGroup(this.proc, "SIGKILL"), graceMs);
    const info = await this.exited;
    clearTimeout(timer);
    return info;
  }

  /** Kill the child now (SIGKILL); running calls fail with WorkerCrashError. */
  kill(): void {
    this.closing = true;
    if (this.exitInfo === null) killGroup(this.proc, "SIGKILL");
  }

  private send(msg: ToChildMessage): void {
    if (!this.proc.connected) return;
    this.proc.send(msg, (err) => {
      if (err && this.exitInfo === null) killGroup(this.proc, "SIGKILL"); // channel broken: the exit reports it
    });
  }

  private cancel(id: number, reason: unknown): void {
    const p = this.pending.get(id);
    if (!p || p.cancelled !== undefined) return;
    p.cancelled = reason ?? new Error("aborted");
    this.send({ kind: "cancel", id });
    p.cancelTimer = setTimeout(() => this.killFor(id, new ChildCallCancelledError(p.what, reason)), this.opts.cancelGraceMs);
  }

  /** Fail call `id` with `err`, kill the child, and fail its other calls as collateral. */
  private killFor(id: number, err: Error): void {
    const culprit = this.pending.get(id);
    if (!culprit) return;
    this.settle(id, () => culprit.reject(err));
    for (const other of [...this.pending.values()]) {
      this.settle(other.id, () =>
        other.reject(new WorkerCrashError({ pid: this.pid, code: null, signal: "SIGKILL" }, this.tail.tail(), `while running ${other.what} (killed because ${culprit.what} failed: ${err.name})`)),
      );
    }
    this.kill();
  }

  private settle(id: number, fn: () => void): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    this.progressHandlers.delete(id);
    p.cleanup();
    if (this.pending.size === 0) this.stopMonitor();
    fn();
  }

  private onMessage(raw: unknown): void {
    const parsed = FromChildMessage.safeParse(raw);
    if (!parsed.success) return;
    const m = parsed.data;
    if (m.kind === "pong") {
      const ping = this.pings.get(m.id);
      if (ping) {
        this.pings.delete(m.id);
        ping.resolve(performance.now() - ping.sentAt);
      }
      return;
    }
    if (m.kind === "progress") {
      this.progressHandlers.get(m.id)?.(m.progress);
      return;
    }
    if (m.kind !== "result") return;
    const p = this.pending.get(m.id);
    if (!p) return;
    if (p.cancelled !== undefined) return this.settle(m.id, () => p.reject(new ChildCallCancelledError(p.what, p.cancelled)));
    if (m.ok) this.settle(m.id, () => p.resolve(m.value));
    else if (this.closing) this.settle(m.id, () => p.reject(new ChildChannelClosedError(p.what)));
    else this.settle(m.id, () => p.reject(new ChildStepError(m.error, this.pid)));
  }

  private onDead(info: ChildExit): void {
    this.stopMonitor();
    for (const p of [...this.pending.values()]) {
      this.settle(p.id, () => p.reject(this.closing && !p.cancelled ? new ChildChannelClosedError(p.what) : new WorkerCrashError(info, this.tail.tail(), `while running ${p.what}`)));
    }
    for (const [id, ping] of this.pings) {
      this.pings.delete(id);
      ping.reject(new WorkerCrashError(info, this.tail.tail(), "while a ping was outstanding"));
    }
  }

  /** While calls run: ping, and kill a child whose event loop stopped answering. */
  private startMonitor(): void {
    if (this.monitor) return;
    let outstanding: { id: number; sentAt: number } | null = null;
    this.monitor = setInterval(() => {
      if (this.pending.size === 0) return this.stopMonitor();
      if (outstanding && !this.pings.has(outstanding.id)) outstanding = null; // answered
      if (outstanding) {
        const waited = Date.now() - outstanding.sentAt;
        if (waited >= this.opts.pingTimeoutMs) {
          const first = this.pending.keys().next().value as number;
          const err = new ChildUnresponsiveError(`while running ${this.pending.get(first)!.what}`, waited, this.pid, this.tail.tail());
          for (const p of [...this.pending.values()]) this.settle(p.id, () => p.reject(err));
          this.kill();
        }
        return;
      }
      const id = this.nextId++;
      outstanding = { id, sentAt: Date.now() };
      this.pings.set(id, { sentAt: performance.now(), resolve: () => {}, reject: () => {} });
      this.send({ kind: "ping", id });
    }, Math.max(1, Math.min(this.opts.pingIntervalMs, this.opts.pingTimeoutMs)));
    this.monitor.unref();
  }

  private stopMonitor(): void {
    if (this.monitor) clearInterval(this.monitor);
    this.monitor = undefined;
  }
}
