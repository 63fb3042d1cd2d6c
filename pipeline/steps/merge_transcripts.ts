/**
 * merge_transcripts: per-track transcripts (a JOIN dict keyed by task reference name, or
 * an array) → one word list on the global timeline, ordered by start time, ties by track
 * index then by end. A track that failed (here or in the plan) is listed as failed in
 * `track_status`; a track that is simply missing is an error that names it (a fork branch
 * with an empty output vanishes from the JOIN); no track left fails the meeting.
 */
import { TranscribeTrackOutput, TrackTranscript, type MergeTranscriptsInput, type MergeTranscriptsOutput, type Word } from "../contracts/index.ts";
import { splitJoinOutput } from "../join.ts";
import type { StepDeps } from "./deps.ts";
import { AllTracksFailedError } from "./track-failures.ts";

export function mergeWordLists(transcripts: readonly TrackTranscript[]): Word[] {
  const words: Word[] = [];
  for (const t of transcripts) for (const w of t.words) words.push({ ...w, speaker: t.track_index });
  return words.sort((a, b) => a.start - b.start || a.speaker - b.speaker || a.end - b.end);
}

export async function mergeTranscripts(input: MergeTranscriptsInput, deps?: StepDeps): Promise<MergeTranscriptsOutput> {
  void deps;
  return mergeJoined(input);
}

/** The step's work, synchronous (it reads nothing): the joined transcripts and failures → one word list and every track's outcome. */
export function mergeJoined(input: MergeTranscriptsInput): MergeTranscriptsOutput {
  // Accept both the full transcribe output and a bare TrackTranscript.
  const element = TranscribeTrackOutput.or(TrackTranscript);
  // tracks the plan gave up on have no transcription task; the others came back as
  // transcripts or as failures
  const planFailed = input.failed_tracks ?? [];
  const skipped = new Set(planFailed.map((f) => f.track_index));
  const { ok: tracks, failed } = splitJoinOutput(input.transcripts, element, input.expected_tracks.filter((i) => !skipped.has(i)), "transcribe_track");
  const allFailed = [...planFailed, ...failed].sort((a, b) => a.track_index - b.track_index);
  if (tracks.length === 0) throw new AllTracksFailedError(allFailed);
  const failedBy = new Map(allFailed.map((f) => [f.track_index, f.failed]));
  const track_status = [...input.expected_tracks]
    .sort((a, b) => a - b)
    .map((i) => {
      const why = failedBy.get(i);
      return why ? { track_index: i, status: "failed" as const, failed: why } : { track_index: i, status: "ok" as const };
    });
  return { words: mergeWordLists(tracks), track_count: tracks.length, track_status };
}
