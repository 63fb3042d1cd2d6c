/**
 * Input and output of every pipeline step. Adapters (in-process runner, Conductor workers,
 * BullMQ workers) parse inputs with these on the way in and validate outputs on the way out.
 * Audio never travels in a payload: only storage keys do.
 */
import { z } from "zod/v4";
import { ActionItem, Language, ParticipantName, Result, Span, Topic, TrackFailure, TrackTranscript, Word } from "./domain.ts";
import type { StepName } from "./progress.ts";

const seconds = z.number().finite().nonnegative();
const TrackIndex = z.number().int().nonnegative();
export const StorageKey = z
  .string()
  .min(1)
  .max(1024)
  .refine((k) => !k.startsWith("/") && !k.split("/").includes(".."), "storage key must be relative and contain no '..'");
/** Per-engine storage/result namespace: `inprocess`, `conductor`, `bullmq`, … */
export const Namespace = z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/, "namespace must be a short lowercase name");
/**
 * A recording's id as every step receives it: it becomes part of storage keys and rows, so
 * anything but letters, digits, '_' and '-' (a '../x' in a workflow started by hand) is
 * refused before a step touches anything.
 */
export const RecordingId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "recording_id must be 1-64 letters, digits, '_' or '-'");

/** Who produced a step output (an old build still polling must be traceable to its results). */
export const WorkerStamp = z.object({ worker_id: z.string().min(1), build: z.string().min(1) });
export type WorkerStamp = z.infer<typeof WorkerStamp>;

export const TrackSpec = z.object({
  track_index: TrackIndex,
  participant: ParticipantName,
  offset_seconds: seconds,
  source_key: StorageKey,
});
export type TrackSpec = z.infer<typeof TrackSpec>;

/** Input of the whole pipeline (= the Conductor workflow input). */
export const PipelineInput = z
  .object({
    recording_id: RecordingId,
    language: Language,
    namespace: Namespace,
    tracks: z.array(TrackSpec).min(1, "no tracks"),
  })
  .superRefine((v, ctx) => {
    const idx = v.tracks.map((t) => t.track_index).sort((a, b) => a - b);
    idx.forEach((n, i) => {
      if (n !== i) ctx.addIssue({ code: "custom", path: ["tracks"], message: `track indexes must be 0..${idx.length - 1} without gaps` });
    });
  });
export type PipelineInput = z.infer<typeof PipelineInput>;

// ---- prepare_track ---------------------------------------------------------------
export const PrepareTrackInput = z.object({
  recording_id: RecordingId,
  namespace: Namespace,
  track: TrackSpec,
});
export type PrepareTrackInput = z.infer<typeof PrepareTrackInput>;

export const PreparedTrack = z.object({
  track_index: TrackIndex,
  offset_seconds: seconds,
  /** 16 kHz mono s16le WAV of the track's own audio (not padded) */
  pcm_key: StorageKey,
  /** Float32 little-endian frame energies in dBFS, one per `frame_seconds`, track-local time */
  envelope_key: StorageKey,
  frame_seconds: z.number().positive(),
  duration_seconds: seconds,
});
export type PreparedTrack = z.infer<typeof PreparedTrack>;

/**
 * What a per-track task leaves when it gave up on its track (its retries spent, or an error
 * no retry can fix): the meeting goes on without the track. Every engine hands it on in the
 * task's place (the state machine as the task's output, Conductor as the output of a fork
 * task marked optional, which the server completes "with errors"), and the steps after the
 * fork carry it to the Result's `tracks`.
 */
export const FailedTrack = z.object({ track_index: TrackIndex, failed: TrackFailure });
export type FailedTrack = z.infer<typeof FailedTrack>;

/**
 * A JOIN output (dict keyed by task reference name) or a plain array. Elements are
 * validated by the consumer's element schema after normalization (see pipeline/join.ts).
 */
export const JoinOutput = z.union([z.record(z.string(), z.unknown()), z.array(z.unknown())]);

// ---- plan_speech -------------------------------------------------------------------
export const PlanSpeechInput = z.object({
  recording_id: RecordingId,
  namespace: Namespace,
  language: Language,
  expected_tracks: z.array(TrackIndex).min(1),
  prepared: JoinOutput,
  /** the pipeline input's tracks: not used by the plan, carried for the transcribe_track fork it builds (participants' names) */
  tracks: z.array(z.unknown()).max(256).optional(),
});
export type PlanSpeechInput = z.infer<typeof PlanSpeechInput>;

export const TrackSpeechPlan = z.object({
  track_index: TrackIndex,
  offset_seconds: seconds,
  pcm_key: StorageKey,
  envelope_key: StorageKey,
  frame_seconds: z.number().positive(),
  duration_seconds: seconds,
  /** spans (global timeline) where this track carries its own speech */
  spans: z.array(Span),
});
export type TrackSpeechPlan = z.infer<typeof TrackSpeechPlan>;

export const SpeechPlan = z.object({
  duration: seconds,
  tracks: z.array(TrackSpeechPlan).min(1),
  track_seconds: seconds,
  planned_seconds: seconds,
  /** tracks that could not be prepared: not in `tracks`, nothing after this step works on them */
  failed_tracks: z.array(FailedTrack).optional(),
});
export type SpeechPlan = z.infer<typeof SpeechPlan>;

// ---- transcribe_track --------------------------------------------------------------
export const TranscribeTrackInput = z.object({
  recording_id: RecordingId,
  namespace: Namespace,
  language: Language,
  track: TrackSpeechPlan,
  /**
   * how many tracks of this meeting have speech to decode: the transcriptions a shared
   * recognizer can expect to arrive together (it orders their segments as one batch)
   */
  speech_tracks: z.number().int().nonnegative().optional(),
  /** the meeting's tracks (the pipeline input's), for their participants' names: a speech server's prompt */
  participants: z.array(TrackSpec.pick({ track_index: true, participant: true })).max(256).optional(),
});
export type TranscribeTrackInput = z.infer<typeof TranscribeTrackInput>;

export const TranscribeTrackOutput = TrackTranscript.extend({
  engine: z.string().min(1),
  decoded_seconds: seconds,
  track_seconds: seconds,
});
export type TranscribeTrackOutput = z.infer<typeof TranscribeTrackOutput>;

// ---- merge_transcripts -------------------------------------------------------------
/** Where an output's words and topics go when an engine keeps them out of its payloads (Conductor: workers/conductor/carried.ts). */
const RecordingScope = {
  recording_id: RecordingId.optional(),
  namespace: Namespace.optional(),
};

export const MergeTranscriptsInput = z.object({
  expected_tracks: z.array(TrackIndex).min(1),
  transcripts: JoinOutput,
  /** tracks the plan already gave up on (they have no transcript to wait for) */
  failed_tracks: z.array(FailedTrack).max(256).optional(),
  ...RecordingScope,
});
export type MergeTranscriptsInput = z.infer<typeof MergeTranscriptsInput>;

/** A track's outcome so far: its words are in, or it failed (and why). */
export const TrackOutcome = z.object({
  track_index: TrackIndex,
  status: z.enum(["ok", "failed"]),
  failed: TrackFailure.optional(),
});
export type TrackOutcome = z.infer<typeof TrackOutcome>;

export const MergeTranscriptsOutput = z.object({
  words: z.array(Word),
  /** tracks whose words are in `words` */
  track_count: z.number().int().positive(),
  /** every expected track, ordered by index */
  track_status: z.array(TrackOutcome).optional(),
});
export type MergeTranscriptsOutput = z.infer<typeof MergeTranscriptsOutput>;

// ---- suppress_bleed ----------------------------------------------------------------
export const SuppressBleedInput = z.object({
  words: z.array(Word),
  tracks: z.array(TrackSpeechPlan).min(1),
  ...RecordingScope,
});
export type SuppressBleedInput = z.infer<typeof SuppressBleedInput>;
export const SuppressBleedOutput = z.object({
  words: z.array(Word),
  dropped: z.number().int().nonnegative(),
  dropped_by_track: z.record(z.string(), z.number().int().nonnegative()),
});
export type SuppressBleedOutput = z.infer<typeof SuppressBleedOutput>;

// ---- detect_topics / generate_title / generate_summary -----------------------------
export const DetectTopicsInput = z.object({ language: Language, words: z.array(Word), ...RecordingScope });
export type DetectTopicsInput = z.infer<typeof DetectTopicsInput>;
export const DetectTopicsOutput = z.object({ topics: z.array(Topic) });
export type DetectTopicsOutput = z.infer<typeof DetectTopicsOutput>;

export const GenerateTitleInput = z.object({ language: Language, topics: z.array(Topic) });
export type GenerateTitleInput = z.infer<typeof GenerateTitleInput>;
export const GenerateTitleOutput = z.object({ title: z.string().min(1) });
export type GenerateTitleOutput = z.infer<typeof GenerateTitleOutput>;

export const GenerateSummaryInput = z.object({ language: Language, topics: z.array(Topic) });
export type GenerateSummaryInput = z.infer<typeof GenerateSummaryInput>;
export const GenerateSummaryOutput = z.object({ short_summary: z.string(), long_summary: z.string() });
export type GenerateSummaryOutput = z.infer<typeof GenerateSummaryOutput>;

// ---- extract_action_items ---------------------------------------------------------
export const ExtractActionItemsInput = z.object({ language: Language, words: z.array(Word) });
export type ExtractActionItemsInput = z.infer<typeof ExtractActionItemsInput>;
export const ExtractActionItemsOutput = z.object({ action_items: z.array(ActionItem) });
export type ExtractActionItemsOutput = z.infer<typeof ExtractActionItemsOutput>;

// ---- mixdown -----------------------------------------------------------------------
export const MixdownInput = z.object({
  recording_id: RecordingId,
  namespace: Namespace,
  tracks: z.array(TrackSpeechPlan).min(1),
  peaks: z.number().int().min(16).max(10000).default(800),
});
export type MixdownInput = z.infer<typeof MixdownInput>;
export const MixdownOutput = z.object({
  audio_key: StorageKey,
  waveform: z.array(z.number().min(0).max(1)),
  duration: seconds,
});
export type MixdownOutput = z.infer<typeof MixdownOutput>;

// ---- finalize ----------------------------------------------------------------------
export const FinalizeInput = z.object({
  recording_id: RecordingId,
  namespace: Namespace,
  tracks: z.array(TrackSpec).min(1),
  duration: seconds,
  words: z.array(Word),
  topics: z.array(Topic),
  title: z.string().min(1),
  short_summary: z.string(),
  long_summary: z.string(),
  action_items: z.array(ActionItem),
  audio_key: StorageKey.optional(),
  waveform: z.array(z.number()).optional(),
  /** every track's outcome (merge_transcripts); absent: every track ok */
  track_status: z.array(TrackOutcome).max(256).optional(),
});
export type FinalizeInput = z.infer<typeof FinalizeInput>;

export { TrackTranscript };

/**
 * Input and output contract of every step, by step name (the step table, the state
 * machine and the graph all read them from here). A step without an entry is a compile error.
 */
export const stepContracts = {
  prepare_track: { input: PrepareTrackInput, output: PreparedTrack },
  plan_speech: { input: PlanSpeechInput, output: SpeechPlan },
  transcribe_track: { input: TranscribeTrackInput, output: TranscribeTrackOutput },
  merge_transcripts: { input: MergeTranscriptsInput, output: MergeTranscriptsOutput },
  suppress_bleed: { input: SuppressBleedInput, output: SuppressBleedOutput },
  detect_topics: { input: DetectTopicsInput, output: DetectTopicsOutput },
  generate_title: { input: GenerateTitleInput, output: GenerateTitleOutput },
  generate_summary: { input: GenerateSummaryInput, output: GenerateSummaryOutput },
  extract_action_items: { input: ExtractActionItemsInput, output: ExtractActionItemsOutput },
  mixdown: { input: MixdownInput, output: MixdownOutput },
  finalize: { input: FinalizeInput, output: Result },
} as const satisfies { readonly [K in StepName]: { input: z.ZodType; output: z.ZodType } };
export type StepContracts = typeof stepContracts;
export type StepInputOf<K extends StepName> = z.input<StepContracts[K]["input"]>;
export type StepOutputOf<K extends StepName> = z.infer<StepContracts[K]["output"]>;
