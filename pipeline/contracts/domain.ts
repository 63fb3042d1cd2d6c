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
