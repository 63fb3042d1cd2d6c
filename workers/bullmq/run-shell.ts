/**
 * The async shell around the pure state machine for ONE pipeline run.
 *
 * Events are handled strictly one at a time (a promise chain): `handle()` computes the
 * next state and instructions, the event is appended to the event log, and only then are
 * the instructions run: RunStep → a BullMQ job with the machine's deterministic job id,
 * ScheduleRetry → a timer that feeds RetryTimerFired, EmitProgress → the progress hook,
 * Finish / Fail → the run's promise. Job results come back (from QueueEvents, or from the
 * periodic sweep when an event was missed) as StepSucceeded / StepFailed events whose id
 * is derived from the job id, so a result delivered twice is a logged duplicate.
 */
import { Job } from "bullmq";
import type { Logger } from "pino";
import type { PipelineInput, ProgressEvent, Result } from "../../pipeline/contracts/index.ts";
import { PipelineAbortedError, PipelineStepError } from "../inprocess/inprocess.ts";
import {
  handle,
  initialState,
  jobId,
  type Instruction,
  type PipelineEventInput,
  type PipelineState,
  type RetryPolicy,
  type RunStep,
} from "../../pipeline/state/index.ts";
import type { EventLog } from "./event-log.ts";
import { StepJobResult, type StepJobData } from "./job-data.ts";
import type { StepQueues } from "./queues.ts";

export interface RunShellDeps {
  runId: string;
  queues: StepQueues;
  eventLog: EventLog;
  log: Logger;
  onProgress?: (e: ProgressEvent) => void;
  /** route results of this job id to this run (and stop routing) */
  route(jobId: string, run: RunShell): void;
  unroute(jobId: string): void;
  /** seconds BullMQ keeps finished jobs (so a duplicate enqueue still finds them) */
  keepCompletedSeconds: number;
  keepFailedSeconds: number;
}

export class RunShell {
  private state: PipelineState = initialState();
  private chain: Promise<void> = Promise.resolve();
  /** jobs enqueued whose result has not been fed yet */
  private readonly pending = new Map<string, RunStep>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;
  private settle!: { resolve(r: Result): void; reject(e: Error): void };
  readonly done: Promise<Result>;

  constructor(private readonly deps: RunShellDeps) {
    this.done = new Promise<Result>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    this.done.catch(() => undefined); // the caller of start() observes the rejection
  }

  get runId(): string {
    return this.deps.runId;
  }

  /** The current state (a copy is not needed: the machine never mutates it). */
  snapshot(): PipelineState {
    return this.state;
  }

  async start(input: PipelineInput, policy?: Partial<RetryPolicy>): Promise<Result> {
    await this.deps.eventLog.createRun({ run_id: this.runId, recording_id: input.recording_id, namespace: input.namespace, engine: "bullmq" });
    void this.feed({ type: "RecordingAccepted", id: `accepted:${this.runId}`, input, ...(policy ? { policy } : {}) });
    return this.done;
  }

  cancel(reason: string): void {
    void this.feed({ type: "RecordingCancelled", id: `cancel:${this.runId}`, reason });
  }

  /** Feed one event; events are handled in the order they are fed. */
  feed(event: PipelineEventInput): Promise<void> {
    this.chain = this.chain.then(() => this.process(event)).catch((err: unknown) => this.crash(err));
    return this.chain;
  }

  /** QueueEvents 'completed' for one of this run's jobs. */
  onJobCompleted(id: string, returnvalue: unknown): void {
    const run = this.pending.get(id);
    if (!run) return;
    this.pending.delete(id);
    void this.feed(resultEvent(run, returnvalue));
  }

  /** QueueEvents 'failed': BullMQ itself gave up on the job (stalled too often, processor crash). */
  onJobFailed(id: string, failedReason: string): void {
    const run = this.pending.get(id);
    if (!run) return;
    this.pending.delete(id);
    // a job that stalled past BULLMQ_MAX_STALLED lost its workers that many times: those
    // recoveries were the infrastructure's budget (no attempt spent on them); past it the
    // task fails, saying so, instead of spending the step's attempts on more host deaths
    const stalled = /stalled more than allowable limit/i.test(failedReason);
    void this.feed({
      type: "StepFailed",
      id: `result:${id}`,
      step: run.step,
      ...(run.track_index === undefined ? {} : { track_index: run.track_index }),
      attempt: run.attempt,
      error: stalled
        ? `the workers running this step stopped (died or hung) more times than BULLMQ_MAX_STALLED allows: ${failedReason}`
        : `BullMQ failed the job: ${failedReason}`,
      retryable: !stalled,
    });
  }

  /** Look at every pending job's state in Redis; feeds results whose events were missed. */
  async sweep(): Promise<void> {
    for (const id of [...this.pending.keys()]) await this.check(id);
  }

  /** Stop without a verdict (engine closing): timers cleared, routing removed. */
  abandon(reason: string): void {
    if (this.closed) return;
    this.close();
    this.settle.reject(new Error(`run ${this.runId} abandoned: ${reason}`));
  }

  // ---- internals -------------------------------------------------------------------

  private async process(event: PipelineEventInput): Promise<void> {
    if (this.closed) return; // after Finish/Fail nothing more is logged: the log ends with the verdict
    const r = handle(this.state, event);
    await this.deps.eventLog.append(this.runId, r.state.seq, event, r.outcome, r.note);
    this.state = r.state;
    if (r.outcome !== "applied") this.deps.log.info({ event_id: event.id, type: event.type, outcome: r.outcome, note: r.note }, "event not applied");
    for (const i of r.instructions) await this.execute(i);
  }

  private async execute(i: Instruction): Promise<void> {
    const { log } = this.deps;
    switch (i.type) {
      case "RunStep": {
        const data: StepJobData = {
          run_id: this.runId,
          recording_id: this.state.recording_id!,
          namespace: this.state.namespace!,
          step: i.step,
          ...(i.track_index === undefined ? {} : { track_index: i.track_index }),
          attempt: i.attempt,
          input: i.input,
        };
        this.pending.set(i.job_id, i);
        this.deps.route(i.job_id, this);
        await this.deps.queues.get(i.step).add(i.step, data, {
          jobId: i.job_id,
          attempts: 1,
          removeOnComplete: { age: this.deps.keepCompletedSeconds },
          removeOnFail: { age: this.deps.keepFailedSeconds },
        });
        log.debug({ job_id: i.job_id, step: i.step, track_index: i.track_index, attempt: i.attempt }, "job enqueued");
        // a job with this id may exist already and be finished (a resumed run): then no event will come
        await this.check(i.job_id);
        return;
      }
      case "ScheduleRetry": {
        const next = jobId(this.state.recording_id!, this.state.namespace!, i.step, i.track_index, i.attempt);
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          void this.feed({
            type: "RetryTimerFired",
            id: `timer:${next}`,
            step: i.step,
            ...(i.track_index === undefined ? {} : { track_index: i.track_index }),
            attempt: i.attempt,
          });
        }, i.delay_ms);
        this.timers.add(timer);
        return;
      }
      case "EmitProgress": {
        const e: ProgressEvent = {
          recording_id: this.state.recording_id!,
          engine: "bullmq",
          step: i.step,
          status: i.status,
          at: new Date().toISOString(),
          ...(i.track_index === undefined ? {} : { track_index: i.track_index }),
          ...(i.message === undefined ? {} : { message: i.message }),
          ...(i.duration_ms === undefined ? {} : { duration_ms: i.duration_ms }),
          ...(i.worker_id === undefined ? {} : { worker_id: i.worker_id }),
        };
        try {
          this.deps.onProgress?.(e);
        } catch (err) {
          log.warn({ err }, "progress hook failed");
        }
        return;
      }
      case "Finish": {
        this.close();
        await this.deps.eventLog.finishRun(this.runId, "succeeded", this.state, null);
        log.info({ events: this.state.seq }, "pipeline run succeeded");
        this.settle.resolve(i.result);
        return;
      }
      case "Fail": {
        this.close();
        await this.deps.eventLog.finishRun(this.runId, "failed", this.state, i.reason);
        await this.removeWaitingJobs();
        log.warn({ reason: i.reason }, "pipeline run failed");
        this.settle.reject(this.failure(i));
        return;
      }
    }
  }

  private failure(i: Extract<Instruction, { type: "Fail" }>): Error {
    if (!i.step) return i.reason.startsWith("cancelled:") ? new PipelineAbortedError() : new Error(i.reason);
    const key = i.track_index === undefined ? i.step : `${i.step}[${i.track_index}]`;
    const task = this.state.tasks[key];
    const where = i.track_index === undefined ? "" : ` for track ${i.track_index} (${this.state.input?.tracks[i.track_index]?.participant ?? "?"})`;
    const detail = `${task?.error ?? i.reason} (${task?.attempt ?? 1} attempt(s))`;
    return new PipelineStepError(i.step, i.track_index, new Error(detail), where);
  }

  private async check(id: string): Promise<void> {
    const run = this.pending.get(id);
    if (!run || this.closed) return;
    const queue = this.deps.queues.get(run.step);
    // one cheap round trip for jobs still running; the job itself only once it has finished
    const state = await queue.getJobState(id);
    if (state !== "completed" && state !== "failed" && state !== "unknown") return;
    const job = await Job.fromId(queue, id);
    if (!job) this.onJobFailed(id, "the job is no longer in the queue");
    else if (state === "completed") this.onJobCompleted(id, job.returnvalue);
    else this.onJobFailed(id, job.failedReason ?? "unknown reason");
  }

  private async removeWaitingJobs(): Promise<void> {
    for (const [id, run] of this.pending) {
      try {
        await this.deps.queues.get(run.step).remove(id);
      } catch {
        // running jobs are locked by their worker and finish on their own; their results are dropped
      }
    }
  }

  private close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const id of this.pending.keys()) this.deps.unroute(id);
  }

  private crash(err: unknown): void {
    if (this.closed) return;
    const e = err instanceof Error ? err : new Error(String(err));
    this.deps.log.error({ err: e }, "pipeline run shell crashed");
    this.close();
    void this.deps.eventLog.finishRun(this.runId, "failed", this.state, `shell error: ${e.message}`).catch(() => undefined);
    this.settle.reject(e);
  }
}

function resultEvent(run: RunStep, value: unknown): PipelineEventInput {
  const base = {
    id: `result:${run.job_id}`,
    step: run.step,
    ...(run.track_index === undefined ? {} : { track_index: run.track_index }),
    attempt: run.attempt,
  };
  const parsed = StepJobResult.safeParse(value);
  if (!parsed.success) return { type: "StepFailed", ...base, error: "the job returned an unreadable result", retryable: true };
  const r = parsed.data;
  const stamp = { duration_ms: r.duration_ms, worker_id: r.worker_id };
  return r.ok
    ? { type: "StepSucceeded", ...base, output: r.output, ...stamp }
    : { type: "StepFailed", ...base, error: r.error, retryable: r.retryable, ...(r.failure ? { failure: r.failure } : {}), ...stamp };
}
