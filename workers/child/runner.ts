/**
 * Runs pipeline steps in child processes: `createChildStepRunner(options)`
 * keeps up to `maxChildren` warm children, each running one step at a time. A child that
 * crashed, hung or timed out is dropped and a fresh one is started for the next call.
 *
 * `sharedSteps` instead run in ONE child, up to `maxSharedCalls` at once. From the config,
 * that is transcribe_track when the ASR engine declares `sharedChild`: the engine inside
 * that child then sees every track at once and spreads their work over its own workers
 * (one child per track would give each track its own: more workers than cores, none
 * shared). Those workers are processes of their own, so one of them crashing still fails
 * one track only; a crash of the shared child itself fails the calls it held (Conductor or
 * BullMQ retries them).
 * The child (step-child.ts) builds its own config, storage and engines from the
 * environment it is given (nothing inherited).
 */
import { fileURLToPath } from "node:url";
import type { Logger } from "pino";
import { asrCapabilities } from "../../adapters/asr/index.ts";
import { transcribeConcurrency, type Config } from "../../pipeline/config.ts";
import { ChildChannel, type ChildChannelOptions } from "./channel.ts";
import { ChildChannelClosedError, PayloadTooLargeError } from "./errors.ts";
import { messageBytes } from "./protocol.ts";

export const STEP_CHILD_MODULE = fileURLToPath(new URL("./step-child.ts", import.meta.url));
export const RUN_STEP_METHOD = "run_step";
/** starts the child's speech-recognizer decoders (the model loads) and returns at once */
export const WARM_ASR_METHOD = "warm_asr";

export interface ChildStepRunnerOptions {
  /** requests and answers above this are refused before sending */
  maxPayloadBytes: number;
  /** time limit of one step run */
  callTimeoutMs: number;
  /** once a step reports progress, this much silence kills it */
  stallTimeoutMs: number;
  pingIntervalMs?: number;
  pingTimeoutMs?: number;
  startTimeoutMs?: number;
  /** children (= steps running at once); default 1 */
  maxChildren?: number;
  /** steps that run together in one shared child (see above) */
  sharedSteps?: readonly string[];
  /** shared-step calls at once in the shared child; default 1 */
  maxSharedCalls?: number;
  /** the child entry; default step-child.ts (tests use their own) */
  module?: string;
  args?: string[];
  /** the environment the child builds its config from; default this process's */
  env?: NodeJS.ProcessEnv;
  logTailLines?: number;
  onLogLine?: ChildChannelOptions["onLogLine"];
  log?: Logger;
}

export interface RunStepOptions {
  /** the step's private scratch directory (created and removed by the caller) */
  scratchDir: string;
  signal?: AbortSignal;
  onProgress?(p: unknown): void;
  /** override of callTimeoutMs for this run */
  timeoutMs?: number;
}

export interface ChildStepRunner {
  /** run `step` with `input` in a child; resolves with the step's (unvalidated JSON) output */
  run(step: string, input: unknown, o: RunStepOptions): Promise<unknown>;
  /**
   * Start the shared child (if needed) and its speech recognizer's decoders, without
   * waiting: called when a track starts preparing, so the model is loaded while ffmpeg
   * decodes and not when transcription starts (the in-process runner does the same).
   */
  warmShared(): void;
  /**
   * Start the children a busy host will use (`maxChildren`, and the shared child when there
   * is a shared lane) and resolve when they are ready: a worker host does this before it
   * takes work, so a meeting's first steps do not wait for Node to boot and load the
   * pipeline in up to three processes at once, on the cores the meeting wants. A child that
   * cannot start is logged and left to be started by the call that needs it.
   */
  prestart(): Promise<void>;
  /** ping every live child over the health path */
  ping(timeoutMs?: number): Promise<{ pid: number | undefined; ms: number }[]>;
  /** pids of live children */
  pids(): (number | undefined)[];
  /** children started so far (a replacement counts) */
  readonly started: number;
  close(): Promise<void>;
}

/** Runner options from the config (CHILD_* variables). */
export function childStepRunnerOptions(config: Config, extra: Partial<ChildStepRunnerOptions> = {}): ChildStepRunnerOptions {
  return {
    maxPayloadBytes: config.CHILD_MAX_PAYLOAD_BYTES,
    callTimeoutMs: config.CHILD_CALL_TIMEOUT_SECONDS * 1000,
    stallTimeoutMs: config.CHILD_STALL_TIMEOUT_SECONDS * 1000,
    pingIntervalMs: config.CHILD_PING_INTERVAL_SECONDS * 1000,
    pingTimeoutMs: config.CHILD_PING_TIMEOUT_SECONDS * 1000,
    maxChildren: config.WORKER_CONCURRENCY,
    sharedSteps: asrCapabilities(config).sharedChild ? ["transcribe_track"] : [],
    maxSharedCalls: transcribeConcurrency(config),
    ...extra,
  };
}

export function createChildStepRunner(o: ChildStepRunnerOptions): ChildStepRunner {
  const idle: ChildChannel[] = [];
  const all = new Set<ChildChannel>();
  let started = 0;
  let closed = false;
  /** at most `max` holders at once; waiting callers are let through when the runner closes */
  const limiter = (max: number) => {
    const waiters: (() => void)[] = [];
    let inUse = 0;
    return {
      async acquire(): Promise<void> {
        while (inUse >= max && !closed) await new Promise<void>((r) => waiters.push(r));
        inUse += 1;
      },
      release(): void {
        inUse -= 1;
        waiters.shift()?.();
      },
      wakeAll(): void {
        for (const w of waiters.splice(0)) w();
      },
    };
  };
  const slots = limiter(Math.max(1, o.maxChildren ?? 1));

  const channelOptions: ChildChannelOptions = {
    module: o.module ?? STEP_CHILD_MODULE,
    maxPayloadBytes: o.maxPayloadBytes,
    ...(o.args ? { args: o.args } : {}),
    ...(o.env ? { env: o.env } : {}),
    ...(o.pingIntervalMs !== undefined ? { pingIntervalMs: o.pingIntervalMs } : {}),
    ...(o.pingTimeoutMs !== undefined ? { pingTimeoutMs: o.pingTimeoutMs } : {}),
    ...(o.startTimeoutMs !== undefined ? { startTimeoutMs: o.startTimeoutMs } : {}),
    ...(o.logTailLines !== undefined ? { logTailLines: o.logTailLines } : {}),
    ...(o.onLogLine ? { onLogLine: o.onLogLine } : {}),
  };

  // the shared lane: one child, several calls at once
  const sharedSteps = new Set(o.sharedSteps ?? []);
  const sharedSlots = limiter(Math.max(1, o.maxSharedCalls ?? 1));
  let shared: Promise<ChildChannel> | null = null;
  const sharedChannel = async (): Promise<ChildChannel> => {
    for (;;) {
      const current = shared;
      if (current) {
        const ch = await current.catch(() => null);
        if (ch?.alive) return ch;
        if (shared !== current) continue; // another caller already started a replacement
      }
      // concurrent callers wait for the same start
      const next = startChannel();
      next.catch(() => {}); // a failed start is reported to the caller that awaits it
      shared = next;
      return next;
    }
  };

  const takeChannel = async (): Promise<ChildChannel> => {
    for (let ch = idle.pop(); ch; ch = idle.pop()) {
      if (ch.alive) return ch;
      all.delete(ch);
    }
    return startChannel();
  };

  const startChannel = async (): Promise<ChildChannel> => {
    const ch = await ChildChannel.start(channelOptions);
    started += 1;
    all.add(ch);
    void ch.whenExited().then((exit) => {
      all.delete(ch);
      const i = idle.indexOf(ch);
      if (i >= 0) idle.splice(i, 1);
      if (!closed && (exit.code !== 0 || exit.signal)) o.log?.warn({ pid: exit.pid, code: exit.code, signal: exit.signal }, "step child exited; the next call starts a new one");
    });
    o.log?.debug({ pid: ch.pid }, "step child started");
    return ch;
  };

  return {
    get started() {
      return started;
    },
    async run(step, input, r) {
      if (closed) throw new ChildChannelClosedError(`step ${step}`);
      const params = { step, input, scratch_dir: r.scratchDir };
      // the cap is checked before anything is sent (or any child started)
      const bytes = messageBytes({ kind: "call", id: Number.MAX_SAFE_INTEGER, method: RUN_STEP_METHOD, params });
      if (bytes > o.maxPayloadBytes) throw new PayloadTooLargeError(`the input of step ${step}`, bytes, o.maxPayloadBytes);
      const callOptions = {
        what: `step ${step}`,
        timeoutMs: r.timeoutMs ?? o.callTimeoutMs,
        stallTimeoutMs: o.stallTimeoutMs,
        ...(r.onProgress ? { onProgress: r.onProgress } : {}),
        ...(r.signal ? { signal: r.signal } : {}),
      };
      if (sharedSteps.has(step)) {
        await sharedSlots.acquire();
        try {
          if (closed) throw new ChildChannelClosedError(`step ${step}`);
          return await (await sharedChannel()).call(RUN_STEP_METHOD, params, callOptions);
        } finally {
          sharedSlots.release();
        }
      }
      await slots.acquire();
      try {
        if (closed) throw new ChildChannelClosedError(`step ${step}`);
        const ch = await takeChannel();
        try {
          return await ch.call(RUN_STEP_METHOD, params, callOptions);
        } finally {
          if (ch.alive && !closed) idle.push(ch);
          else if (!ch.alive) all.delete(ch);
        }
      } finally {
        slots.release();
      }
    },
    warmShared() {
      if (closed || sharedSteps.size === 0) return;
      void sharedChannel()
        .then((ch) => ch.call(WARM_ASR_METHOD, {}, { what: "warm the speech recognizer", timeoutMs: 30000 }))
        .catch((err: unknown) => o.log?.debug({ err: err instanceof Error ? err.message : String(err) }, "could not warm the shared child"));
    },
    async prestart() {
      if (closed) return;
      const live = idle.filter((c) => c.alive).length;
      const starts: Promise<unknown>[] = [];
      for (let i = live; i < Math.max(1, o.maxChildren ?? 1); i++) {
        starts.push(
          startChannel().then((ch) => {
            if (closed) return ch.shutdown(2000);
            idle.push(ch);
          }),
        );
      }
      if (sharedSteps.size > 0) starts.push(sharedChannel());
      for (const r of await Promise.allSettled(starts)) {
        if (r.status === "rejected") o.log?.warn({ err: r.reason instanceof Error ? r.reason.message : String(r.reason) }, "a step child did not start ahead of work; the call that needs it starts one");
      }
    },
    async ping(timeoutMs) {
      const live = [...all].filter((c) => c.alive);
      return Promise.all(live.map(async (c) => ({ pid: c.pid, ms: await c.ping(timeoutMs) })));
    },
    pids: () => [...all].filter((c) => c.alive).map((c) => c.pid),
    async close() {
      closed = true;
      slots.wakeAll();
      sharedSlots.wakeAll();
      await Promise.all([...all].map((c) => c.shutdown(2000)));
      all.clear();
      idle.length = 0;
    },
  };
}
