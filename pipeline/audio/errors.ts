/** Errors of the audio tools port (pipeline/ports.ts AudioTools), whatever implements it. */

/** The input is not audio a decoder can read: the same every time, so never retried. */
export class NotAudioError extends Error {
  override readonly name = "NotAudioError";
  readonly retryable = false;
  constructor(readonly file: string, readonly reason: string) {
    super(`${file} is not readable audio: ${reason}`);
  }
}

/** The audio tool itself failed (could not start, could not encode). */
export class AudioToolError extends Error {
  override readonly name = "AudioToolError";
}
