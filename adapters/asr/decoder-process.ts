/**
 * One long-lived `pocketsphinx_batch` process and its protocol. It reads its control file
 * from a named pipe (the program reads it line by line; Node's stdin pipes are sockets,
 * which it cannot open by path), so it stays loaded and takes one segment at a time.
 *
 * Protocol: we write `relative/path 0 -1 uttid` to its pipe; the CTM goes to a file the
 * program writes unbuffered (`setbuf(ctm, NULL)`), and after writing it the program logs
 * `uttid done ----` on stderr, so on that line the file holds every word of the segment.
 * It holds one segment at a time, so the bytes added since the last one belong to it.
 *
 * What to decode and when to stop is decided elsewhere (decoder-scheduler.ts); this class
 * only runs the process and reports: a segment's words, a segment whose output could not
 * be read, the process's end (with its log tail).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, constants, openSync, writeSync } from "node:fs";
import { open, rm } from "node:fs/promises";
import path from "node:path";
import type { AsrWord } from "../../pipeline/ports.ts";

export class DecoderError extends Error {
  override readonly name = "DecoderError";
  constructor(message: string, readonly retryable = true) {
    super(message);
  }
}

export interface DecoderProcessOptions {
  binary: string;
  /** model and decoder arguments; -adcin, -cepdir, -cepext, -ctl and -ctm are added */
  args: readonly string[];
  /** where the segment files are (`-cepdir`) and the pipe and CTM file go */
  dir: string;
  /** names the pipe and CTM files (`d<n>.ctl`, `d<n>.ctm`) */
  n: number;
  parseCtm(text: string): Map<string, AsrWord[]>;
  /** the segment `uttid` is decoded */
  onWords(uttid: string, words: AsrWord[]): void;
  /** the segment `uttid` was decoded but its output could not be read */
  onOutputError(uttid: string, message: string): void;
  /** the process is gone; `retryable` false when it could not start at all */
  onExit(message: string, retryable: boolean): void;
}

export class DecoderProcess {
  private readonly child: ChildProcess;
  private readonly ctmPath: string;
  private readonly ctlPath: string;
  /** our end of the control pipe (opened read-write, so opening never blocks); null once closed */
  private ctlFd: number | null;
  private ctmOffset = 0;
  private uttid: string | null = null;
  private log = "";
  private pending = "";
  /** asked to stop: reports no more words */
  private stopping = false;
  private gone = false;
  /** resolves once the process is gone */
  readonly exited: Promise<void>;

  /** Start the process; throws a non-retryable DecoderError when its pipe cannot be made. */
  constructor(private readonly o: DecoderProcessOptions) {
    this.ctmPath = path.join(o.dir, `d${o.n}.ctm`);
    this.ctlPath = path.join(o.dir, `d${o.n}.ctl`);
    const made = spawnSync("mkfifo", [this.ctlPath], { encoding: "utf8" });
    if (made.status !== 0) throw new DecoderError(`could not create a pipe for the decoder: ${made.error?.message ?? made.stderr.trim()}`, false);
    this.ctlFd = openSync(this.ctlPath, constants.O_RDWR);
    const args = [...o.args, "-adcin", "yes", "-cepdir", o.dir, "-cepext", ".raw", "-ctl", this.ctlPath, "-ctm", this.ctmPath];
    this.child = spawn(o.binary, args, { stdio: ["ignore", "ignore", "pipe"] });
    // only a decoder holding a segment keeps Node's event loop alive (see decode)
    this.keepAlive(false);
    let resolveExited!: () => void;
    this.exited = new Promise((r) => (resolveExited = r));
    this.child.stderr!.on("data", (b: Buffer) => this.onLog(b.toString()));
    this.child.once("error", (err) => {
      // spawn failed (missing binary): nothing will ever run on this decoder
      this.finish(`${o.binary} could not start: ${err.message}`, false);
      resolveExited();
    });
    this.child.once("close", (code, sig) => {
      const tail = this.logTail();
      this.finish(`${o.binary} exited with ${code ?? sig}${tail ? `: ${tail}` : ""}`, true);
      resolveExited();
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Hand it a segment (`rel`: its path under `dir`, without .raw); it keeps the process alive until answered. */
  decode(rel: string, uttid: string): void {
    if (this.gone || this.stopping || this.ctlFd === null) return;
    this.uttid = uttid;
    this.keepAlive(true);
    // one short line into an empty pipe: never blocks (a decoder holds one segment at a time)
    writeSync(this.ctlFd, `${rel} 0 -1 ${uttid}\n`);
  }

  /** Close the control pipe (the program exits after its current line), or kill it. */
  stop(kill: boolean): void {
    if (this.gone) return;
    this.stopping = true;
    if (kill) this.child.kill("SIGKILL");
    this.closeCtl();
  }

  /** Whether the process (and its stderr pipe) keep Node's event loop alive. */
  keepAlive(on: boolean): void {
    const handles = [this.child, this.child.stderr] as unknown as ({ ref(): void; unref(): void } | null)[];
    for (const h of handles) {
      if (!h) continue;
      if (on) h.ref();
      else h.unref();
    }
  }

  private onLog(text: string): void {
    const lines = (this.pending + text).split("\n");
    this.pending = lines.pop() ?? "";
    for (const line of lines) {
      this.log = (this.log + line + "\n").slice(-8000);
      const m = /^(\S+) done -{4,}/.exec(line.trim());
      if (m && m[1] === this.uttid && !this.stopping) {
        this.uttid = null;
        void this.readWords(m[1]);
      }
    }
  }

  private async readWords(uttid: string): Promise<void> {
    let words: AsrWord[];
    try {
      const fh = await open(this.ctmPath, "r");
      try {
        const { size } = await fh.stat();
        const buf = Buffer.alloc(size - this.ctmOffset);
        await fh.read(buf, 0, buf.length, this.ctmOffset);
        this.ctmOffset = size;
        words = this.o.parseCtm(buf.toString("utf8")).get(uttid) ?? [];
      } finally {
        await fh.close();
      }
    } catch (err) {
      this.o.onOutputError(uttid, (err as Error).message);
      return;
    }
    // an idle decoder does not keep the process alive
    if (this.uttid === null) this.keepAlive(false);
    this.o.onWords(uttid, words);
  }

  private finish(message: string, retryable: boolean): void {
    if (this.gone) return;
    this.gone = true;
    this.closeCtl();
    void rm(this.ctmPath, { force: true });
    void rm(this.ctlPath, { force: true });
    this.o.onExit(message, retryable);
  }

  private closeCtl(): void {
    if (this.ctlFd === null) return;
    closeSync(this.ctlFd);
    this.ctlFd = null;
  }

  private logTail(): string {
    const all = (this.log + this.pending).trim().split("\n");
    const errors = all.filter((l) => /ERROR|FATAL/.test(l)).slice(-5);
    return (errors.length ? errors : all.slice(-5)).join(" | ");
  }
}
