/** Progress events: written to Postgres by workers, streamed over SSE, drawn as a progress bar. */
import { z } from "zod/v4";

export const StepName = z.enum([
  "prepare_track",
  "plan_speech",
  "transcribe_track",
  "merge_transcripts",
  "suppress_bleed",
  "detect_topics",
  "generate_title",
  "generate_summary",
  "extract_action_items",
  "mixdown",
  "finalize",
]);
export type StepName = z.infer<typeof StepName>;

export const ProgressEvent = z.object({
  recording_id: z.string().min(1),
  engine: z.string().min(1),
  step: z.union([StepName, z.literal("pipeline")]),
  track_index: z.number().int().nonnegative().optional(),
  status: z.enum(["started", "succeeded", "failed", "retrying", "completed"]),
  message: z.string().optional(),
  duration_ms: z.number().nonnegative().optional(),
  worker_id: z.string().optional(),
  at: z.string(),
});
export type ProgressEvent = z.infer<typeof ProgressEvent>;

/**
 * What an orchestrator's worker host reports about one attempt of one task (Conductor's:
 * its task names include plan_tracks); a sink stores it as a ProgressEvent. `message` is a
 * client-fit failure text (pipeline/failures.ts), never an error's own text.
 */
export interface TaskAttemptEvent<Task extends string = string> {
  task: Task;
  task_id: string;
  workflow_id: string;
  recording_id?: string;
  namespace?: string;
  track_index?: number;
  status: "started" | "succeeded" | "failed";
  terminal?: boolean;
  message?: string;
  duration_ms?: number;
  worker_id: string;
}
