/**
 * Measuring a track's duration without holding it: the API's upload probe.
 *
 * - `createDurationTap`: a pass-through stream placed between an upload and storage. Its
 *   bytes also go to `ffmpeg -c copy -f null` (demuxing only, no decoding: ≈1% of a core for
 *   a fast upload), whose `-progress` reports how much audio has passed. The caller sees the
 *   running figure (to stop an upload the moment it passes a limit) and the exact total at
 *   the end. ffmpeg reads only its stdin (`-protocol_whitelist pipe`) with the demuxer pinned
 *   from the sniffed container (`-f`), like every other ffmpeg run of the project.
 * - `probeHead`: the duration a file's first bytes declare (a WAV header's data size, or
 *   what ffprobe reads from the head, e.g. FLAC's STREAMINFO), for tracks referenced by key
 *   that the API does not read whole. A header may lie: the workers measure again.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { Transform } from "node:stream";
import { FFMPEG_DEMUXER, type AudioFormat } from "../../pipeline/audio/sniff.ts";

export interface TapVerdict {
  /** audio seconds that passed (the last packet's end, as ffmpeg's progress reports it) */
  seconds: number;
  /** set when ffmpeg could not read the stream as the sniffed format: its last error line */
  unreadable?: string;
}

export interface DurationTap {
  stream: Transform;
  /** settles once the stream has ended (or was destroyed) and ffmpeg has exited */
  verdict: Promise<TapVerdict>;
}

export interface DurationTapOptions {
  /** the container, known once the first bytes were judged (called on the first chunk) */
  format: () => AudioFormat | undefined;
  /** called with the running figure; an Error returned stops the stream with it */
  check?: (seconds: number) => Error | undefined;
  ffmpeg?: string;
}

const lastLine = (text: string): string => text.trim().split(/\r?\n/).pop()?.slice(0, 200) ?? "";

export function createDurationTap(opts: DurationTapOptions): DurationTap {
  let child: ChildProcessWithoutNullStreams | undefined;
  let exited = false;
  let seconds = 0;
  let stderr = "";
  let settle!: (v: TapVerdict) => void;
  const verdict = new Promise<TapVerdict>((resolve) => {
    let done = false;
    settle = (v) => {
      if (!done) resolve(v);
      done = true;
    };
  });

  const start = (): void => {
    const format = opts.format();
    if (!format) {
      exited = true;
      settle({ seconds: 0, unreadable: "not a recognized audio format" });
      return;
    }
    const args = ["-hide_banner", "-nostats", "-v", "error", "-protocol_whitelist", "pipe", "-f", FFMPEG_DEMUXER[format], "-i", "pipe:0"];
    args.push("-map", "0:a:0", "-c", "copy", "-f", "null", "-progress", "pipe:1", "-");
    const c = spawn(opts.ffmpeg ?? "ffmpeg", args, { stdio: ["pipe", "pipe", "pipe"] });
    child = c;
    // ffmpeg may stop reading early (an unreadable stream): the rest still goes to storage
    c.stdin.on("error", () => undefined);
    let pending = "";
    c.stdout.on("data", (b: Buffer) => {
      pending += b.toString("latin1");
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) {
        const m = /^out_time_us=(\d+)/.exec(line);
        if (!m) continue;
        seconds = Math.max(seconds, Number(m[1]) / 1e6);
        const problem = opts.check?.(seconds);
        if (problem) tap.destroy(problem);
      }
    });
    c.stderr.on("data", (b: Buffer) => {
      stderr = (stderr + b.toString("utf8")).slice(-4096);
    });
    c.once("error", (err) => {
      exited = true;
      settle({ seconds, unreadable: err.message });
    });
    c.once("close", (code) => {
      exited = true;
      settle(code === 0 ? { seconds } : { seconds, unreadable: lastLine(stderr) || `ffmpeg exited with ${code}` });
    });
  };

  /** resolves when ffmpeg takes more input, or is gone */
  const writable = (c: ChildProcessWithoutNullStreams): Promise<void> =>
    new Promise((resolve) => {
      const go = (): void => {
        c.stdin.off("drain", go);
        c.off("close", go);
        resolve();
      };
      c.stdin.once("drain", go);
      c.once("close", go);
    });

  const tap: Transform = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (!child && !exited) start();
      if (child && !exited && !child.stdin.destroyed && !child.stdin.write(chunk)) {
        writable(child).then(() => cb(null, chunk), cb);
        return;
      }
      cb(null, chunk);
    },
    flush(cb) {
      if (!child && !exited) {
        exited = true;
        settle({ seconds: 0, unreadable: "no bytes" });
      } else if (child && !exited) child.stdin.end();
      cb();
    },
  });
  tap.once("close", () => {
    // destroyed before the end (a limit, the client gone, storage failing): stop ffmpeg too
    if (!tap.writableFinished && child && !exited) child.kill("SIGKILL");
  });
  return { stream: tap, verdict };
}

/** Seconds of audio a WAV header declares (data size over byte rate), clipped to the file's size. */
export function wavHeaderSeconds(head: Buffer, fileSize: number): number | undefined {
  if (head.length < 12 || head.toString("latin1", 0, 4) !== "RIFF" || head.toString("latin1", 8, 12) !== "WAVE") return undefined;
  let pos = 12;
  let byteRate: number | undefined;
  while (pos + 8 <= head.length) {
    const id = head.toString("latin1", pos, pos + 4);
    const size = head.readUInt32LE(pos + 4);
    if (id === "fmt " && pos + 16 <= head.length) byteRate = head.readUInt32LE(pos + 16);
    if (id === "data") {
      if (!byteRate) return undefined;
      const available = Math.max(0, fileSize - (pos + 8));
      return Math.min(size, available) / byteRate;
    }
    pos += 8 + size + (size % 2);
  }
  return undefined;
}

/**
 * The duration `head` (a file's first bytes; the whole file is `fileSize` bytes) declares,
 * when its format declares one up front; undefined when only reading the whole file would
 * tell (Ogg, WebM, MP3 without a Xing header, …).
 */
export async function probeHead(head: Buffer, format: AudioFormat, fileSize: number, ffprobe = "ffprobe"): Promise<number | undefined> {
  if (format === "wav") return wavHeaderSeconds(head, fileSize);
  return new Promise((resolve) => {
    const args = ["-v", "error", "-protocol_whitelist", "pipe", "-f", FFMPEG_DEMUXER[format], "-i", "pipe:0", "-show_entries", "format=duration", "-of", "default=nw=1:nk=1"];
    const c = spawn(ffprobe, args, { stdio: ["pipe", "pipe", "ignore"] });
    let out = "";
    c.stdout.on("data", (b: Buffer) => (out += b.toString()));
    c.stdin.on("error", () => undefined);
    c.once("error", () => resolve(undefined));
    c.once("close", (code) => {
      const d = Number(out.trim());
      resolve(code === 0 && out.trim() !== "N/A" && Number.isFinite(d) ? d : undefined);
    });
    c.stdin.end(head);
  });
}
