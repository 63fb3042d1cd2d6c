/**
 * Engine runs → EngineSnapshot (what compare.ts compares), pure.
 *  - BullMQ: the state machine's state (from the live run or a replay of its event log).
 *  - Conductor: the workflow execution JSON (`GET /api/workflow/{id}?includeTasks=true`).
 * Tasks are keyed by step and by the track index carried inside their own input/output,
 * never by Conductor reference names (engine-specific keys do not compare like with like).
 */
import { FailedTrack, Result, StepName } from "../../pipeline/contracts/index.ts";
import { formatFailure } from "../../pipeline/failures.ts";
import { orderedTasks, perTrackSteps, type PipelineState } from "../../pipeline/state/index.ts";
import type { EngineSnapshot, StepRecord } from "./compare.ts";

const givenUp = (output: unknown): { code: string; message: string } | null => {
  const parsed = FailedTrack.safeParse(output);
  return parsed.success ? parsed.data.failed : null;
};

export function bullmqSnapshot(state: PipelineState, runId: string | null): EngineSnapshot {
  // a task skipped because its track was given up on earlier never exists under Conductor (its fork leaves the track out)
  const steps: StepRecord[] = orderedTasks(state).filter((t) => t.status !== "skipped").map((t) => {
    const last = t.attempts[t.attempts.length - 1];
    const status: StepRecord["status"] = t.status === "retry_wait" ? "running" : t.status === "skipped" ? "cancelled" : t.status;
    return {
      step: t.step,
      track_index: t.track_index,
      status,
      output: t.status === "succeeded" ? t.output : null,
      // a track given up on: its client-fit failure, written as Conductor's worker writes its reason ("[code] message")
      error: t.status === "failed" ? (givenUp(t.output) ? formatFailure(givenUp(t.output)!) : t.error) : null,
      duration_ms: last?.duration_ms ?? null,
      attempts: t.attempt,
      worker_id: last?.worker_id ?? null,
    };
  });
  return {
    engine: "bullmq",
    run_id: runId,
    status: state.status === "succeeded" ? "succeeded" : state.status === "failed" ? "failed" : "running",
    error: state.failure?.reason ?? null,
    steps,
    result: state.result,
  };
}

/** The parts of a Conductor workflow execution we read. */
export interface ConductorWorkflowJson {
  workflowId: string;
  status: string;
  reasonForIncompletion?: string;
  output?: Record<string, unknown>;
  tasks?: ConductorTaskJson[];
}

export interface ConductorTaskJson {
  taskType: string;
  taskDefName?: string;
  referenceTaskName: string;
  status: string;
  inputData?: Record<string, unknown>;
  outputData?: Record<string, unknown>;
  startTime?: number;
  endTime?: number;
  scheduledTime?: number;
  retryCount?: number;
  seq?: number;
  reasonForIncompletion?: string;
  workerId?: string;
}

/** Our step name for a Conductor task: its definition name, with an optional `trackscribe_`-style prefix removed. */
export function stepOfTask(t: ConductorTaskJson): StepName | null {
  for (const name of [t.taskDefName, t.taskType]) {
    if (!name) continue;
    const direct = StepName.safeParse(name);
    if (direct.success) return direct.data;
    const tail = StepName.options.find((s) => name.endsWith(`_${s}`) || name.endsWith(`.${s}`));
    if (tail) return tail;
  }
  return null;
}

function trackOfTask(step: StepName, t: ConductorTaskJson): number | null {
  if (!perTrackSteps.has(step)) return null;
  const fromOut = t.outputData?.track_index;
  if (typeof fromOut === "number") return fromOut;
  const fromIn = (t.inputData?.track as { track_index?: unknown } | undefined)?.track_index;
  return typeof fromIn === "number" ? fromIn : null;
}

const STATUS: Record<string, StepRecord["status"]> = {
  COMPLETED: "succeeded",
  // an optional fork task that gave up on its track (partial results): the track failed, the run went on
  COMPLETED_WITH_ERRORS: "failed",
  FAILED: "failed",
  FAILED_WITH_TERMINAL_ERROR: "failed",
  TIMED_OUT: "failed",
  CANCELED: "cancelled",
  SKIPPED: "cancelled",
  IN_PROGRESS: "running",
  SCHEDULED: "waiting",
};

export function conductorSnapshot(wf: ConductorWorkflowJson): EngineSnapshot {
  // retries appear as further task entries for the same step and track: keep the last, count them
  const byKey = new Map<string, { task: ConductorTaskJson; step: StepName; track: number | null; attempts: number }>();
  const tasks = [...(wf.tasks ?? [])].sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0));
  for (const t of tasks) {
    const step = stepOfTask(t);
    if (!step) continue;
    const track = trackOfTask(step, t);
    if (track === null && perTrackSteps.has(step)) continue; // cannot be keyed honestly
    const key = track === null ? step : `${step}[${track}]`;
    const prev = byKey.get(key);
    byKey.set(key, { task: t, step, track, attempts: (prev?.attempts ?? 0) + 1 });
  }
  const steps: StepRecord[] = [...byKey.values()].map(({ task, step, track, attempts }) => {
    // a per-track task whose last attempt gave its track up completes with a FailedTrack: the track failed
    const gave = task.status === "COMPLETED" ? givenUp(task.outputData) : null;
    const status = gave ? "failed" : (STATUS[task.status] ?? "running");
    const started = task.startTime && task.startTime > 0 ? task.startTime : null;
    const ended = task.endTime && task.endTime > 0 ? task.endTime : null;
    return {
      step,
      track_index: track,
      status,
      output: status === "succeeded" ? (task.outputData ?? {}) : null,
      error: status === "failed" ? (gave ? formatFailure(gave) : (task.reasonForIncompletion ?? "failed")) : null,
      duration_ms: started !== null && ended !== null ? ended - started : null,
      attempts,
      worker_id: (task.outputData?.worker_id as string | undefined) ?? task.workerId ?? null,
    };
  });
  const status = wf.status === "COMPLETED" ? "succeeded" : wf.status === "RUNNING" || wf.status === "PAUSED" ? "running" : "failed";
  const parsed = Result.safeParse(wf.output);
  return {
    engine: "conductor",
    run_id: wf.workflowId,
    status,
    error: status === "failed" ? (wf.reasonForIncompletion ?? wf.status) : null,
    steps,
    result: status === "succeeded" && parsed.success ? parsed.data : null,
  };
}
