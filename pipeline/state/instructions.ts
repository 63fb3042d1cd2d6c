/**
 * Instructions: every side effect the machine wants, as plain data. The async shell
 * (workers/bullmq) turns them into queue operations, timers and progress rows; their
 * results come back as events. Each carries the id of the event that caused it.
 */
import type { Result, StepName } from "../contracts/index.ts";

interface Base {
  /** id of the event that produced this instruction (dask's stimulus_id) */
  stimulus_id: string;
}

/** Run one attempt of one task. `job_id` is deterministic: enqueueing it twice is a no-op. */
export interface RunStep extends Base {
  type: "RunStep";
  step: StepName;
  track_index?: number;
  attempt: number;
  job_id: string;
  input: unknown;
}

/** Start a timer; when it fires, feed RetryTimerFired(step, track_index, attempt). */
export interface ScheduleRetry extends Base {
  type: "ScheduleRetry";
  step: StepName;
  track_index?: number;
  /** the attempt the timer will start */
  attempt: number;
  delay_ms: number;
}

/** Report progress (Postgres events, SSE, progress bar). The shell adds recording, engine and time. */
export interface EmitProgress extends Base {
  type: "EmitProgress";
  step: StepName | "pipeline";
  track_index?: number;
  status: "started" | "succeeded" | "failed" | "retrying" | "completed";
  attempt?: number;
  message?: string;
  duration_ms?: number;
  worker_id?: string;
}

/** The pipeline produced its Result. */
export interface Finish extends Base {
  type: "Finish";
  result: Result;
}

/** The pipeline failed for good. */
export interface Fail extends Base {
  type: "Fail";
  reason: string;
  step?: StepName;
  track_index?: number;
}

export type Instruction = RunStep | ScheduleRetry | EmitProgress | Finish | Fail;
