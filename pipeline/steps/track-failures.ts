/**
 * A meeting goes on without a track that could not be decoded or transcribed; it fails only
 * when no track is left. Raised by the first step after each per-track fork (plan_speech
 * after prepare_track, merge_transcripts after transcribe_track), never retried: the
 * tracks' own retries are spent by then.
 */
import type { FailedTrack } from "../contracts/index.ts";
import { PublicError } from "../failures.ts";

export class AllTracksFailedError extends PublicError {
  override readonly name = "AllTracksFailedError";
  constructor(failed: readonly FailedTrack[]) {
    const why = failed
      .slice(0, 4)
      .map((f) => `track ${f.track_index}: ${f.failed.message} (${f.failed.code})`)
      .join("; ");
    super("all_tracks_failed", `no track could be processed: ${why}${failed.length > 4 ? `; and ${failed.length - 4} more` : ""}`, { retryable: false });
  }
}
