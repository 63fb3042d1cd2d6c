/**
 * merge_transcripts: per-track transcripts (a JOIN dict keyed by task reference name, or
 * an array) → one word list on the global timeline, ordered by start time, ties by track
 * index then by end. Missing tracks are an error that names them (a fork branch with an empty output vanishes from the JOIN).
 */
import { TranscribeTrackOutput, TrackTranscript, type MergeTranscriptsInput, type MergeTranscriptsOutput, type Word } from "../contracts/index.ts";
import { normalizeJoinOutput } from "../join.ts";
import type { StepDeps } from "./deps.ts";

export function mergeWordLists(transcripts: readonly TrackTranscript[]): Word[] {
  const words: Word[] = [];
  for (const t of transcripts) for (const w of t.words) words.push({ ...w, speaker: t.track_index });
  return words.sort((a, b) => a.start - b.start || a.speaker - b.speaker || a.end - b.end);
}

export async function mergeTranscripts(input: MergeTranscriptsInput, deps?: StepDeps): Promise<MergeTranscriptsOutput> {
  void deps;
  // Accept both the full transcribe output and a bare TrackTranscript.
  const element = TranscribeTrackOutput.or(TrackTranscript);
  const tracks = normalizeJoinOutput(input.transcripts, element, input.expected_tracks);
  return { words: mergeWordLists(tracks), track_count: tracks.length };
}
