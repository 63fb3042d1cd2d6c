/** Minimal 16-bit PCM WAV reading/writing (what our own decoder writes: mono s16le). */
import { open, readFile, writeFile } from "node:fs/promises";

export interface Pcm {
  sampleRate: number;
  samples: Int16Array;
}

export class WavFormatError extends Error {
  override readonly name = "WavFormatError";
}

/** Parse a RIFF/WAVE buffer holding 16-bit PCM; walks chunks (ffmpeg may add LIST). */
export function readWav(buf: Buffer): Pcm {
  if (buf.length < 12 || buf.toString("ascii", 0, 4) !== "RIFF" || buf.toString("ascii", 8, 12) !== "WAVE") {
    throw new WavFormatError("not a RIFF/WAVE file");
  }
  let pos = 12;
  let sampleRate = 0;
  let channels = 0;
  let bits = 0;
  while (pos + 8 <= buf.length) {
    const id = buf.toString("ascii", pos, pos + 4);
    let size = buf.readUInt32LE(pos + 4);
    const body = pos + 8;
    if (id === "fmt ") {
      channels = buf.readUInt16LE(body + 2);
      sampleRate = buf.readUInt32LE(body + 4);
      bits = buf.readUInt16LE(body + 14);
    } else if (id === "data") {
      if (bits !== 16 || channels !== 1) throw new WavFormatError(`expected 16-bit mono PCM, got ${bits}-bit ${channels}-channel`);
      // streaming writers may leave the size at 0xFFFFFFFF or 0: take what is there
      if (size === 0 || body + size > buf.length) size = buf.length - body;
      const n = Math.floor(size / 2);
      // one memcpy instead of a per-sample loop: an hour of audio is 57.6 M samples, and
      // this runs on the event loop (WAV is little-endian, as is every platform we run on)
      const samples = new Int16Array(n);
      new Uint8Array(samples.buffer).set(buf.subarray(body, body + n * 2));
      return { sampleRate, samples };
    }
    pos = body + size + (size % 2);
  }
  throw new WavFormatError("WAV file has no data chunk");
}

/** The 44-byte header of a mono 16-bit PCM WAV with `dataBytes` of samples (sizes capped at 4 GiB). */
export function wavHeader(dataBytes: number, sampleRate: number): Buffer {
  const b = Buffer.alloc(44);
  b.write("RIFF", 0, "ascii");
  b.writeUInt32LE(Math.min(0xffffffff, 36 + dataBytes), 4);
  b.write("WAVE", 8, "ascii");
  b.write("fmt ", 12, "ascii");
  b.writeUInt32LE(16, 16);
  b.writeUInt16LE(1, 20);
  b.writeUInt16LE(1, 22);
  b.writeUInt32LE(sampleRate, 24);
  b.writeUInt32LE(sampleRate * 2, 28);
  b.writeUInt16LE(2, 32);
  b.writeUInt16LE(16, 34);
  b.write("data", 36, "ascii");
  b.writeUInt32LE(Math.min(0xffffffff, dataBytes), 40);
  return b;
}

export function writeWav(pcm: Pcm): Buffer {
  const dataBytes = pcm.samples.length * 2;
  return Buffer.concat([wavHeader(dataBytes, pcm.sampleRate), Buffer.from(pcm.samples.buffer, pcm.samples.byteOffset, dataBytes)]);
}

/** Raw s16le bytes of a sample range (for decoders that take headerless audio). */
export function rawSlice(samples: Int16Array, from: number, to: number): Buffer {
  const a = Math.max(0, Math.min(samples.length, from));
  const b = Math.max(a, Math.min(samples.length, to));
  const view = samples.subarray(a, b);
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength);
}

/**
 * Where the samples of a WAV that is already what the pipeline decodes to (16-bit PCM, mono,
 * 16 kHz) sit in the file, from its first bytes and its size; null for anything else (other
 * rates, channels or encodings, WAVE_FORMAT_EXTENSIBLE, a data chunk whose size is unset or
 * runs past the end of the file, chunks beyond `head`), which then goes through ffmpeg.
 */
export function canonicalPcmData(head: Buffer, fileSize: number): { offset: number; length: number } | null {
  if (head.length < 12 || head.toString("ascii", 0, 4) !== "RIFF" || head.toString("ascii", 8, 12) !== "WAVE") return null;
  let pos = 12;
  let fmtOk = false;
  while (pos + 8 <= head.length) {
    const id = head.toString("ascii", pos, pos + 4);
    const size = head.readUInt32LE(pos + 4);
    const body = pos + 8;
    if (id === "fmt ") {
      if (size < 16 || body + 16 > head.length) return null;
      const format = head.readUInt16LE(body);
      const channels = head.readUInt16LE(body + 2);
      const rate = head.readUInt32LE(body + 4);
      const blockAlign = head.readUInt16LE(body + 12);
      const bits = head.readUInt16LE(body + 14);
      fmtOk = format === 1 && channels === 1 && rate === 16000 && blockAlign === 2 && bits === 16;
      if (!fmtOk) return null;
    } else if (id === "data") {
      if (!fmtOk || size === 0 || size === 0xffffffff || size % 2 !== 0 || body + size > fileSize) return null;
      return { offset: body, length: size };
    }
    pos = body + size + (size % 2);
  }
  return null;
}

/**
 * The samples of a 16 kHz mono 16-bit WAV file, read in chunks of about `chunkBytes`: a
 * step computing over a long track holds one chunk, not the track. `totalSamples` is known
 * before the first chunk. A file that is not in that canonical shape is read whole (our
 * decoder never writes one). A chunk is valid until the next one is asked for (they share one
 * buffer): use it, do not keep it.
 */
export async function openPcm(file: string, chunkBytes = 1024 * 1024): Promise<{ totalSamples: number; sampleRate: number; chunks(): AsyncGenerator<Int16Array> }> {
  const fh = await open(file, "r");
  const size = (await fh.stat()).size;
  const head = Buffer.alloc(Math.min(size, 64 * 1024));
  await fh.read(head, 0, head.length, 0);
  const data = canonicalPcmData(head, size);
  if (!data) {
    await fh.close();
    const pcm = readWav(await readFile(file));
    return {
      totalSamples: pcm.samples.length,
      sampleRate: pcm.sampleRate,
      async *chunks() {
        yield pcm.samples;
      },
    };
  }
  const step = Math.max(2, chunkBytes - (chunkBytes % 2));
  return {
    totalSamples: data.length / 2,
    sampleRate: 16000,
    async *chunks() {
      // one buffer for every chunk: a read per chunk allocates nothing, so a long track leaves
      // no trail of garbage buffers for the collector to catch up with
      const buf = Buffer.alloc(Math.min(step, data.length));
      try {
        for (let at = 0; at < data.length; at += step) {
          const { bytesRead } = await fh.read(buf, 0, Math.min(step, data.length - at), data.offset + at);
          if (bytesRead <= 0) break;
          yield new Int16Array(buf.buffer, buf.byteOffset, bytesRead >> 1);
        }
      } finally {
        await fh.close();
      }
    },
  };
}

/** Random access to the samples of a WAV file: a range is read by position when asked for. */
export interface PcmReader {
  readonly totalSamples: number;
  readonly sampleRate: number;
  /** samples [from, to) (clamped to the file); a fresh array the caller owns */
  read(from: number, to: number): Promise<Int16Array>;
  /**
   * samples [from, to) as raw s16le bytes into the file `dest`, through a reused buffer:
   * staging many segments allocates nothing per segment
   */
  copyTo(dest: string, from: number, to: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * A reader over a WAV file that holds none of its samples: each read() is one positioned
 * read of the file (a transcription reads its planned spans only, whatever the track's
 * length). A file that is not 16 kHz mono 16-bit PCM with a known data size is read whole
 * (our decoder never writes one).
 */
const COPY_BYTES = 256 * 1024;

export async function openPcmReader(file: string): Promise<PcmReader> {
  const fh = await open(file, "r");
  let data: { offset: number; length: number } | null;
  try {
    const size = (await fh.stat()).size;
    const head = Buffer.alloc(Math.min(size, 64 * 1024));
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    data = canonicalPcmData(head.subarray(0, bytesRead), size);
  } catch (err) {
    await fh.close();
    throw err;
  }
  if (!data) {
    await fh.close();
    const pcm = readWav(await readFile(file));
    const clamp = (x: number): number => Math.max(0, Math.min(pcm.samples.length, Math.round(x)));
    return {
      totalSamples: pcm.samples.length,
      sampleRate: pcm.sampleRate,
      read: async (from, to) => pcm.samples.slice(clamp(from), Math.max(clamp(from), clamp(to))),
      copyTo: async (dest, from, to) => {
        const view = pcm.samples.subarray(clamp(from), Math.max(clamp(from), clamp(to)));
        await writeFile(dest, new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
      },
      close: async () => {},
    };
  }
  const total = data.length / 2;
  const offset = data.offset;
  const clamp = (x: number): number => Math.max(0, Math.min(total, Math.round(x)));
  let closed = false;
  /** copy buffers not in use (one per copy running at once) */
  const spare: Buffer[] = [];
  return {
    totalSamples: total,
    sampleRate: 16000,
    async read(from, to) {
      const a = clamp(from);
      const b = Math.max(a, clamp(to));
      const out = new Int16Array(b - a);
      const bytes = new Uint8Array(out.buffer);
      let got = 0;
      while (got < bytes.length) {
        const { bytesRead } = await fh.read(bytes, got, bytes.length - got, offset + a * 2 + got);
        if (bytesRead <= 0) break;
        got += bytesRead;
      }
      return got === bytes.length ? out : out.subarray(0, got >> 1);
    },
    async copyTo(dest, from, to) {
      const a = clamp(from);
      const b = Math.max(a, clamp(to));
      const buf = spare.pop() ?? Buffer.alloc(COPY_BYTES);
      const out = await open(dest, "w");
      try {
        for (let at = a * 2; at < b * 2; ) {
          const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, b * 2 - at), offset + at);
          if (bytesRead <= 0) break;
          await out.write(buf, 0, bytesRead);
          at += bytesRead;
        }
      } finally {
        spare.push(buf);
        await out.close();
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await fh.close();
    },
  };
}
