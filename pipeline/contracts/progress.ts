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
