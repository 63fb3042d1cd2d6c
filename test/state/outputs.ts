/**
 * Test data for the state machine: a plausible, contract-valid output for a RunStep's
 * input. Pure steps (merge, finalize) use the real step functions.
 */
import type * as C from "../../pipeline/contracts/index.ts";
import { assembleResult } from "../../pipeline/steps/finalize.ts";
import { mergeJoined } from "../../pipeline/steps/merge_transcripts.ts";
import { splitJoinOutput } from "../../pipeline/join.ts";
import { PreparedTrack } from "../../pipeline/contracts/index.ts";
import { AllTracksFailedError } from "../../pipeline/steps/track-failures.ts";
import type { RunStep } from "../../pipeline/state/index.ts";

export function outputFor(run: RunStep): unknown {
  const input = run.input as Record<string, unknown>;
  switch (run.step) {
    case "prepare_track": {
      const { track, recording_id, namespace } = input as C.PrepareTrackInput;
      return {
        track_index: track.track_index,
        offset_seconds: track.offset_seconds,
        pcm_key: `recordings/${recording_id}/${namespace}/prepared/${track.track_index}.wav`,
        envelope_key: `recordings/${recording_id}/${namespace}/prepared/${track.track_index}.env`,
        frame_seconds: 0.01,
        duration_seconds: 4 + track.track_index,
      } satisfies C.PreparedTrack;
    }
    case "plan_speech": {
      // the real step's handling of failed tracks (they leave the plan), test envelopes otherwise
      const { ok: prepared, failed } = splitJoinOutput(input.prepared as unknown[], PreparedTrack, input.expected_tracks as number[], "prepare_track");
      if (prepared.length === 0) throw new AllTracksFailedError(failed);
      const tracks = prepared.map((p) => ({ ...p, spans: [{ start: p.offset_seconds, end: p.offset_seconds + 1 }] }));
      return {
        duration: Math.max(...prepared.map((p) => p.offset_seconds + p.duration_seconds)),
        tracks,
        track_seconds: prepared.reduce((a, p) => a + p.duration_seconds, 0),
        planned_seconds: tracks.length,
        failed_tracks: failed,
      } satisfies C.SpeechPlan;
    }
    case "transcribe_track": {
      const { track } = input as C.TranscribeTrackInput;
      const i = track.track_index;
      return {
        track_index: i,
        words: [
          { text: `hello${i}`, start: track.offset_seconds + 0.1, end: track.offset_seconds + 0.4, speaker: i },
          { text: `world${i}`, start: track.offset_seconds + 0.5, end: track.offset_seconds + 0.9, speaker: i },
        ],
        engine: "test",
        decoded_seconds: 1,
        track_seconds: track.duration_seconds,
      } satisfies C.TranscribeTrackOutput;
    }
    case "merge_transcripts":
      return mergeJoined(input as C.MergeTranscriptsInput);
    case "suppress_bleed":
      return { words: (input as C.SuppressBleedInput).words, dropped: 0, dropped_by_track: {} } satisfies C.SuppressBleedOutput;
    case "detect_topics": {
      const words = (input as C.DetectTopicsInput).words;
      const last = words[words.length - 1];
      return {
        topics: [{ id: "topic-0", title: "Greetings", summary: "people greet", timestamp: 0, duration: last ? last.end : 0, words }],
      } satisfies C.DetectTopicsOutput;
    }
    case "generate_title":
      return { title: "Greetings all round" } satisfies C.GenerateTitleOutput;
    case "generate_summary":
      return { short_summary: "They greet.", long_summary: "Everyone says hello and world." } satisfies C.GenerateSummaryOutput;
    case "extract_action_items": {
      const first = (input as C.ExtractActionItemsInput).words[0];
      return {
        action_items: first ? [{ text: `Send ${first.text} the notes.`, speaker: first.speaker, start: first.start }] : [],
      } satisfies C.ExtractActionItemsOutput;
    }
    case "mixdown": {
      const { recording_id, namespace } = input as C.MixdownInput;
      return { audio_key: `recordings/${recording_id}/${namespace}/mixdown.mp3`, waveform: [0, 0.5, 1], duration: 6 } satisfies C.MixdownOutput;
    }
    case "finalize":
      return assembleResult(input as C.FinalizeInput);
  }
}

export function pipelineInput(tracks = 2, recording_id = "rec1", namespace = "bullmq"): C.PipelineInput {
  return {
    recording_id,
    language: "en",
    namespace,
    tracks: Array.from({ length: tracks }, (_, i) => ({
      track_index: i,
      participant: `Speaker ${i}`,
      offset_seconds: i * 0.5,
      source_key: `recordings/${recording_id}/tracks/${i}.wav`,
    })),
  };
}
