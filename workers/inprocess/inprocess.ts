/**
 * The in-process engine: an in-memory shell around the pure pipeline state machine
 * (pipeline/state), the same machine the BullMQ engine drives, so both run the one graph
 * (pipeline/state/graph.ts) with its inputs, joins and order:
 *
 *   prepare_track ×N → plan_speech → transcribe_track ×N → merge_transcripts
 *   → suppress_bleed → detect_topics
 *   → generate_title ∥ generate_summary ∥ extract_action_items ∥ mixdown → finalize
 *
 * Events are handled one at a time (the machine is synchronous; results arrive as
 * callbacks). RunStep instructions run the step in this process through `runStep` (input
 * parsed, output validated), each in its own scratch directory removed afterwards;
 * per-step limits keep today's load shape: tracks prepared `concurrency` at a time and
 * transcribed up to max(concurrency, 8) at a time (the ASR engine's shared decoders bound
 * the decoding itself). Every step gets one attempt: the first failing step fails the
 * run, aborts the steps still running (AbortSignal in StepDeps), waits for them, and the
 * run rejects with a PipelineStepError naming the step and track.
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Logger } from "pino";
import { PipelineInput, type ProgressEvent, type Result, type StepName } from "../../pipeline/contracts/index.ts";
import { handle, initialState, taskKey, type Instruction, type PipelineEventInput, type PipelineState, type RunStep } from "../../pipeline/state/index.ts";
import { runStep } from "../../pipeline/steps/index.ts";
import type { StepDeps } from "../../pipeline/steps/deps.ts";
import type { EngineRun, PipelineEngine } from "../../pipeline/runner/engine.ts";
import { publicFailure } from "../../pipeline/failures.ts";

export { stageManifest, ManifestFileError } from "./stage.ts";

export interface InProcessEngineOptions {
  /** StepDeps for one step run with the given scratch directory (see workers/step-ports.ts) */
  stepDeps: (scratchDir: string, extras?: { signal?: AbortSignal; log?: Logger }) => StepDeps;
  /** parent of the per-step scratch directories */
  scratchRoot: string;
  /** tracks prepared / transcribed at once (default: available cores) */
  concurrency?: number;
  /** waveform peaks computed by mixdown (default 800) */
  peaks?: number;
  log?: Logger;
  /** recorded in progress events */
  workerId?: string;
  /** how one step is run (default: `runStep` of the step table); tests pass their own */
  runStep?: typeof runStep;
}

export class PipelineStepError extends Error {
  override readonly name = "PipelineStepError";
  constructor(
    readonly step: StepName,
    readonly trackIndex: number | undefined,
    override readonly cause: unknown,
    where: string,
  ) {
    super(`${step}${where} failed: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

export class PipelineAbortedError extends Error {
  override readonly name = "PipelineAbortedError";
  constructor() {
    super("the run was cancelled");
  }
}

const TRACKS_TRANSCRIBED_AT_ONCE = 8;

/** A counting gate: at most `limit` holders; waiters get a slot in arrival order. */
interface Gate {
  limit: number;
  active: number;
  waiting: (() => void)[];
}

export function createInProcessEngine(options: InProcessEngineOptions): PipelineEngine {
  const concurrency = Math.max(1, options.concurrency ?? os.availableParallelism());
  const runOne = options.runStep ?? runStep;
  // the ASR engine bounds the decoders and shares them between tracks; queueing more tracks
  // than decoders lets it fill every core to the end (bounded: each holds its audio)
  const transcribeAtOnce = Math.max(concurrency, TRACKS_TRANSCRIBED_AT_ONCE);
  /** steps run at most this many at once in this process (the others: all that are ready) */
  const limits: Partial<Record<StepName, number>> = { prepare_track: concurrency, transcribe_track: transcribeAtOnce };
  /** what this process changes in a step's input before running it */
  const adjustInput: Partial<Record<StepName, (input: Record<string, unknown>) => Record<string, unknown>>> = {
    // the tracks handed over together form the recognizer's batch (no wait for the rest)
    transcribe_track: (i) => (typeof i.speech_tracks === "number" ? { ...i, speech_tracks: Math.min(i.speech_tracks, transcribeAtOnce) } : i),
    mixdown: (i) => ({ ...i, peaks: options.peaks ?? 800 }),
  };

  return {
    name: "inprocess",
    async run(rawInput, hooks = {}) {
      const input = PipelineInput.parse(rawInput);
      const { recording_id } = input;
      if (hooks.signal?.aborted) throw new PipelineAbortedError();
      const log = options.log?.child({ recording_id, engine: "inprocess" });
      const abort = new AbortController();
      const started = performance.now();
      const gates = new Map<StepName, Gate>();
      const running = new Set<Promise<void>>();
      const timers = new Set<NodeJS.Timeout>();
      /** the error each failed attempt threw, by job id (the run's error names the first one) */
      const causes = new Map<string, unknown>();
      let state: PipelineState = initialState();
      let closed = false;

      const emit = (e: Omit<ProgressEvent, "recording_id" | "engine" | "at" | "worker_id">): void => {
        hooks.onProgress?.({ recording_id, engine: "inprocess", ...(options.workerId ? { worker_id: options.workerId } : {}), at: new Date().toISOString(), ...e });
      };
      const track = (t: number | undefined): { track_index?: number } => (t === undefined ? {} : { track_index: t });
      const worker = (): { worker_id?: string } => (options.workerId ? { worker_id: options.workerId } : {});

      let settle!: { resolve(r: Result): void; reject(e: unknown): void };
      const done = new Promise<Result>((resolve, reject) => {
        settle = { resolve, reject };
      });

      const feed = (event: PipelineEventInput): void => {
        if (closed) return;
        try {
          const r = handle(state, event);
          state = r.state;
          if (r.outcome !== "applied") log?.debug({ event_id: event.id, type: event.type, outcome: r.outcome, note: r.note }, "event not applied");
          for (const i of r.instructions) execute(i);
        } catch (err) {
          // a bug in the machine (IllegalTransitionError) or a malformed event: the run cannot go on
          log?.error({ err }, "in-process shell crashed");
          void close().then(() => settle.reject(err));
        }
      };

      /** a slot of the step's gate, or false when the run ended while waiting for one */
      const acquire = async (step: StepName): Promise<boolean> => {
        const limit = limits[step];
        if (limit === undefined) return !closed;
        let gate = gates.get(step);
        if (!gate) gates.set(step, (gate = { limit, active: 0, waiting: [] }));
        if (gate.active < gate.limit) gate.active++;
        // a finishing task hands its slot straight to the next waiter (no one can slip in between)
        else await new Promise<void>((r) => gate.waiting.push(r));
        if (closed) {
          release(step);
          return false;
        }
        return true;
      };
      const release = (step: StepName): void => {
        const gate = gates.get(step);
        if (!gate) return;
        const next = gate.waiting.shift();
        if (next) next();
        else gate.active = Math.max(0, gate.active - 1);
      };

      const runTask = async (i: RunStep): Promise<void> => {
        if (!(await acquire(i.step))) return;
        const label = i.track_index === undefined ? i.step : `${i.step}-${i.track_index}`;
        const stepLog = log?.child({ step: i.step, ...track(i.track_index) });
        const t0 = performance.now();
        let scratchDir: string | undefined;
        let event: PipelineEventInput;
        const base = { id: `result:${i.job_id}`, step: i.step, ...track(i.track_index), attempt: i.attempt, ...worker() };
        try {
          emit({ step: i.step, status: "started", ...track(i.track_index) });
          await mkdir(options.scratchRoot, { recursive: true });
          scratchDir = await mkdtemp(path.join(options.scratchRoot, `${label}-`));
          if (abort.signal.aborted) throw new Error("cancelled: another step failed");
          const adjust = adjustInput[i.step];
          const stepInput = adjust ? adjust(i.input as Record<string, unknown>) : i.input;
          const output = await runOne(i.step, stepInput, options.stepDeps(scratchDir, { signal: abort.signal, log: stepLog }));
          const duration_ms = Math.round(performance.now() - t0);
          stepLog?.debug({ duration_ms }, "step succeeded");
          event = { type: "StepSucceeded", ...base, output, duration_ms };
        } catch (err) {
          const duration_ms = Math.round(performance.now() - t0);
          if (!closed) stepLog?.error({ err, duration_ms }, "step failed");
          causes.set(i.job_id, err);
          const retryable = (err as { retryable?: unknown }).retryable !== false;
          event = { type: "StepFailed", ...base, error: err instanceof Error ? err.message : String(err), retryable, failure: publicFailure(err), duration_ms };
        } finally {
          if (scratchDir) await rm(scratchDir, { recursive: true, force: true });
          release(i.step);
        }
        feed(event);
      };
      const failure = (i: Extract<Instruction, { type: "Fail" }>): Error => {
        if (hooks.signal?.aborted || !i.step) return hooks.signal?.aborted ? new PipelineAbortedError() : new Error(i.reason);
        const task = state.tasks[taskKey(i.step, i.track_index)];
        const job = task?.attempts[task.attempts.length - 1]?.job_id;
        const where = i.track_index === undefined ? "" : ` for track ${i.track_index} (${input.tracks.find((t) => t.track_index === i.track_index)?.participant ?? "?"})`;
        return new PipelineStepError(i.step, i.track_index, (job && causes.get(job)) ?? new Error(task?.error ?? i.reason), where);
      };

      const close = async (): Promise<void> => {
        closed = true;
        for (const t of timers) clearTimeout(t);
        abort.abort(new Error("the run ended"));
        // waiting tasks give up their turn; running ones see the abort and end
        for (const g of gates.values()) for (const w of g.waiting.splice(0)) w();
        while (running.size) await Promise.allSettled([...running]);
      };

      function execute(i: Instruction): void {
        switch (i.type) {
          case "RunStep": {
            const p = runTask(i).finally(() => running.delete(p));
            running.add(p);
            return;
          }
          case "ScheduleRetry": {
            const timer = setTimeout(() => {
              timers.delete(timer);
              feed({ type: "RetryTimerFired", id: `timer:${i.step}:${i.track_index ?? "-"}:${i.attempt}`, step: i.step, ...track(i.track_index), attempt: i.attempt });
            }, i.delay_ms);
            timers.add(timer);
            return;
          }
          case "EmitProgress": {
            // a step's 'started' is reported when it really starts (runTask), not when it is ready
            if (i.step !== "pipeline" && i.status === "started") return;
            const pipelineEnd = i.step === "pipeline" && i.status !== "started";
            emit({
              step: i.step,
              status: i.status,
              ...track(i.track_index),
              ...(i.message === undefined ? {} : { message: i.message }),
              ...(i.duration_ms !== undefined ? { duration_ms: i.duration_ms } : pipelineEnd ? { duration_ms: Math.round(performance.now() - started) } : {}),
            });
            return;
          }
          case "Finish": {
            const result = i.result;
            const out = <T>(k: string): T | undefined => state.tasks[k]?.output as T | undefined;
            const plan = out<{ planned_seconds: number; track_seconds: number }>("plan_speech");
            log?.info(
              {
                duration_ms: Math.round(performance.now() - started),
                words: result.words.length,
                topics: result.topics.length,
                action_items: result.action_items.length,
                bleed_dropped: out<{ dropped: number }>("suppress_bleed")?.dropped,
                decoded_seconds: plan?.planned_seconds,
                track_seconds: plan?.track_seconds,
              },
              "pipeline completed",
            );
            void close().then(() => settle.resolve(result));
            return;
          }
          case "Fail": {
            const error = failure(i);
            void close().then(() => settle.reject(error));
            return;
          }
        }
      }

      const onOuterAbort = (): void => feed({ type: "RecordingCancelled", id: "cancel", reason: "the run was cancelled" });
      hooks.signal?.addEventListener("abort", onOuterAbort, { once: true });
      // the decoders load their model while ffmpeg prepares the tracks
      options.stepDeps(options.scratchRoot).asr.warm?.();
      try {
        // every step gets one attempt here: a failure ends the run (as before the machine)
        feed({ type: "RecordingAccepted", id: "accepted", input, policy: { max_attempts: 1 } });
        const result = await done;
        const run: EngineRun = { engine: "inprocess" };
        return { result, run };
      } finally {
        hooks.signal?.removeEventListener("abort", onOuterAbort);
        if (!closed) await close();
      }
    },
    async close() {
      // nothing to close: the ports belong to the caller's wiring function
    },
  };
}
