/**
 * Long-lived `pocketsphinx_batch` decoders shared by every transcription in a process.
 *
 * Why: one batch run per track loads the model every time (≈0.3 s) and makes the track the
 * unit of parallelism, so with 3 tracks on 2 cores one core idles while the longest track
 * finishes. Here each decoder reads its control file from a named pipe (the program reads
 * it line by line; Node's stdin pipes are sockets, which it cannot open by path), so it
 * stays loaded and takes one segment at a time from a queue shared by all tracks: the cores
 * stay busy until the last segment.
 *
 * Results are order-independent: the model's feat.params sets `-cmn batch` (cepstral mean
 * per utterance), so a segment decodes to the same words whichever decoder takes it and
 * whatever it decoded before.
 *
 * The parts: decoder-scheduler.ts decides (a pure state machine: which segment goes to
 * which decoder, idle stops, stalls, restarts, batches), decoder-process.ts runs one
 * decoder and its CTM protocol, work-dir.ts owns the temporary directory. This file glues
 * them: it turns the scheduler's instructions into processes, timers and settled promises
 * and feeds what happens back as events, stamped with the injected clock.
 *
 * Scheduling: across the calls of one burst (calls that arrive within `burstMs` of the
 * burst's first, like the tracks of one meeting), a free decoder takes the segment after
 * which the burst's remaining segments, placed longest first, end soonest (`pick`): mostly
 * the longest, a shorter one when that balances the decoders better. Bursts in arrival
 * order, so a later meeting cannot starve an earlier one. A decoder that is idle for
 * `idleMs` exits; idle decoders do not keep the Node process alive, busy ones do. A
 * decoder that dies fails the call whose segment it held (with its log tail); the other
 * calls carry on on a fresh decoder.
 *
 * Batches: the tracks of one meeting reach a worker's pool one task pick-up apart (tens of
 * ms under Conductor or BullMQ). Had the first track's segments taken both decoders at
 * once, the meeting's longest segment, on a later track, would start seconds late (the
 * transcription phase varied by up to 2.7 s, a third, from that alone). A call that names
 * its batch (`batch: {id, size}`) therefore holds its segments until the batch's `size`
 * calls have arrived or `gatherMs` (default 300 ms) has passed since the first, then the
 * whole batch is ordered longest first. Other work is dispatched meanwhile; the in-process
 * runner's tracks arrive together and never wait.
 */
import { mkdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { AsrWord } from "../../pipeline/ports.ts";
import { DecoderError, DecoderProcess } from "./decoder-process.ts";
import {
  DEFAULT_SCHEDULER_CONFIG,
  handle,
  initialSchedulerState,
  type CallFailure,
  type SchedulerEvent,
  type SchedulerInstruction,
  type SchedulerState,
} from "../../pipeline/asr/decoder-scheduler.ts";
import { createPoolDir } from "./work-dir.ts";

export { DecoderError } from "./decoder-process.ts";

/** Time and timers for the pool (tests may pass their own). */
export interface PoolClock {
  /** ms, monotonic */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /** whether a pending timer keeps the process alive */
  setKeepAlive(handle: unknown, on: boolean): void;
}

export const systemPoolClock: PoolClock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
  setKeepAlive: (h, on) => void (on ? (h as NodeJS.Timeout).ref() : (h as NodeJS.Timeout).unref()),
};

export interface DecoderPoolOptions {
  binary: string;
  /** model and decoder arguments; the pool adds -adcin, -cepdir, -cepext, -ctl and -ctm */
  args: readonly string[];
  /** decoders at most (≥ 1) */
  size: number;
  /** an idle decoder exits after this long (default 15 s; Infinity or ≤ 0: never, it stays loaded) */
  idleMs?: number;
  /** parent of the pool's working directory (default: the OS temp dir) */
  tmpRoot?: string;
  /** a segment that takes longer than max(minStallMs, this × its audio seconds) is declared stuck */
  stallFactor?: number;
  minStallMs?: number;
  /** calls arriving within this long of a burst's first share its longest-first order (default 2 s) */
  burstMs?: number;
  /** how long a batch's first call waits for the rest of its batch (default 300 ms) */
  gatherMs?: number;
  /** parses a CTM text into words per utterance id */
  parseCtm(text: string): Map<string, AsrWord[]>;
  /** default: performance.now and Node's timers */
  clock?: PoolClock;
}

/**
 * A segment's raw 16 kHz mono s16le samples, given (`pcm`) or read when a decoder takes it
 * (`load`, or `writeTo` the file the decoder reads): a call of many segments then holds none of their audio while it waits, and only
 * the segments being decoded are staged on disk.
 */
export type SegmentAudio = { seconds: number } & ({ pcm: Buffer } | { load(): Promise<Buffer | Uint8Array> } | { writeTo(file: string): Promise<void> });

export interface DecodeOptions {
  signal?: AbortSignal;
  /** 0 when the first segment starts, then seconds of audio decoded so far / total after each */
  onProgress?: (fraction: number) => void;
  /** this call is one of `size` calls (the tracks of one meeting) expected close together */
  batch?: { id: string; size: number };
}

interface PendingCall {
  readonly dir: string;
  /** each segment's audio until it is staged (then null) */
  readonly audio: (SegmentAudio | null)[];
  readonly words: AsrWord[][];
  readonly signal: AbortSignal | undefined;
  readonly onProgress: ((f: number) => void) | undefined;
  readonly resolve: (w: AsrWord[][]) => void;
  readonly reject: (e: unknown) => void;
  cleanup(): void;
}

const uttid = (call: number, index: number): string => `u${call}_${index}`;

export class DecoderPool {
  private state: SchedulerState;
  private readonly clock: PoolClock;
  private readonly calls = new Map<number, PendingCall>();
  private readonly decoders = new Map<number, DecoderProcess>();
  /** the segment each decoder was handed last */
  private readonly assigned = new Map<number, { call: number; index: number }>();
  private readonly timers = new Map<string, unknown>();
  private readonly events: SchedulerEvent[] = [];
  private handling = false;
  private eventSeq = 0;
  private callSeq = 0;
  private dir: string | null = null;
  private closed = false;

  constructor(private readonly o: DecoderPoolOptions) {
    this.clock = o.clock ?? systemPoolClock;
    const d = DEFAULT_SCHEDULER_CONFIG;
    this.state = initialSchedulerState({
      size: o.size,
      idleMs: o.idleMs ?? d.idleMs,
      stallFactor: o.stallFactor ?? d.stallFactor,
      minStallMs: o.minStallMs ?? d.minStallMs,
      burstMs: o.burstMs ?? d.burstMs,
      gatherMs: o.gatherMs ?? d.gatherMs,
      batchMemoryMs: d.batchMemoryMs,
      decoderName: o.binary,
    });
  }

  get size(): number {
    return this.o.size;
  }

  /** Decoders alive right now (tests, metrics). */
  get running(): number {
    return this.decoders.size;
  }

  /** Decode the segments; resolves with each segment's words (segment-local seconds), in input order. */
  async decode(segments: readonly SegmentAudio[], opts: DecodeOptions = {}): Promise<AsrWord[][]> {
    if (this.closed) throw new DecoderError("the decoder pool is closed", true);
    const call = ++this.callSeq;
    if (segments.length === 0) {
      // nothing to decode, but it counts as arrived in its batch
      if (opts.batch) this.feed({ type: "CallQueued", call, segments: [], batch: opts.batch });
      return [];
    }
    opts.signal?.throwIfAborted();
    const dir = path.join(this.workDir(), `c${call}`);
    await mkdir(dir, { recursive: true });
    return new Promise<AsrWord[][]>((resolve, reject) => {
      const onAbort = (): void => this.feed({ type: "CallAborted", call });
      const pending: PendingCall = {
        dir,
        audio: [...segments],
        words: segments.map(() => []),
        signal: opts.signal,
        onProgress: opts.onProgress,
        resolve,
        reject,
        cleanup: () => {
          opts.signal?.removeEventListener("abort", onAbort);
          void rm(dir, { recursive: true, force: true });
        },
      };
      if (opts.signal?.aborted) {
        // aborted while the segments were being written: nothing was queued
        pending.cleanup();
        reject(opts.signal.reason ?? new DOMException("aborted", "AbortError"));
        return;
      }
      if (this.closed) {
        pending.cleanup();
        reject(new DecoderError("the decoder pool was closed", true));
        return;
      }
      opts.signal?.addEventListener("abort", onAbort, { once: true });
      this.calls.set(call, pending);
      this.feed({ type: "CallQueued", call, segments: segments.map((s) => s.seconds), ...(opts.batch ? { batch: opts.batch } : {}) });
    });
  }

  /**
   * Start the decoders now (they load the model, ≈0.3 s each) so that the first segments do
   * not wait for it: call when a transcription is known to follow, e.g. while tracks are
   * still being decoded by ffmpeg. Idle decoders still exit after `idleMs`.
   */
  warm(): void {
    if (this.closed) return;
    this.feed({ type: "WarmRequested" });
  }

  /** Stop every decoder and fail what is still queued. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.feed({ type: "CloseRequested" });
    }
    const exits = [...this.decoders.values()].map((d) => {
      d.keepAlive(true); // we wait for it
      return d.exited;
    });
    await Promise.all(exits);
    for (const t of this.timers.values()) this.clock.clearTimeout(t);
    this.timers.clear();
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
    this.dir = null;
  }

  private workDir(): string {
    this.dir ??= createPoolDir(this.o.tmpRoot ?? os.tmpdir());
    return this.dir;
  }

  /** Hand an event to the scheduler and run its instructions; events raised meanwhile wait their turn. */
  private feed(fields: SchedulerEventFields): void {
    this.events.push({ ...fields, id: `${++this.eventSeq}:${fields.type}`, at: this.clock.now() } as SchedulerEvent);
    if (this.handling) return;
    this.handling = true;
    try {
      for (let e = this.events.shift(); e; e = this.events.shift()) {
        const r = handle(this.state, e);
        this.state = r.state;
        for (const i of r.instructions) this.execute(i);
      }
    } finally {
      this.handling = false;
    }
  }

  private execute(i: SchedulerInstruction): void {
    switch (i.type) {
      case "StartDecoder":
        this.startDecoder(i.decoder);
        break;
      case "AssignSegment": {
        // a decoder that could not start has its exit queued as an event: that fails the call
        const d = this.decoders.get(i.decoder);
        if (!d) break;
        this.assigned.set(i.decoder, { call: i.call, index: i.index });
        void this.stage(d, i.decoder, i.call, i.index);
        break;
      }
      case "StopDecoder":
        this.decoders.get(i.decoder)?.stop(i.kill);
        break;
      case "SetTimer": {
        const old = this.timers.get(i.key);
        if (old !== undefined) this.clock.clearTimeout(old);
        const h = this.clock.setTimeout(() => {
          this.timers.delete(i.key);
          this.feed({ type: "TimerFired", key: i.key });
        }, i.delay_ms);
        this.clock.setKeepAlive(h, i.keep_alive);
        this.timers.set(i.key, h);
        break;
      }
      case "CancelTimer": {
        const h = this.timers.get(i.key);
        if (h !== undefined) this.clock.clearTimeout(h);
        this.timers.delete(i.key);
        break;
      }
      case "ReportProgress":
        this.calls.get(i.call)?.onProgress?.(i.fraction);
        break;
      case "ResolveCall": {
        const c = this.settle(i.call);
        c?.resolve(c.words);
        break;
      }
      case "RejectCall": {
        const c = this.settle(i.call);
        c?.reject(this.errorOf(i.failure, c));
        break;
      }
    }
  }

  /**
   * Write the segment's audio where the decoder reads it, then hand it over; the file goes
   * once its words are in. A segment that cannot be read fails its call (SegmentFailed).
   */
  private async stage(d: DecoderProcess, decoder: number, call: number, index: number): Promise<void> {
    const c = this.calls.get(call);
    const audio = c?.audio[index];
    if (!c || !audio) return;
    c.audio[index] = null;
    try {
      const file = path.join(c.dir, `s${index}.raw`);
      if ("writeTo" in audio) await audio.writeTo(file);
      else await writeFile(file, "pcm" in audio ? audio.pcm : await audio.load());
    } catch (err) {
      const job = this.assigned.get(decoder);
      if (job?.call === call && job.index === index) this.feed({ type: "SegmentFailed", decoder, call, index, message: `could not stage the segment: ${(err as Error).message}` });
      return;
    }
    // still this decoder's segment (not aborted, stopped or timed out meanwhile)
    const job = this.assigned.get(decoder);
    if (job?.call === call && job.index === index && this.calls.has(call)) d.decode(`c${call}/s${index}`, uttid(call, index));
  }

  private settle(call: number): PendingCall | undefined {
    const c = this.calls.get(call);
    if (!c) return undefined;
    this.calls.delete(call);
    c.cleanup();
    return c;
  }

  private errorOf(f: CallFailure, c: PendingCall): unknown {
    if (f.kind === "aborted") return c.signal?.reason ?? new DOMException("aborted", "AbortError");
    return new DecoderError(f.message, f.retryable);
  }

  private startDecoder(id: number): void {
    let d: DecoderProcess;
    try {
      d = new DecoderProcess({
        binary: this.o.binary,
        args: this.o.args,
        dir: this.workDir(),
        n: id,
        parseCtm: this.o.parseCtm,
        onWords: (utt, words) => {
          const job = this.assigned.get(id);
          if (!job || uttid(job.call, job.index) !== utt) return;
          const c = this.calls.get(job.call);
          if (c) {
            c.words[job.index] = words;
            void rm(path.join(c.dir, `s${job.index}.raw`), { force: true });
          }
          this.feed({ type: "SegmentDone", decoder: id, call: job.call, index: job.index });
        },
        onOutputError: (utt, message) => {
          const job = this.assigned.get(id);
          if (!job || uttid(job.call, job.index) !== utt) return;
          this.feed({ type: "SegmentFailed", decoder: id, call: job.call, index: job.index, message });
        },
        onExit: (message, retryable) => {
          this.decoders.delete(id);
          this.assigned.delete(id);
          this.feed({ type: "DecoderExited", decoder: id, message, retryable });
        },
      });
    } catch (err) {
      // no pipe (non-retryable), or something unexpected (a full fd table: worth a retry)
      const e = err instanceof DecoderError ? err : new DecoderError(`could not start the decoder: ${(err as Error).message}`, true);
      this.feed({ type: "DecoderExited", decoder: id, message: e.message, retryable: e.retryable });
      return;
    }
    this.decoders.set(id, d);
  }
}

/** An event as its source raises it; the pool adds `id` and `at`. */
type Fields<E> = E extends unknown ? Omit<E, "id" | "at"> : never;
type SchedulerEventFields = Fields<SchedulerEvent>;
