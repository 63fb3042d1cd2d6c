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

/**
 * A track breaks a duration limit (MAX_TRACK_SECONDS, MAX_RECORDING_SECONDS, MIN_TRACK_SECONDS).
 * The same input breaks it every time: never retried. Each limit is its own class, named
 * for the code the API answers with at upload, so a key-referenced track that only a worker
 * could measure fails with the same code (the name survives a child process's boundary).
 */
export abstract class AudioLimitError extends Error {
  readonly retryable = false;
  abstract readonly code: "track_too_long" | "recording_too_long" | "no_audio";
}
export class TrackTooLongError extends AudioLimitError {
  override readonly name = "TrackTooLongError";
  readonly code = "track_too_long";
}
export class RecordingTooLongError extends AudioLimitError {
  override readonly name = "RecordingTooLongError";
  readonly code = "recording_too_long";
}
export class NoAudioError extends AudioLimitError {
  override readonly name = "NoAudioError";
  readonly code = "no_audio";
}

/** The checks of a track's measured duration, shared by the API's upload probe and the workers. */
export interface DurationLimits {
  maxTrackSeconds: number;
  maxRecordingSeconds: number;
  minTrackSeconds: number;
}

/** The limit `seconds` of audio starting at `offset` breaks, if any. `label` names the track. */
export function durationProblem(label: string, seconds: number, offset: number, limits: DurationLimits): AudioLimitError | undefined {
  const s = Math.round(seconds * 1000) / 1000;
  if (seconds < limits.minTrackSeconds || seconds <= 0) {
    return new NoAudioError(`${label} has ${s} s of audio; at least ${limits.minTrackSeconds} s is needed (MIN_TRACK_SECONDS)`);
  }
  if (seconds > limits.maxTrackSeconds) {
    return new TrackTooLongError(`${label} is ${s} s long; the limit is ${limits.maxTrackSeconds} s (MAX_TRACK_SECONDS)`);
  }
  if (offset + seconds > limits.maxRecordingSeconds) {
    return new RecordingTooLongError(
      `${label} ends at ${Math.round((offset + seconds) * 1000) / 1000} s (offset ${offset} s + ${s} s); a recording's timeline may be at most ${limits.maxRecordingSeconds} s (MAX_RECORDING_SECONDS)`,
    );
  }
  return undefined;
}
