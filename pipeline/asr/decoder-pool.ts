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
 * Protocol per decoder: we write `relative/path 0 -1 uttid` to its pipe; the CTM goes to a
 * file the program writes unbuffered (`setbuf(ctm, NULL)`), and after writing it the
 * program logs `uttid done ----` on stderr, so on that line the file holds every word of
 * the segment. A decoder takes one segment at a time, so the new bytes belong to it alone.
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
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, constants, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, writeSync } from "node:fs";
import { mkdir, open, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { AsrWord } from "../ports.ts";

export class DecoderError extends Error {
  override readonly name = "DecoderError";
  constructor(message: string, readonly retryable = true) {
    super(message);
  }
}

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
}

export interface SegmentAudio {
  /** raw 16 kHz mono s16le samples */
  pcm: Buffer;
  seconds: number;
}

export interface DecodeOptions {
  signal?: AbortSignal;
  /** 0 when the first segment starts, then seconds of audio decoded so far / total after each */
  onProgress?: (fraction: number) => void;
  /** this call is one of `size` calls (the tracks of one meeting) expected close together */
  batch?: { id: string; size: number };
}

interface Call {
  readonly seq: number;
  readonly dir: string;
  readonly total: number;
  done: number;
  remaining: number;
  started: boolean;
  failed: boolean;
  readonly words: AsrWord[][];
  readonly onProgress: ((f: number) => void) | undefined;
  readonly resolve: (w: AsrWord[][]) => void;
  readonly reject: (e: unknown) => void;
  cleanup(): void;
}

interface Job {
  readonly call: Call;
  /** the batch this job waits for while it is gathering */
  readonly batch: string | undefined;
  readonly burst: number;
  readonly index: number;
  readonly rel: string;
  readonly seconds: number;
}

interface Decoder {
  readonly child: ChildProcess;
  readonly ctmPath: string;
  /** our end of the control pipe (opened read-write, so opening never blocks); null once closed */
  ctlFd: number | null;
  ctmOffset: number;
  job: Job | null;
  /** performance.now() when the current job was handed over */
  jobStartedAt: number;
  jobTimer: NodeJS.Timeout | null;
  idleTimer: NodeJS.Timeout | null;
  log: string;
  pending: string;
  /** asked to exit (idle, failed call, close): takes no more segments */
  stopping: boolean;
  gone: boolean;
}

const DIR_PREFIX = "trackscribe-asr-";

/** Remove pool directories left by processes that no longer exist. */
function sweepStaleDirs(root: string): void {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return;
  }
  for (const name of names) {
    const m = new RegExp(`^${DIR_PREFIX}(\\d+)-`).exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid) continue;
    try {
      process.kill(pid, 0);
      continue; // alive
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EPERM") continue; // alive, someone else's
    }
    rmSync(path.join(root, name), { recursive: true, force: true });
  }
}

export class DecoderPool {
  private readonly queue: Job[] = [];
  private readonly decoders = new Set<Decoder>();
  private dir: string | null = null;
  private seq = 0;
  private decoderSeq = 0;
  private burst = { id: 0, startedAt: -Infinity };
  /** batches still gathering (open) or gathered (kept a while, so a late call does not wait again) */
  private readonly batches = new Map<string, { size: number; arrived: number; open: boolean; timer: NodeJS.Timeout | null }>();
  private closed = false;
  /** decode seconds per audio second, from the segments decoded so far (for pick) */
  private rtf = 0.25;

  constructor(private readonly o: DecoderPoolOptions) {
    if (!(o.size >= 1)) throw new Error(`decoder pool size must be ≥ 1, got ${o.size}`);
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
    if (segments.length === 0) {
      if (opts.batch) this.arrive(opts.batch);
      return [];
    }
    opts.signal?.throwIfAborted();
    const root = this.workDir();
    const seq = ++this.seq;
    const dir = path.join(root, `c${seq}`);
    await mkdir(dir, { recursive: true });
    try {
      for (const [i, s] of segments.entries()) await writeFile(path.join(dir, `s${i}.raw`), s.pcm);
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
    return new Promise<AsrWord[][]>((resolve, reject) => {
      const onAbort = (): void => this.failCall(call, opts.signal!.reason ?? new DOMException("aborted", "AbortError"));
      const call: Call = {
        seq,
        dir,
        total: segments.reduce((s, x) => s + x.seconds, 0),
        done: 0,
        remaining: segments.length,
        started: false,
        failed: false,
        words: segments.map(() => []),
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
        call.cleanup();
        reject(opts.signal.reason ?? new DOMException("aborted", "AbortError"));
        return;
      }
      opts.signal?.addEventListener("abort", onAbort, { once: true });
      const now = performance.now();
      if (now - this.burst.startedAt > (this.o.burstMs ?? 2000)) this.burst = { id: this.burst.id + 1, startedAt: now };
      const burst = this.burst.id;
      const batch = opts.batch && opts.batch.size > 1 ? opts.batch.id : undefined;
      this.queue.push(...segments.map((s, index): Job => ({ call, batch, burst, index, rel: `c${seq}/s${index}`, seconds: s.seconds })));
      this.queue.sort((a, b) => a.burst - b.burst || b.seconds - a.seconds || a.call.seq - b.call.seq || a.index - b.index);
      // counted after its segments are queued, so a call completing the batch is ordered with it
      if (opts.batch) this.arrive(opts.batch);
      this.dispatch();
    });
  }

  /**
   * Start the decoders now (they load the model, ≈0.3 s each) so that the first segments do
   * not wait for it: call when a transcription is known to follow, e.g. while tracks are
   * still being decoded by ffmpeg. Idle decoders still exit after `idleMs`.
   */
  warm(): void {
    if (this.closed) return;
    while (this.decoders.size < this.o.size) {
      const d = this.startDecoder();
      if (!d) return;
      this.idle(d);
    }
  }

  /** Stop every decoder and fail what is still queued. */
  async close(): Promise<void> {
    this.closed = true;
    for (const e of this.batches.values()) if (e.timer) clearTimeout(e.timer);
    this.batches.clear();
    for (const job of this.queue.splice(0)) this.failCall(job.call, new DecoderError("the decoder pool was closed", true));
    const exits: Promise<void>[] = [];
    for (const d of this.decoders) {
      if (d.job) this.failCall(d.job.call, new DecoderError("the decoder pool was closed", true));
      exits.push(new Promise((r) => (d.gone ? r() : d.child.once("close", () => r()))));
      this.setRef(d, true); // we wait for it
      this.stopDecoder(d, d.job ? "SIGKILL" : null);
    }
    await Promise.all(exits);
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    this.dir = null;
  }

  private workDir(): string {
    if (this.dir) return this.dir;
    const root = this.o.tmpRoot ?? os.tmpdir();
    mkdirSync(root, { recursive: true });
    sweepStaleDirs(root);
    this.dir = mkdtempSync(path.join(root, `${DIR_PREFIX}${process.pid}-`));
    return this.dir;
  }

  /** Count a call's arrival in its batch; the batch stops gathering once all its calls are in. */
  private arrive(b: { id: string; size: number }): void {
    let e = this.batches.get(b.id);
    if (!e) {
      if (b.size <= 1) return;
      e = { size: b.size, arrived: 0, open: true, timer: null };
      this.batches.set(b.id, e);
      const entry = e;
      entry.timer = setTimeout(() => this.closeBatch(b.id, entry), this.o.gatherMs ?? 300);
    }
    e.arrived += 1;
    if (e.open && e.arrived >= e.size) this.closeBatch(b.id, e);
  }

  private closeBatch(id: string, e: { open: boolean; timer: NodeJS.Timeout | null }): void {
    if (e.timer) clearTimeout(e.timer);
    e.open = false;
    // forget it after a while; until then a late call of the batch does not wait again
    e.timer = setTimeout(() => {
      if (this.batches.get(id) === e) this.batches.delete(id);
    }, 60_000);
    e.timer.unref();
    this.dispatch();
  }

  private dispatch(): void {
    for (;;) {
      const eligible = (j: Job): boolean => j.batch === undefined || !this.batches.get(j.batch)?.open;
      if (!this.queue.some(eligible)) return;
      let d = [...this.decoders].find((x) => !x.job && !x.stopping && !x.gone);
      if (!d) {
        if (this.decoders.size >= this.o.size) return;
        d = this.startDecoder();
        if (!d) return;
      }
      this.assign(d, this.queue.splice(this.pick(d, eligible), 1)[0]!);
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
  private pick(d: Decoder, eligible: (j: Job) => boolean): number {
    const head = this.queue.findIndex(eligible);
    if (this.o.size < 2) return head;
    const burst = this.queue[head]!.burst;
    const candidates: number[] = [];
    for (let i = head; i < this.queue.length && candidates.length < 12; i++) {
      const j = this.queue[i]!;
      if (j.burst === burst && eligible(j)) candidates.push(i);
    }
    if (candidates.length < 2) return head;
    const now = performance.now();
    // seconds until each other decoder is free (a decoder not started yet counts as free now)
    const others: number[] = [];
    for (const x of this.decoders) {
      if (x === d || x.stopping || x.gone) continue;
      others.push(x.job ? Math.max(0, x.job.seconds * this.rtf - (now - x.jobStartedAt) / 1000) : 0);
    }
    while (others.length < this.o.size - 1) others.push(0);
    const rest = (skip: number): number[] => candidates.filter((i) => i !== skip).map((i) => this.queue[i]!.seconds * this.rtf);
    let best = head;
    let bestEnd = Infinity;
    for (const c of candidates) {
      const free = [this.queue[c]!.seconds * this.rtf, ...others];
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

  private startDecoder(): Decoder | undefined {
    const dir = this.workDir();
    const n = ++this.decoderSeq;
    const ctmPath = path.join(dir, `d${n}.ctm`);
    const ctlPath = path.join(dir, `d${n}.ctl`);
    const made = spawnSync("mkfifo", [ctlPath], { encoding: "utf8" });
    if (made.status !== 0) {
      const err = new DecoderError(`could not create a pipe for the decoder: ${made.error?.message ?? made.stderr.trim()}`, false);
      for (const j of this.queue.splice(0)) this.failCall(j.call, err);
      return undefined;
    }
    const ctlFd = openSync(ctlPath, constants.O_RDWR);
    const args = [...this.o.args, "-adcin", "yes", "-cepdir", dir, "-cepext", ".raw", "-ctl", ctlPath, "-ctm", ctmPath];
    const child = spawn(this.o.binary, args, { stdio: ["ignore", "ignore", "pipe"] });
    const d: Decoder = { child, ctmPath, ctlFd, ctmOffset: 0, job: null, jobStartedAt: 0, jobTimer: null, idleTimer: null, log: "", pending: "", stopping: false, gone: false };
    this.decoders.add(d);
    child.stderr!.on("data", (b: Buffer) => this.onLog(d, b.toString()));
    child.once("error", (err) => {
      // spawn failed (missing binary): nothing will ever run on this decoder
      this.retire(d, new DecoderError(`${this.o.binary} could not start: ${err.message}`, false));
    });
    child.once("close", (code, sig) => {
      const tail = this.logTail(d);
      this.retire(d, new DecoderError(`${this.o.binary} exited with ${code ?? sig}${tail ? `: ${tail}` : ""}`, true));
    });
    return d;
  }

  private assign(d: Decoder, job: Job): void {
    if (d.idleTimer) clearTimeout(d.idleTimer);
    d.idleTimer = null;
    d.job = job;
    d.jobStartedAt = performance.now();
    this.setRef(d, true);
    if (!job.call.started) {
      job.call.started = true;
      job.call.onProgress?.(0); // decoding has begun (the call may have waited in the queue)
    }
    const limitMs = Math.max(this.o.minStallMs ?? 120_000, (this.o.stallFactor ?? 10) * job.seconds * 1000);
    d.jobTimer = setTimeout(() => {
      this.failCall(job.call, new DecoderError(`${this.o.binary} took longer than ${Math.round(limitMs / 1000)} s on a ${job.seconds.toFixed(1)} s segment`, true));
    }, limitMs);
    // one short line into an empty pipe: never blocks (a decoder holds one segment at a time)
    writeSync(d.ctlFd!, `${job.rel} 0 -1 u${job.call.seq}_${job.index}\n`);
  }

  private onLog(d: Decoder, text: string): void {
    const lines = (d.pending + text).split("\n");
    d.pending = lines.pop() ?? "";
    for (const line of lines) {
      d.log = (d.log + line + "\n").slice(-8000);
      const m = /^(u\d+_\d+) done -{4,}/.exec(line.trim());
      if (m && d.job && !d.stopping && m[1] === `u${d.job.call.seq}_${d.job.index}`) void this.finishJob(d, d.job);
    }
  }

  private async finishJob(d: Decoder, job: Job): Promise<void> {
    if (d.jobTimer) clearTimeout(d.jobTimer);
    d.jobTimer = null;
    let words: AsrWord[] = [];
    try {
      const fh = await open(d.ctmPath, "r");
      try {
        const { size } = await fh.stat();
        const buf = Buffer.alloc(size - d.ctmOffset);
        await fh.read(buf, 0, buf.length, d.ctmOffset);
        d.ctmOffset = size;
        words = this.o.parseCtm(buf.toString("utf8")).get(`u${job.call.seq}_${job.index}`) ?? [];
      } finally {
        await fh.close();
      }
    } catch (err) {
      this.failCall(job.call, new DecoderError(`could not read the decoder's output: ${(err as Error).message}`, true));
    }
    if (d.job === job) {
      d.job = null;
      // a running estimate of the decode speed; segments under a second say little
      if (job.seconds >= 1) this.rtf = 0.7 * this.rtf + 0.3 * ((performance.now() - d.jobStartedAt) / 1000 / job.seconds);
    }
    const call = job.call;
    if (!call.failed) {
      call.words[job.index] = words;
      call.done += job.seconds;
      call.remaining -= 1;
      if (call.total > 0) call.onProgress?.(call.remaining === 0 ? 1 : Math.min(1, call.done / call.total));
      if (call.remaining === 0) {
        call.cleanup();
        call.resolve(call.words);
      }
    }
    this.idle(d);
    this.dispatch();
  }

  private idle(d: Decoder): void {
    if (d.gone || d.stopping || d.job) return;
    this.setRef(d, false);
    const ms = this.o.idleMs ?? 15_000;
    if (!(ms > 0 && Number.isFinite(ms))) return; // kept loaded (unreferenced: it does not keep the process alive)
    d.idleTimer = setTimeout(() => this.stopDecoder(d, null), ms);
    d.idleTimer.unref();
  }

  /** Close the control pipe (the decoder exits after its current line) or kill it. */
  private stopDecoder(d: Decoder, signal: NodeJS.Signals | null): void {
    if (d.idleTimer) clearTimeout(d.idleTimer);
    d.idleTimer = null;
    if (d.gone) return;
    d.stopping = true;
    if (signal) d.child.kill(signal);
    this.closeCtl(d);
  }

  /** The decoder is gone (exited or never started): fail its segment, start over for the rest. */
  private retire(d: Decoder, err: DecoderError): void {
    if (d.gone) return;
    d.gone = true;
    if (d.jobTimer) clearTimeout(d.jobTimer);
    if (d.idleTimer) clearTimeout(d.idleTimer);
    this.decoders.delete(d);
    this.closeCtl(d);
    const job = d.job;
    d.job = null;
    if (job) this.failCall(job.call, err);
    else if (!err.retryable) {
      // could not even start: everything queued would fail the same way
      for (const j of this.queue.splice(0)) this.failCall(j.call, err);
    }
    void rm(d.ctmPath, { force: true });
    void rm(d.ctmPath.replace(/\.ctm$/, ".ctl"), { force: true });
    if (!this.closed) this.dispatch();
  }

  /** Fail a call: drop its queued segments, stop decoders busy with it (they cannot be interrupted otherwise). */
  private failCall(call: Call, err: unknown): void {
    if (call.failed || call.remaining === 0) return;
    call.failed = true;
    for (let i = this.queue.length - 1; i >= 0; i--) if (this.queue[i]!.call === call) this.queue.splice(i, 1);
    for (const d of this.decoders) {
      if (d.job?.call !== call) continue;
      d.job = null; // so that its exit does not fail the call again
      this.stopDecoder(d, "SIGKILL");
    }
    call.cleanup();
    call.reject(err);
  }

  private closeCtl(d: Decoder): void {
    if (d.ctlFd === null) return;
    closeSync(d.ctlFd);
    d.ctlFd = null;
  }

  private setRef(d: Decoder, on: boolean): void {
    const handles = [d.child, d.child.stderr] as unknown as { ref(): void; unref(): void }[];
    for (const h of handles) {
      if (!h) continue;
      if (on) h.ref();
      else h.unref();
    }
  }

  private logTail(d: Decoder): string {
    const all = (d.log + d.pending).trim().split("\n");
    const errors = all.filter((l) => /ERROR|FATAL/.test(l)).slice(-5);
    return (errors.length ? errors : all.slice(-5)).join(" | ");
  }
}
