/**
 * The pure pipeline state machine: `handle(state, event) → {state, instructions}`.
 *
 * No I/O, no timers, no clocks, no randomness: everything the machine needs arrives in
 * the event (ids, outputs, durations, worker ids), and every effect leaves as an
 * Instruction for the async shell to run. The state is plain JSON, so a log of events
 * replayed through `handle` rebuilds it exactly (see replay.ts).
 *
 * Modelled on dask distributed's worker_state_machine: one entry point, every status
 * change goes through `move()`, which checks the from→to table and raises with the
 * task's history on anything else; every event is logged with its outcome
 * (applied / ignored / rejected), so duplicates and stragglers are deterministic and
 * visible instead of silently mutating state.
 */
import { EventSchemaError, IllegalTransitionError } from "./errors.ts";
import { isDeepStrictEqual } from "node:util";
import type { z } from "zod/v4";
import type { FailedTrack, PipelineInput, Result, StepName } from "../contracts/index.ts";
import { clientFailure } from "../failures.ts";
import { PipelineEvent, type PipelineEventInput, type RetryTimerFired, type StepFailed, type StepSucceeded } from "./events.ts";
import { FINAL_STEP, jobId, perTrackSteps, stepOutputSchemas, taskKey, taskSpecs, NODES, type TaskSpec } from "./graph.ts";
import type { EmitProgress, Instruction } from "./instructions.ts";
import { backoffDelayMs, defaultRetryPolicy, maxAttempts, type RetryPolicy } from "./policy.ts";

// ---- state ------------------------------------------------------------------------

/**
 * `failed`: the task gave up. For a per-track task that is its track's failure, not the
 * run's: its output is then a FailedTrack and the run goes on without the track.
 * `skipped`: a per-track task whose track an earlier step already gave up on.
 */
export type TaskStatus = "waiting" | "running" | "retry_wait" | "succeeded" | "failed" | "cancelled" | "skipped";
export type PipelineStatus = "new" | "running" | "succeeded" | "failed";

/** The legal task transitions; anything else is a bug and raises IllegalTransitionError. */
export const TASK_TRANSITIONS: { readonly [F in TaskStatus]: readonly TaskStatus[] } = {
  waiting: ["running", "cancelled", "skipped"],
  running: ["succeeded", "retry_wait", "failed", "cancelled"],
  retry_wait: ["running", "cancelled"],
  succeeded: [],
  failed: [],
  cancelled: [],
  skipped: [],
};

export const PIPELINE_TRANSITIONS: { readonly [F in PipelineStatus]: readonly PipelineStatus[] } = {
  new: ["running"],
  running: ["succeeded", "failed"],
  succeeded: [],
  failed: [],
};

export interface TaskAttempt {
  attempt: number;
  job_id: string;
  status: "running" | "succeeded" | "failed" | "cancelled";
  duration_ms: number | null;
  worker_id: string | null;
  error: string | null;
}

export interface TaskTransition {
  seq: number;
  event_id: string;
  from: TaskStatus;
  to: TaskStatus;
  attempt: number;
}

export interface TaskState {
  key: string;
  step: StepName;
  track_index: number | null;
  status: TaskStatus;
  /** number of the latest attempt started (0 = never started) */
  attempt: number;
  output: unknown;
  error: string | null;
  attempts: TaskAttempt[];
  history: TaskTransition[];
}

export type Outcome = "applied" | "ignored" | "rejected";

export interface LogEntry {
  seq: number;
  event_id: string;
  type: PipelineEvent["type"];
  outcome: Outcome;
  note: string | null;
  task: string | null;
}

export interface PipelineState {
  status: PipelineStatus;
  recording_id: string | null;
  namespace: string | null;
  input: PipelineInput | null;
  policy: RetryPolicy | null;
  tasks: Record<string, TaskState>;
  /** number of events handled, duplicates included */
  seq: number;
  /** event id → seq of its first handling (duplicate detection) */
  seen: Record<string, number>;
  log: LogEntry[];
  result: Result | null;
  failure: { reason: string; step: StepName | null; track_index: number | null } | null;
}

export function initialState(): PipelineState {
  return {
    status: "new",
    recording_id: null,
    namespace: null,
    input: null,
    policy: null,
    tasks: {},
    seq: 0,
    seen: {},
    log: [],
    result: null,
    failure: null,
  };
}

// ---- errors -----------------------------------------------------------------------

export { EventSchemaError, IllegalTransitionError };


// ---- entry point ------------------------------------------------------------------

export interface HandleResult {
  state: PipelineState;
  instructions: Instruction[];
  outcome: Outcome;
  note: string | null;
}

interface Verdict {
  outcome: Outcome;
  note: string | null;
  task: string | null;
}

/** Everything a handler needs; `s` is the machine's private copy of the state. */
interface Ctx {
  s: PipelineState;
  seq: number;
  eventId: string;
  out: Instruction[];
}

const applied = (task: string | null = null): Verdict => ({ outcome: "applied", note: null, task });
const ignored = (note: string, task: string | null = null): Verdict => ({ outcome: "ignored", note, task });
const rejected = (note: string, task: string | null = null): Verdict => ({ outcome: "rejected", note, task });

/**
 * Handle one event. Never mutates `state`; returns the next state and the instructions
 * to run. Duplicate and out-of-order events are logged as ignored or rejected with a
 * note and produce no instructions. Throws only EventSchemaError (malformed event) and
 * IllegalTransitionError (a bug).
 */
export function handle(state: PipelineState, rawEvent: PipelineEventInput | PipelineEvent): HandleResult {
  const parsed = PipelineEvent.safeParse(rawEvent);
  if (!parsed.success) throw new EventSchemaError("pipeline", parsed.error);
  const event = parsed.data;
  const s = copyState(state);
  s.seq += 1;
  const ctx: Ctx = { s, seq: s.seq, eventId: event.id, out: [] };

  let verdict: Verdict;
  const first = s.seen[event.id];
  if (first !== undefined) {
    verdict = ignored(`duplicate event id (first handled as event #${first})`);
  } else {
    s.seen[event.id] = s.seq;
    verdict = dispatch(ctx, event);
  }
  s.log.push({ seq: s.seq, event_id: event.id, type: event.type, outcome: verdict.outcome, note: verdict.note, task: verdict.task });
  return { state: s, instructions: ctx.out, outcome: verdict.outcome, note: verdict.note };
}

function dispatch(ctx: Ctx, event: PipelineEvent): Verdict {
  const { s } = ctx;
  switch (event.type) {
    case "RecordingAccepted": {
      if (s.status !== "new") {
        return isDeepStrictEqual(s.input, event.input)
          ? ignored("recording already accepted")
          : rejected("a different input was already accepted for this run");
      }
      s.recording_id = event.input.recording_id;
      s.namespace = event.input.namespace;
      s.input = event.input;
      s.policy = event.policy ?? defaultRetryPolicy();
      for (const spec of taskSpecs(event.input)) {
        s.tasks[spec.key] = {
          key: spec.key,
          step: spec.step,
          track_index: spec.track_index,
          status: "waiting",
          attempt: 0,
          output: null,
          error: null,
          attempts: [],
          history: [],
        };
      }
      movePipeline(ctx, "running");
      progress(ctx, { step: "pipeline", status: "started", message: `${event.input.tracks.length} track(s)` });
      startReadyTasks(ctx);
      return applied();
    }
    case "RecordingCancelled": {
      if (s.status === "new") return rejected("no recording accepted yet");
      if (s.status !== "running") return ignored(`pipeline already ${s.status}`);
      failPipeline(ctx, `cancelled: ${event.reason}`, null);
      return applied();
    }
    case "StepSucceeded":
    case "StepFailed":
    case "RetryTimerFired": {
      if (s.status === "new") return rejected("no recording accepted yet");
      const key = taskKey(event.step, event.track_index);
      const task = s.tasks[key];
      if (!task) return rejected(`no task ${key} in this pipeline`);
      if (s.status !== "running") return ignored(`pipeline already ${s.status}`, key);
      if (event.type === "RetryTimerFired") return onRetryTimer(ctx, task, event);
      return onStepResult(ctx, task, event);
    }
  }
}

/**
 * The machine's private copy of a state: everything it changes is copied (statuses,
 * attempts, histories, the log, the seen ids); task outputs and the input are shared,
 * since nothing ever changes them (each is a fresh value the event's schema parse
 * produced). A deep copy cloned every output (whole transcripts, several times over) on
 * every event: 10.7 s of `handle` for a 3 × 10 000-word run, 0.1 s with this copy.
 */
function copyState(state: PipelineState): PipelineState {
  const tasks: Record<string, TaskState> = {};
  for (const [k, t] of Object.entries(state.tasks)) tasks[k] = { ...t, attempts: t.attempts.map((a) => ({ ...a })), history: [...t.history] };
  return {
    ...state,
    tasks,
    seen: { ...state.seen },
    log: [...state.log],
    failure: state.failure ? { ...state.failure } : null,
  };
}

// ---- handlers ---------------------------------------------------------------------

function onStepResult(ctx: Ctx, task: TaskState, event: StepSucceeded | StepFailed): Verdict {
  const what = event.type === "StepSucceeded" ? "success" : "failure";
  if (task.status === "waiting") return ignored(`${what} for a task that was never started (attempt ${event.attempt})`, task.key);
  if (event.attempt > task.attempt) return rejected(`${what} for attempt ${event.attempt}, but only ${task.attempt} started`, task.key);
  if (event.attempt < task.attempt) return ignored(`stale ${what} of attempt ${event.attempt}; attempt ${task.attempt} is current`, task.key);
  if (task.status !== "running") return ignored(`${what} of attempt ${event.attempt} after the task was already ${task.status}`, task.key);

  const attempt = task.attempts[task.attempts.length - 1]!;
  attempt.duration_ms = event.duration_ms ?? null;
  attempt.worker_id = event.worker_id ?? null;

  if (event.type === "StepFailed") {
    failAttempt(ctx, task, event.error, event.retryable, event.failure);
    return applied(task.key);
  }
  const spec = specOf(ctx.s, task.key);
  const parsed = stepOutputSchemas[task.step].safeParse(event.output);
  const problem = parsed.success
    ? (spec.checkOutput?.(parsed.data) ?? null)
    : parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
  if (problem !== null) {
    failAttempt(ctx, task, `invalid output: ${problem}`, false);
    return applied(task.key);
  }
  attempt.status = "succeeded";
  task.output = parsed.data;
  move(ctx, task, "succeeded");
  progress(ctx, {
    step: task.step,
    track_index: task.track_index,
    status: "succeeded",
    attempt: task.attempt,
    duration_ms: event.duration_ms,
    worker_id: event.worker_id,
  });
  if (task.step === FINAL_STEP) finishPipeline(ctx, task.output as Result);
  else startReadyTasks(ctx);
  return applied(task.key);
}

function onRetryTimer(ctx: Ctx, task: TaskState, event: RetryTimerFired): Verdict {
  if (task.status !== "retry_wait") return ignored(`retry timer for attempt ${event.attempt}, but the task is ${task.status}`, task.key);
  if (event.attempt !== task.attempt + 1) {
    return ignored(`retry timer for attempt ${event.attempt}, but the task waits to start attempt ${task.attempt + 1}`, task.key);
  }
  startAttempt(ctx, task);
  return applied(task.key);
}

// ---- transitions ------------------------------------------------------------------

/** The only way a task changes status: checked against TASK_TRANSITIONS, recorded in its history. */
export function transitionTask(task: TaskState, to: TaskStatus, cause: { seq: number; event_id: string }): void {
  if (!TASK_TRANSITIONS[task.status].includes(to)) {
    throw new IllegalTransitionError(`task ${task.key}`, task.status, to, cause.event_id, task.history, (h) => ` (attempt ${h.attempt})`);
  }
  task.history.push({ seq: cause.seq, event_id: cause.event_id, from: task.status, to, attempt: task.attempt });
  task.status = to;
}

function move(ctx: Ctx, task: TaskState, to: TaskStatus): void {
  transitionTask(task, to, { seq: ctx.seq, event_id: ctx.eventId });
}

function movePipeline(ctx: Ctx, to: PipelineStatus): void {
  const { s } = ctx;
  if (!PIPELINE_TRANSITIONS[s.status].includes(to)) {
    throw new IllegalTransitionError(`pipeline ${s.recording_id ?? "(new)"}`, s.status, to, ctx.eventId, []);
  }
  s.status = to;
}

/** A task later tasks may read: it succeeded, or it is a track's failure they carry on with. */
const settled = (t: TaskState | undefined): boolean =>
  t !== undefined && (t.status === "succeeded" || t.status === "skipped" || (t.status === "failed" && t.output !== null));

function startReadyTasks(ctx: Ctx): void {
  const { tasks } = ctx.s;
  for (const spec of specsOf(ctx.s)) {
    const task = tasks[spec.key]!;
    if (task.status !== "waiting" || !spec.deps.every((d) => settled(tasks[d]))) continue;
    if (trackGivenUp(ctx.s, task)) {
      // (its track's failure was reported by the step that gave up on it)
      move(ctx, task, "skipped");
      continue;
    }
    startAttempt(ctx, task);
  }
}

/** A per-track task over a step's list in which its track is missing (that step gave up on the track). */
function trackGivenUp(s: PipelineState, task: TaskState): boolean {
  const over = NODES[task.step].forEachTrack;
  if (task.track_index === null || over?.from !== "output") return false;
  const list = (s.tasks[over.step]?.output as Record<string, unknown> | null)?.[over.field] as { track_index: number }[] | undefined;
  return !(list ?? []).some((t) => t.track_index === task.track_index);
}

function startAttempt(ctx: Ctx, task: TaskState): void {
  const { s } = ctx;
  const input = specOf(s, task.key).buildInput(<T>(key: string) => s.tasks[key]!.output as T);
  task.attempt += 1;
  const job_id = jobId(s.recording_id!, s.namespace!, task.step, task.track_index, task.attempt);
  task.attempts.push({ attempt: task.attempt, job_id, status: "running", duration_ms: null, worker_id: null, error: null });
  move(ctx, task, "running");
  ctx.out.push({
    type: "RunStep",
    stimulus_id: ctx.eventId,
    step: task.step,
    ...trackField(task.track_index),
    attempt: task.attempt,
    job_id,
    input,
  });
  progress(ctx, { step: task.step, track_index: task.track_index, status: "started", attempt: task.attempt });
}

function failAttempt(ctx: Ctx, task: TaskState, error: string, retryable: boolean, failure?: { code: string; message: string }): void {
  const { s } = ctx;
  const attempt = task.attempts[task.attempts.length - 1]!;
  attempt.status = "failed";
  attempt.error = error;
  task.error = error;
  const limit = maxAttempts(s.policy!, task.step);
  if (retryable && task.attempt < limit) {
    const delay_ms = backoffDelayMs(s.policy!, task.attempt);
    move(ctx, task, "retry_wait");
    progress(ctx, {
      step: task.step,
      track_index: task.track_index,
      status: "retrying",
      attempt: task.attempt,
      message: `attempt ${task.attempt} of ${limit} failed: ${error}; next in ${delay_ms} ms`,
    });
    ctx.out.push({
      type: "ScheduleRetry",
      stimulus_id: ctx.eventId,
      step: task.step,
      ...trackField(task.track_index),
      attempt: task.attempt + 1,
      delay_ms,
    });
    return;
  }
  move(ctx, task, "failed");
  const why = retryable ? `failed after ${task.attempt} attempt(s)` : `failed (not retryable) on attempt ${task.attempt}`;
  progress(ctx, { step: task.step, track_index: task.track_index, status: "failed", attempt: task.attempt, message: error });
  if (task.track_index !== null && perTrackSteps.has(task.step)) {
    // one track's failure: the run goes on without it (the step after the fork fails the
    // run when no track is left)
    const f = failure ?? clientFailure(error, "track_failed")!;
    task.output = { track_index: task.track_index, failed: { step: task.step, code: f.code, message: f.message } } satisfies FailedTrack;
    startReadyTasks(ctx);
    return;
  }
  failPipeline(ctx, `${task.key} ${why}: ${error}`, task);
}

function failPipeline(ctx: Ctx, reason: string, culprit: TaskState | null): void {
  const { s } = ctx;
  for (const spec of specsOf(s)) {
    const task = s.tasks[spec.key]!;
    if (task.status === "waiting" || task.status === "running" || task.status === "retry_wait") {
      const last = task.attempts[task.attempts.length - 1];
      if (task.status === "running" && last) last.status = "cancelled";
      move(ctx, task, "cancelled");
    }
  }
  s.failure = { reason, step: culprit?.step ?? null, track_index: culprit?.track_index ?? null };
  movePipeline(ctx, "failed");
  progress(ctx, { step: "pipeline", status: "failed", message: reason });
  ctx.out.push({
    type: "Fail",
    stimulus_id: ctx.eventId,
    reason,
    ...(culprit ? { step: culprit.step, ...trackField(culprit.track_index) } : {}),
  });
}

function finishPipeline(ctx: Ctx, result: Result): void {
  ctx.s.result = result;
  movePipeline(ctx, "succeeded");
  progress(ctx, { step: "pipeline", status: "completed" });
  ctx.out.push({ type: "Finish", stimulus_id: ctx.eventId, result });
}

// ---- helpers ----------------------------------------------------------------------

function specsOf(s: PipelineState): TaskSpec[] {
  return taskSpecs(s.input!);
}

function specOf(s: PipelineState, key: string): TaskSpec {
  const spec = specsOf(s).find((t) => t.key === key);
  if (!spec) throw new Error(`no task spec ${key}`);
  return spec;
}

const trackField = (track: number | null): { track_index?: number } => (track === null ? {} : { track_index: track });

type ProgressFields = Omit<EmitProgress, "type" | "stimulus_id" | "track_index" | "duration_ms" | "worker_id"> & {
  track_index?: number | null;
  duration_ms?: number | undefined;
  worker_id?: string | undefined;
};

/** EmitProgress without undefined fields (instruction lists compare exactly in tests). */
function progress(ctx: Ctx, p: ProgressFields): void {
  const out: EmitProgress = { type: "EmitProgress", stimulus_id: ctx.eventId, step: p.step, status: p.status };
  if (p.track_index !== undefined && p.track_index !== null) out.track_index = p.track_index;
  if (p.attempt !== undefined) out.attempt = p.attempt;
  if (p.message !== undefined) out.message = p.message;
  if (p.duration_ms !== undefined) out.duration_ms = p.duration_ms;
  if (p.worker_id !== undefined) out.worker_id = p.worker_id;
  ctx.out.push(out);
}

// ---- queries ----------------------------------------------------------------------

/** dask's `story()`: every log entry about one task, plus its transitions. */
export function story(state: PipelineState, key: string): { log: LogEntry[]; transitions: TaskTransition[] } {
  return { log: state.log.filter((l) => l.task === key), transitions: state.tasks[key]?.history ?? [] };
}

/** Tasks in scheduling order (object key order is not kept by jsonb). */
export function orderedTasks(state: PipelineState): TaskState[] {
  if (!state.input) return [];
  return taskSpecs(state.input).map((spec) => state.tasks[spec.key]!).filter(Boolean);
}
