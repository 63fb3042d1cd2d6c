/**
 * Conductor-only task contracts: the tasks that build dynamic forks. Their outputs extend
 * the pure step outputs with the fork list and input map (which must agree on reference names).
 */
import { z } from "zod/v4";
import { PipelineInput, SpeechPlan, TranscribeTrackOutput } from "../../pipeline/contracts/index.ts";

/** The Conductor-only first task: checks the workflow input and forks the per-track steps over its tracks. */
export const PLAN_TRACKS = "plan_tracks";

export const ForkTask = z.object({
  name: z.string().min(1),
  taskReferenceName: z.string().min(1),
  type: z.literal("SIMPLE"),
});
export type ForkTask = z.infer<typeof ForkTask>;

export const ForkPlan = z.object({
  fork_tasks: z.array(ForkTask).min(1),
  fork_inputs: z.record(z.string(), z.record(z.string(), z.unknown())),
});
export type ForkPlan = z.infer<typeof ForkPlan>;

export const PlanTracksInput = PipelineInput;
export const PlanTracksOutput = ForkPlan.extend({ expected_tracks: z.array(z.number().int().nonnegative()).min(1) });
export type PlanTracksOutput = z.infer<typeof PlanTracksOutput>;

export const PlanSpeechConductorOutput = SpeechPlan.extend(ForkPlan.shape);
export type PlanSpeechConductorOutput = z.infer<typeof PlanSpeechConductorOutput>;

/** transcribe_track's output as Conductor carries it: the words in storage (transcripts.ts) */
export const TranscribeTrackConductorOutput = TranscribeTrackOutput.omit({ words: true }).extend({
  words_key: z.string().min(1),
  word_count: z.number().int().nonnegative(),
});
export type TranscribeTrackConductorOutput = z.infer<typeof TranscribeTrackConductorOutput>;
