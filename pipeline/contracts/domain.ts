/**
 * Domain contracts: the single source of truth for every shape that crosses a process,
 * queue or JSON boundary. Times are seconds on the recording's global timeline; a
 * speaker is the index of the track that carried the voice.
 */
import { z } from "zod/v4";

const seconds = z.number().finite().nonnegative();

export const Word = z.object({
  text: z.string().min(1),
  start: seconds,
  end: seconds,
  speaker: z.number().int().nonnegative(),
  confidence: z.number().min(0).max(1).optional(),
  /**
   * "interpolated": the speech server gave this word no time of its own (it answered with
   * segments only), so its start and end were spread over the segment by character length.
   * Such times can be off by a word or so: the bleed rule measures the word over a window
   * widened by INTERPOLATED_TIME_SLACK_SECONDS on each side, and the shadow comparison
   * accepts a time difference up to that slack for it. Absent: the engine's own time.
   */
  timing: z.literal("interpolated").optional(),
});
export type Word = z.infer<typeof Word>;

/** How far an interpolated word's time may be off (seconds): the tolerance its consumers allow. */
export const INTERPOLATED_TIME_SLACK_SECONDS = 0.5;

export const TrackTranscript = z.object({
  track_index: z.number().int().nonnegative(),
  words: z.array(Word),
});
export type TrackTranscript = z.infer<typeof TrackTranscript>;

export const Participant = z.object({
  speaker: z.number().int().nonnegative(),
  name: z.string().min(1),
});
export type Participant = z.infer<typeof Participant>;

export const Topic = z.object({
  id: z.string().min(1),
  title: z.string().min(1),
  summary: z.string(),
  /** start of the topic, seconds on the global timeline */
  timestamp: seconds,
  duration: seconds,
  words: z.array(Word),
});
export type Topic = z.infer<typeof Topic>;

/** Something a participant said would be done: the sentence, who said it (the owner) and when. */
export const ActionItem = z.object({
  text: z.string().min(1),
  /** the speaker who said it (track index), taken as the item's owner */
  speaker: z.number().int().nonnegative(),
  /** start of the sentence's first word, seconds on the global timeline */
  start: seconds,
});
export type ActionItem = z.infer<typeof ActionItem>;

/**
 * Why a track produced no words: the step that gave up on it (after its retries), and the
 * failure as a client may read it (pipeline/failures.ts: a stable code, a one-line message).
 */
export const TrackFailure = z.object({
  step: z.string().min(1).max(64),
  code: z.string().regex(/^[a-z][a-z0-9_]{1,63}$/),
  message: z.string().max(300),
});
export type TrackFailure = z.infer<typeof TrackFailure>;

/**
 * One track of a Result: `ok` when its words are in the Result (none, for a silent track),
 * `failed` when it could not be decoded or transcribed and the meeting went on without it.
 */
export const TrackStatus = z.object({
  speaker: z.number().int().nonnegative(),
  name: z.string().min(1),
  status: z.enum(["ok", "failed"]),
  error: TrackFailure.optional(),
});
export type TrackStatus = z.infer<typeof TrackStatus>;

/**
 * Something a person should know about a completed recording: today one entry per track
 * the meeting went on without (`code` "track_failed", `cause` the track's own failure code).
 */
export const Warning = z.object({
  code: z.string(),
  message: z.string(),
  speaker: z.number().int().nonnegative().optional(),
  cause: z.string().optional(),
});
export type Warning = z.infer<typeof Warning>;

/** A Result's warnings: one per failed track. */
export function resultWarnings(result: { tracks?: TrackStatus[] | undefined }): Warning[] {
  return (result.tracks ?? [])
    .filter((t) => t.status === "failed")
    .map((t) => ({
      code: "track_failed",
      message: `${t.name}'s track (speaker ${t.speaker}) is missing from the transcript: ${t.error?.message ?? "it could not be processed"}`,
      speaker: t.speaker,
      ...(t.error ? { cause: t.error.code } : {}),
    }));
}

export const Result = z.object({
  duration: seconds,
  participants: z.array(Participant),
  words: z.array(Word),
  topics: z.array(Topic),
  title: z.string().min(1),
  short_summary: z.string(),
  long_summary: z.string(),
  /** Results stored before the step existed have none */
  action_items: z.array(ActionItem).default([]),
  /** every track and whether its words are in this Result (Results stored before partial results have none) */
  tracks: z.array(TrackStatus).optional(),
});
export type Result = z.infer<typeof Result>;

/** A span of time on the global timeline. */
export const Span = z.object({ start: seconds, end: seconds });
export type Span = z.infer<typeof Span>;

/** Names that could be mistaken for file paths or markup are refused everywhere. */
export const ParticipantName = z
  .string()
  .trim()
  .min(1, "participant name must not be empty")
  .max(80, "participant name is longer than 80 characters")
  .refine((s) => !/[\u0000-\u001f<>]/.test(s), "participant name contains control characters or angle brackets");

export const Language = z.string().regex(/^[a-z]{2}(-[A-Za-z]{2})?$/, "language must be a code like 'en' or 'en-US'");
