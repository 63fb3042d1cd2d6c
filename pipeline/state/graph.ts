/**
 * The pipeline as data: which tasks exist for an input, what each waits for, and how its
 * input is built from the outputs it waited for. Same shape and order as the Conductor
 * workflow: prepare_track per track → plan_speech → transcribe_track per track →
 * merge_transcripts → suppress_bleed → detect_topics → (generate_title ∥ generate_summary
 * ∥ mixdown) → finalize. Joins receive arrays ordered by track index.
 */
import type { z } from "zod/v4";
import * as C from "../contracts/index.ts";
import { speechTracks } from "../steps/transcribe_track.ts";

/** Output contract of every step (the same schemas the step table validates with). */
export const stepOutputSchemas: { [K in C.StepName]: z.ZodType } = {
  prepare_track: C.PreparedTrack,
  plan_speech: C.SpeechPlan,
  transcribe_track: C.TranscribeTrackOutput,
  merge_transcripts: C.MergeTranscriptsOutput,
  suppress_bleed: C.SuppressBleedOutput,
  detect_topics: C.DetectTopicsOutput,
  generate_title: C.GenerateTitleOutput,
  generate_summary: C.GenerateSummaryOutput,
  mixdown: C.MixdownOutput,
  finalize: C.Result,
};

/** Steps that run once per track. */
export const perTrackSteps: ReadonlySet<C.StepName> = new Set(["prepare_track", "transcribe_track"]);

export function taskKey(step: C.StepName, trackIndex?: number | null): string {
  return trackIndex === undefined || trackIndex === null ? step : `${step}[${trackIndex}]`;
}

/**
 * Deterministic BullMQ job id `recording/namespace/step/track/attempt` (`-` for steps not
 * per track). BullMQ refuses ':' in custom ids, hence '/', and the recording id is
 * URI-encoded so it cannot add separators of its own.
 */
export function jobId(recordingId: string, namespace: string, step: C.StepName, trackIndex: number | null | undefined, attempt: number): string {
  const track = trackIndex === undefined || trackIndex === null ? "-" : String(trackIndex);
  return [encodeURIComponent(recordingId), namespace, step, track, String(attempt)].join("/");
}

/** Reads the (already validated) output of a finished task. */
export type OutputOf = <T>(key: string) => T;

export interface TaskSpec {
  key: string;
  step: C.StepName;
  track_index: number | null;
  deps: string[];
  buildInput(out: OutputOf): unknown;
  /** extra checks of an output beyond its schema; a message means the output is unusable */
  checkOutput?(output: unknown): string | null;
}

const byTrack = <T extends { track_index: number }>(items: T[]): T[] => [...items].sort((a, b) => a.track_index - b.track_index);

/** Every task of a run, in scheduling order (instructions come out in this order). */
export function taskSpecs(input: C.PipelineInput): TaskSpec[] {
  const tracks = byTrack(input.tracks);
  const indexes = tracks.map((t) => t.track_index);
  const { recording_id, namespace, language } = input;
  const prepareKeys = indexes.map((i) => taskKey("prepare_track", i));
  const transcribeKeys = indexes.map((i) => taskKey("transcribe_track", i));
  const specs: TaskSpec[] = [];

  for (const track of tracks) {
    specs.push({
      key: taskKey("prepare_track", track.track_index),
      step: "prepare_track",
      track_index: track.track_index,
      deps: [],
      buildInput: () => ({ recording_id, namespace, track }),
      checkOutput: (o) => sameTrack(o, track.track_index),
    });
  }
  specs.push({
    key: "plan_speech",
    step: "plan_speech",
    track_index: null,
    deps: prepareKeys,
    buildInput: (out) => ({
      recording_id,
      namespace,
      language,
      expected_tracks: indexes,
      prepared: prepareKeys.map((k) => out<C.PreparedTrack>(k)),
    }),
    checkOutput: (o) => {
      const got = (o as C.SpeechPlan).tracks.map((t) => t.track_index).sort((a, b) => a - b);
      return got.join(",") === indexes.join(",") ? null : `plan covers tracks [${got.join(", ")}], expected [${indexes.join(", ")}]`;
    },
  });
  const planTrack = (out: OutputOf, i: number): C.TrackSpeechPlan =>
    out<C.SpeechPlan>("plan_speech").tracks.find((t) => t.track_index === i)!;
  for (const i of indexes) {
    specs.push({
      key: taskKey("transcribe_track", i),
      step: "transcribe_track",
      track_index: i,
      deps: ["plan_speech"],
      buildInput: (out) => ({ recording_id, namespace, language, track: planTrack(out, i), speech_tracks: speechTracks(out<C.SpeechPlan>("plan_speech")) }),
      checkOutput: (o) => sameTrack(o, i),
    });
  }
  specs.push({
    key: "merge_transcripts",
    step: "merge_transcripts",
    track_index: null,
    deps: transcribeKeys,
    buildInput: (out) => ({ expected_tracks: indexes, transcripts: transcribeKeys.map((k) => out<C.TranscribeTrackOutput>(k)) }),
  });
  const planTracks = (out: OutputOf): C.TrackSpeechPlan[] => byTrack(out<C.SpeechPlan>("plan_speech").tracks);
  specs.push({
    key: "suppress_bleed",
    step: "suppress_bleed",
    track_index: null,
    deps: ["merge_transcripts", "plan_speech"],
    buildInput: (out) => ({ words: out<C.MergeTranscriptsOutput>("merge_transcripts").words, tracks: planTracks(out) }),
  });
  specs.push({
    key: "detect_topics",
    step: "detect_topics",
    track_index: null,
    deps: ["suppress_bleed"],
    buildInput: (out) => ({ language, words: out<C.SuppressBleedOutput>("suppress_bleed").words }),
  });
  const topics = (out: OutputOf): C.Topic[] => out<C.DetectTopicsOutput>("detect_topics").topics;
  specs.push({
    key: "generate_title",
    step: "generate_title",
    track_index: null,
    deps: ["detect_topics"],
    buildInput: (out) => ({ language, topics: topics(out) }),
  });
  specs.push({
    key: "generate_summary",
    step: "generate_summary",
    track_index: null,
    deps: ["detect_topics"],
    buildInput: (out) => ({ language, topics: topics(out) }),
  });
  specs.push({
    key: "mixdown",
    step: "mixdown",
    track_index: null,
    deps: ["detect_topics", "plan_speech"],
    buildInput: (out) => ({ recording_id, namespace, tracks: planTracks(out) }),
  });
  specs.push({
    key: "finalize",
    step: "finalize",
    track_index: null,
    deps: ["generate_title", "generate_summary", "mixdown", "detect_topics", "suppress_bleed", "plan_speech"],
    buildInput: (out) => {
      const summary = out<C.GenerateSummaryOutput>("generate_summary");
      const mix = out<C.MixdownOutput>("mixdown");
      return {
        recording_id,
        namespace,
        tracks,
        duration: out<C.SpeechPlan>("plan_speech").duration,
        words: out<C.SuppressBleedOutput>("suppress_bleed").words,
        topics: topics(out),
        title: out<C.GenerateTitleOutput>("generate_title").title,
        short_summary: summary.short_summary,
        long_summary: summary.long_summary,
        audio_key: mix.audio_key,
        waveform: mix.waveform,
      };
    },
  });
  return specs;
}

function sameTrack(output: unknown, expected: number): string | null {
  const got = (output as { track_index: number }).track_index;
  return got === expected ? null : `output is for track ${got}, expected track ${expected}`;
}
