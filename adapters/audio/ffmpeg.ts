/** AudioTools on ffmpeg: decode anything ffmpeg reads to 16 kHz mono PCM; mix aligned tracks to MP3. */
import { spawn } from "node:child_process";
import { createReadStream, createWriteStream } from "node:fs";
import { open, stat, writeFile } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import type { AudioTools } from "../../pipeline/ports.ts";
import { describeFormats, FFMPEG_DEMUXER, sniffAudio, SNIFF_BYTES, type AudioFormat } from "../../pipeline/audio/sniff.ts";
import { canonicalPcmData, wavHeader } from "../../pipeline/audio/wav.ts";

import { AudioToolError, NotAudioError } from "../../pipeline/audio/errors.ts";

export { AudioToolError, NotAudioError };

function runTool(cmd: string, args: string[], signal?: AbortSignal): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"], signal });
    let stderr = "";
    child.stderr.on("data", (b: Buffer) => {
      stderr = (stderr + b.toString()).slice(-8000);
    });
    child.once("error", (err) => reject(err.name === "AbortError" ? err : new AudioToolError(`${cmd} could not start: ${err.message}`)));
    child.once("close", (code) => resolve({ code: code ?? 1, stderr }));
  });
}

const lastLine = (s: string): string =>
  s
    .trim()
    .split("\n")
    .filter(Boolean)
    .slice(-1)[0] ?? "unknown error";

/** Duration of a 16-bit mono 16 kHz WAV from its size (header 44 bytes, as written with -bitexact). */
async function wavDuration(path: string): Promise<number> {
  const s = await stat(path);
  return Math.max(0, s.size - 44) / 32000;
}

async function canonicalData(inputPath: string, size: number): Promise<{ offset: number; length: number } | null> {
  const fh = await open(inputPath, "r");
  try {
    const head = Buffer.alloc(Math.min(size, 64 * 1024));
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    return canonicalPcmData(head.subarray(0, bytesRead), size);
  } finally {
    await fh.close();
  }
}

/**
 * `header` then `length` bytes of `src` from `offset`, through one reused buffer: a stream
 * pipeline allocates a buffer per 64 kB, and the trail of them a 3-hour track leaves grows
 * the process by tens of MB before the collector catches up.
 */
async function copyRange(src: string, offset: number, length: number, dest: string, header: Buffer, signal?: AbortSignal): Promise<void> {
  const input = await open(src, "r");
  try {
    const output = await open(dest, "w");
    try {
      await output.write(header, 0, header.length, 0);
      const buf = Buffer.alloc(Math.min(1 << 20, Math.max(1, length)));
      for (let done = 0; done < length; ) {
        signal?.throwIfAborted();
        const { bytesRead } = await input.read(buf, 0, Math.min(buf.length, length - done), offset + done);
        if (bytesRead <= 0) throw new AudioToolError(`${src} ended ${length - done} bytes early`);
        await output.write(buf, 0, bytesRead, header.length + done);
        done += bytesRead;
      }
    } finally {
      await output.close();
    }
  } finally {
    await input.close();
  }
}

/**
 * ffmpeg reads only local files (`-protocol_whitelist file`: no http, no concat of other
 * files, no HLS segments), with the demuxer pinned to the format sniffed from the file's
 * first bytes (`-f`): a playlist or an ffconcat file is refused before ffmpeg starts, and
 * ffmpeg never probes its way into a demuxer that follows references.
 */
export function decodeArgs(inputPath: string, outPath: string, format: AudioFormat, maxSeconds?: number): string[] {
  return [
    "-nostdin", "-hide_banner", "-v", "error", "-y",
    "-protocol_whitelist", "file",
    "-f", FFMPEG_DEMUXER[format],
    "-i", inputPath,
    "-vn", "-map_metadata", "-1", "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le", "-bitexact",
    // a lying header cannot make it decode past the limit
    ...(maxSeconds !== undefined ? ["-t", String(maxSeconds)] : []),
    "-f", "wav", outPath,
  ];
}

async function sniffFile(inputPath: string): Promise<AudioFormat | undefined> {
  const fh = await open(inputPath, "r");
  try {
    const head = Buffer.alloc(SNIFF_BYTES);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    return sniffAudio(head.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}

export function createFfmpegAudioTools(opts: { ffmpeg?: string; ffprobe?: string; maxSeconds?: number } = {}): AudioTools {
  const ffmpeg = opts.ffmpeg ?? "ffmpeg";
  const ffprobe = opts.ffprobe ?? "ffprobe";
  // one second past the limit: a track longer than the limit decodes to more than it, so the
  // step can refuse it (track_too_long) without ever decoding the rest of a lying file
  const cap = opts.maxSeconds !== undefined ? opts.maxSeconds + 1 : undefined;
  return {
    async decodeToWav(inputPath, outPath, signal) {
      let size: number;
      try {
        size = (await stat(inputPath)).size;
      } catch {
        throw new NotAudioError(inputPath, "file does not exist or cannot be read");
      }
      if (size === 0) throw new NotAudioError(inputPath, "the file is empty (0 bytes)");
      // already 16 kHz mono 16-bit PCM: copy the samples under a fresh header (what ffmpeg
      // would write, byte for byte) instead of starting ffmpeg (≈0.12 s of CPU per track)
      const data = await canonicalData(inputPath, size);
      if (data) {
        const length = cap !== undefined ? Math.min(data.length, Math.floor(cap * 16000) * 2) : data.length;
        await copyRange(inputPath, data.offset, length, outPath, wavHeader(length, 16000), signal);
        return { duration: length / 32000 };
      }
      const format = await sniffFile(inputPath);
      if (!format) throw new NotAudioError(inputPath, `not a recognized audio format (accepted: ${describeFormats}; judged from its first bytes)`);
      const { code, stderr } = await runTool(ffmpeg, decodeArgs(inputPath, outPath, format, cap), signal);
      if (code !== 0) throw new NotAudioError(inputPath, lastLine(stderr));
      const duration = await wavDuration(outPath);
      // an audio stream with no samples decodes to 0 s: the step's duration limits say what that means
      return { duration };
    },
    async mixdownMp3(inputs, outPath, signal) {
      if (inputs.length === 0) throw new AudioToolError("mixdown needs at least one track");
      const args = ["-nostdin", "-hide_banner", "-v", "error", "-y"];
      // our own WAVs, read as such and from local files only
      for (const i of inputs) args.push("-protocol_whitelist", "file", "-f", "wav", "-i", i.path);
      const chains = inputs.map((i, n) => `[${n}:a]adelay=${Math.round(i.offset_seconds * 1000)}:all=1[a${n}]`);
      const mix = `${inputs.map((_, n) => `[a${n}]`).join("")}amix=inputs=${inputs.length}:normalize=0:duration=longest[out]`;
      args.push("-filter_complex", [...chains, mix].join(";"), "-map", "[out]", "-ac", "1", "-c:a", "libmp3lame", "-b:a", "64k", outPath);
      const { code, stderr } = await runTool(ffmpeg, args, signal);
      if (code !== 0) throw new AudioToolError(`mixdown failed: ${lastLine(stderr)}`);
      return { duration: await probeDuration(outPath, signal, ffprobe) };
    },
  };
}

/** Duration of any media file, via ffprobe. */
export async function probeDuration(path: string, signal?: AbortSignal, ffprobe = "ffprobe"): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(ffprobe, ["-v", "error", "-protocol_whitelist", "file", "-show_entries", "format=duration", "-of", "default=nw=1:nk=1", path], {
      stdio: ["ignore", "pipe", "pipe"],
      signal,
    });
    let out = "";
    child.stdout.on("data", (b: Buffer) => (out += b.toString()));
    child.once("error", reject);
    child.once("close", (code) => {
      const d = Number(out.trim());
      if (code === 0 && Number.isFinite(d)) resolve(d);
      else reject(new AudioToolError(`ffprobe could not read ${path}`));
    });
  });
}
