/**
 * What an uploaded track is, judged from its first bytes (never from its name or the
 * client's Content-Type), and whether its file name is acceptable.
 */
import { Transform, type TransformCallback } from "node:stream";
import { safeFileName } from "../../pipeline/runner/stage.ts";

export type AudioFormat = "wav" | "ogg" | "mp3" | "aac" | "flac" | "webm" | "m4a";

/** Bytes needed to decide (RIFF/WAVE and ftyp brands sit in the first 12). */
export const SNIFF_BYTES = 12;

/** ISO-BMFF brands of audio (and audio-bearing video) files; image brands (heic, avif…) are not. */
const FTYP_BRANDS = new Set(["M4A ", "M4B ", "M4P ", "mp41", "mp42", "mp71", "isom", "iso2", "iso3", "iso4", "iso5", "iso6", "dash", "3gp4", "3gp5", "3gp6", "3g2a", "qt  ", "MSNV", "avc1", "M4V ", "f4a ", "f4v "]);

export function sniffAudio(head: Buffer): AudioFormat | undefined {
  const ascii = (from: number, to: number): string => head.subarray(from, to).toString("latin1");
  if (head.length >= 12 && (ascii(0, 4) === "RIFF" || ascii(0, 4) === "RF64" || ascii(0, 4) === "BW64") && ascii(8, 12) === "WAVE") return "wav";
  if (head.length >= 4 && ascii(0, 4) === "OggS") return "ogg";
  if (head.length >= 4 && ascii(0, 4) === "fLaC") return "flac";
  if (head.length >= 4 && head[0] === 0x1a && head[1] === 0x45 && head[2] === 0xdf && head[3] === 0xa3) return "webm";
  if (head.length >= 12 && ascii(4, 8) === "ftyp" && FTYP_BRANDS.has(ascii(8, 12))) return "m4a";
  if (head.length >= 3 && ascii(0, 3) === "ID3") return "mp3";
  if (head.length >= 3 && head[0] === 0xff && (head[1]! & 0xe0) === 0xe0) {
    const version = (head[1]! >> 3) & 0x3;
    const layer = (head[1]! >> 1) & 0x3;
    const bitrate = head[2]! >> 4;
    const rate = (head[2]! >> 2) & 0x3;
    // ADTS AAC: 12-bit sync, layer 00
    if ((head[1]! & 0xf6) === 0xf0) return "aac";
    if (version !== 1 && layer !== 0 && bitrate !== 0xf && rate !== 0x3) return "mp3";
  }
  return undefined;
}

export const describeFormats = "WAV, Ogg, MP3, AAC (ADTS), FLAC, WebM/Matroska or MP4/M4A";

/**
 * Why a client-supplied file name is refused, or undefined when it is fine. Path-like
 * names (separators, `..`), control characters and absurd lengths are refused outright
 * rather than silently rewritten; the stored key uses a sanitized copy in any case.
 */
export function filenameProblem(name: string | undefined): string | undefined {
  if (name === undefined || name === "") return "has no file name";
  if (Buffer.byteLength(name, "utf8") > 255) return "has a file name longer than 255 bytes";
  if (/[\u0000-\u001f\u007f]/.test(name)) return "has control characters in its file name";
  if (/[\\/]/.test(name)) return `has a path-like file name (${JSON.stringify(name.slice(0, 80))})`;
  if (name === "." || name === ".." || name.startsWith("..")) return `has a file name that is a path component (${JSON.stringify(name.slice(0, 80))})`;
  if (/^[a-zA-Z]:/.test(name)) return `has a drive-qualified file name (${JSON.stringify(name.slice(0, 80))})`;
  return undefined;
}

/** The storage key of an uploaded track. */
export const trackKey = (recordingId: string, index: number, filename: string): string =>
  `recordings/${recordingId}/tracks/${index}-${safeFileName(filename)}`;

export class NotAudioError extends Error {
  override readonly name = "NotAudioError";
}
export class TooLargeError extends Error {
  override readonly name = "TooLargeError";
}
export class EmptyTrackError extends Error {
  override readonly name = "EmptyTrackError";
}

/**
 * A pass-through that holds back the first SNIFF_BYTES until it knows the format (so a
 * non-audio file is refused before a single byte is sent on), and fails as soon as more
 * than `maxBytes` have gone through.
 */
export class TrackGuard extends Transform {
  bytes = 0;
  format: AudioFormat | undefined;
  private head: Buffer[] = [];
  private headBytes = 0;

  constructor(private readonly label: string, private readonly maxBytes: number) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) {
      done(new TooLargeError(`${this.label} is larger than the limit of ${this.maxBytes} bytes`));
      return;
    }
    if (this.format) {
      done(null, chunk);
      return;
    }
    this.head.push(chunk);
    this.headBytes += chunk.length;
    if (this.headBytes < SNIFF_BYTES) {
      done();
      return;
    }
    this.decide(done);
  }

  override _flush(done: TransformCallback): void {
    if (this.format) {
      done();
      return;
    }
    if (this.headBytes === 0) {
      done(new EmptyTrackError(`${this.label} is empty`));
      return;
    }
    this.decide(done);
  }

  private decide(done: TransformCallback): void {
    const all = Buffer.concat(this.head);
    this.head = [];
    this.format = sniffAudio(all);
    if (!this.format) {
      done(new NotAudioError(`${this.label} is not audio (expected ${describeFormats}; judged from its first bytes)`));
      return;
    }
    done(null, all);
  }
}
