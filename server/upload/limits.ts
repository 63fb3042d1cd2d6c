/**
 * What one request may cause, checked before any heavy work: each refusal is a 4xx with its
 * own code naming the limit and the value.
 */
import { ApiError } from "../errors.ts";

export interface UploadLimits {
  maxTracks: number;
  maxTrackBytes: number;
  /** all tracks of one request together */
  maxUploadBytes: number;
  maxTrackSeconds: number;
  /** the timeline, offsets included */
  maxRecordingSeconds: number;
  /** a track with less audio is refused (no_audio) */
  minTrackSeconds: number;
}

/** A track that starts after the timeline's end can only make a long, silent mixdown. */
export function checkOffsets(tracks: readonly { participant: string; offset_seconds: number }[], limits: Pick<UploadLimits, "maxRecordingSeconds">): void {
  for (const [i, t] of tracks.entries()) {
    if (t.offset_seconds >= limits.maxRecordingSeconds) {
      throw new ApiError(
        422,
        "recording_too_long",
        `track ${i} (${t.participant}) starts at ${t.offset_seconds} s; a recording's timeline may be at most ${limits.maxRecordingSeconds} s (MAX_RECORDING_SECONDS)`,
      );
    }
  }
}

export const uploadTooLarge = (limit: number): ApiError =>
  new ApiError(413, "upload_too_large", `the upload's tracks together are larger than ${limit} bytes (MAX_UPLOAD_BYTES)`);
