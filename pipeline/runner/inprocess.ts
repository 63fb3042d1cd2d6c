/**
 * The in-process engine: runs the step table in the workflow's order inside this process.
 *
 *   prepare_track ×N (≤ concurrency) → plan_speech → transcribe_track ×N (≤ concurrency)
 *   → merge_transcripts → suppress_bleed → detect_topics
 *   → generate_title ∥ generate_summary ∥ mixdown → finalize
 *
 * Every step goes through `runStep` (input parsed, output validated) exactly as the
 * Conductor and BullMQ workers do; each step run gets its own scratch directory, removed
 * afterwards. The first failing step aborts the others (via the AbortSignal in StepDeps),
 * waits for those already running, and fails the run with an error naming the step and
 * track.
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Logger } from "pino";
import { PipelineInput, type ProgressEvent, type Result, type StepName } from "../contracts/index.ts";
import { runStep, type StepTable } from "../steps/index.ts";
import { speechTracks } from "../steps/transcribe_track.ts";
import type { StepDeps } from "../steps/deps.ts";
import type { EngineRun, PipelineEngine } from "./engine.ts";
import { runLimited } from "./limit.ts";

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

export function createInProcessEngine(options: InProcessEngineOptions): PipelineEngine {
  const concurrency = Math.max(1, options.concurrency ?? os.availableParallelism());
  const runOne = options.runStep ?? runStep;
  return {
    name: "inprocess",
    async run(rawInput, hooks = {}) {
      const input = PipelineInput.parse(rawInput);
      const { recording_id, namespace, language } = input;
      const tracks = [...input.tracks].sort((a, b) => a.track_index - b.track_index);
      const expected = tracks.map((t) => t.track_index);
      const log = options.log?.child({ recording_id, engine: "inprocess" });
      const abort = new AbortController();
      /** the step failure that stopped the run (siblings then fail with "aborted") */
      let firstFailure: Error | undefined;
      const onOuterAbort = (): void => abort.abort(hooks.signal?.reason);
      if (hooks.signal?.aborted) throw new PipelineAbortedError();
      hooks.signal?.addEventListener("abort", onOuterAbort, { once: true });

      const emit = (e: Omit<ProgressEvent, "recording_id" | "engine" | "at" | "worker_id">): void => {
        hooks.onProgress?.({
          recording_id,
          engine: "inprocess",
          ...(options.workerId ? { worker_id: options.workerId } : {}),
          at: new Date().toISOString(),
          ...e,
        });
      };

      async function exec<K extends keyof StepTable>(step: K, stepInput: unknown, trackIndex?: number) {
        if (abort.signal.aborted) throw hooks.signal?.aborted ? new PipelineAbortedError() : new Error("cancelled: another step failed");
        const where = trackIndex === undefined ? "" : ` for track ${trackIndex} (${tracks[trackIndex]?.participant ?? "?"})`;
        const started = performance.now();
        emit({ step, status: "started", ...(trackIndex === undefined ? {} : { track_index: trackIndex }) });
        await mkdir(options.scratchRoot, { recursive: true });
        const scratchDir = await mkdtemp(path.join(options.scratchRoot, `${step}${trackIndex === undefined ? "" : `-${trackIndex}`}-`));
        const stepLog = log?.child({ step, ...(trackIndex === undefined ? {} : { track_index: trackIndex }) });
        try {
          if (abort.signal.aborted) throw new Error("cancelled: another step failed");
          const out = await runOne(step, stepInput, options.stepDeps(scratchDir, { signal: abort.signal, log: stepLog }));
          const duration_ms = Math.round(performance.now() - started);
          emit({ step, status: "succeeded", duration_ms, ...(trackIndex === undefined ? {} : { track_index: trackIndex }) });
          stepLog?.debug({ duration_ms }, "step succeeded");
          return out;
        } catch (err) {
          const duration_ms = Math.round(performance.now() - started);
          const error = hooks.signal?.aborted ? new PipelineAbortedError() : new PipelineStepError(step, trackIndex, err, where);
          emit({ step, status: "failed", duration_ms, message: error.message, ...(trackIndex === undefined ? {} : { track_index: trackIndex }) });
          if (!abort.signal.aborted) {
            firstFailure = error;
            stepLog?.error({ err, duration_ms }, "step failed");
            abort.abort(error);
          }
          throw error;
        } finally {
          await rm(scratchDir, { recursive: true, force: true });
        }
      }

      const started = performance.now();
      emit({ step: "pipeline", status: "started" });
      // the decoders load their model while ffmpeg prepares the tracks
      options.stepDeps(options.scratchRoot).asr.warm?.();
      try {
        const prepared = await runLimited(
          tracks.map((track) => () => exec("prepare_track", { recording_id, namespace, track }, track.track_index)),
          concurrency,
        );
        const plan = await exec("plan_speech", { recording_id, namespace, language, expected_tracks: expected, prepared });
        // the ASR engine bounds the decoders and shares them between tracks; queueing more
        // tracks than decoders lets it fill every core to the end (bounded: each holds its audio)
        const atOnce = Math.max(concurrency, TRACKS_TRANSCRIBED_AT_ONCE);
        // the tracks handed over together form the recognizer's batch (no wait for the rest)
        const speech_tracks = Math.min(speechTracks(plan), atOnce);
        const transcripts = await runLimited(
          plan.tracks.map((track) => () => exec("transcribe_track", { recording_id, namespace, language, track, speech_tracks }, track.track_index)),
          atOnce,
        );
        const merged = await exec("merge_transcripts", { expected_tracks: expected, transcripts });
        const clean = await exec("suppress_bleed", { words: merged.words, tracks: plan.tracks });
        const { topics } = await exec("detect_topics", { language, words: clean.words });
        const [titleOut, summaryOut, mix] = (await runLimited<unknown>(
          [
            () => exec("generate_title", { language, topics }),
            () => exec("generate_summary", { language, topics }),
            () => exec("mixdown", { recording_id, namespace, tracks: plan.tracks, peaks: options.peaks ?? 800 }),
          ],
          3,
        )) as [{ title: string }, { short_summary: string; long_summary: string }, { audio_key: string; waveform: number[]; duration: number }];
        const result: Result = await exec("finalize", {
          recording_id,
          namespace,
          tracks,
          duration: plan.duration,
          words: clean.words,
          topics,
          title: titleOut.title,
          short_summary: summaryOut.short_summary,
          long_summary: summaryOut.long_summary,
          audio_key: mix.audio_key,
          waveform: mix.waveform,
        });
        const duration_ms = Math.round(performance.now() - started);
        emit({ step: "pipeline", status: "completed", duration_ms });
        log?.info(
          { duration_ms, words: result.words.length, topics: result.topics.length, bleed_dropped: clean.dropped, decoded_seconds: plan.planned_seconds, track_seconds: plan.track_seconds },
          "pipeline completed",
        );
        const run: EngineRun = { engine: "inprocess" };
        return { result, run };
      } catch (err) {
        const error = hooks.signal?.aborted ? new PipelineAbortedError() : (firstFailure ?? err);
        emit({ step: "pipeline", status: "failed", duration_ms: Math.round(performance.now() - started), message: error instanceof Error ? error.message : String(error) });
        throw error;
      } finally {
        hooks.signal?.removeEventListener("abort", onOuterAbort);
      }
    },
    async close() {
      // nothing to close: the ports belong to the caller's wiring function
    },
  };
}
