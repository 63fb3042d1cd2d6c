/**
 * What an uploaded track is, judged from its first bytes (never from its name or the
 * client's Content-Type), and whether its file name is acceptable.
 */
import { Transform, type TransformCallback } from "node:stream";
import { safeFileName } from "../../pipeline/steps/keys.ts";

import { describeFormats, sniffAudio, SNIFF_BYTES, type AudioFormat } from "../../pipeline/audio/sniff.ts";

export { describeFormats, sniffAudio, SNIFF_BYTES, type AudioFormat };

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
