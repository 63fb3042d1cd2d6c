/**
 * Replay: fold a logged event sequence through `handle` to rebuild a run's state, and
 * derive what a restarted shell must re-issue for a rebuilt state.
 */
import type { PipelineEvent, PipelineEventInput } from "./events.ts";
import { jobId, taskSpecs } from "./graph.ts";
import type { Instruction } from "./instructions.ts";
import { handle, initialState, orderedTasks, type Outcome, type PipelineState } from "./machine.ts";
import { backoffDelayMs } from "./policy.ts";

export interface ReplayStep {
  event_id: string;
  type: PipelineEvent["type"];
  outcome: Outcome;
  note: string | null;
  instructions: Instruction[];
}

export interface Replayed {
  state: PipelineState;
  /** every instruction the events produced, in order */
  instructions: Instruction[];
  steps: ReplayStep[];
}

export function replay(events: readonly (PipelineEvent | PipelineEventInput)[], from: PipelineState = initialState()): Replayed {
  let state = from;
  const instructions: Instruction[] = [];
  const steps: ReplayStep[] = [];
  for (const event of events) {
    const r = handle(state, event);
    state = r.state;
    instructions.push(...r.instructions);
    steps.push({ event_id: event.id, type: event.type, outcome: r.outcome, note: r.note, instructions: r.instructions });
  }
  return { state, instructions, steps };
}

/**
 * What a shell that lost its memory (crash, restart) must do to keep a rebuilt run
 * moving: re-issue RunStep for every running task (same deterministic job id, so an
 * enqueue of a job that still exists is a no-op) and re-arm the timer of every task
 * waiting for a retry. Pure; `stimulus_id` is the given id.
 */
export function resume(state: PipelineState, stimulusId = "resume"): Instruction[] {
  if (state.status !== "running" || !state.input || !state.policy) return [];
  const out: Instruction[] = [];
  const specs = new Map(taskSpecs(state.input).map((s) => [s.key, s]));
  for (const task of orderedTasks(state)) {
    const track = task.track_index === null ? {} : { track_index: task.track_index };
    if (task.status === "running") {
      const input = specs.get(task.key)!.buildInput(<T>(k: string) => state.tasks[k]!.output as T);
      out.push({
        type: "RunStep",
        stimulus_id: stimulusId,
        step: task.step,
        ...track,
        attempt: task.attempt,
        job_id: jobId(state.input.recording_id, state.input.namespace, task.step, task.track_index, task.attempt),
        input,
      });
    } else if (task.status === "retry_wait") {
      out.push({
        type: "ScheduleRetry",
        stimulus_id: stimulusId,
        step: task.step,
        ...track,
        attempt: task.attempt + 1,
        delay_ms: backoffDelayMs(state.policy, task.attempt),
      });
    }
  }
  return out;
}

