/**
 * Builds the ports every step needs (audio tools, ASR engine, text model) once per
 * process, and returns a small factory that hands each step run its StepDeps with a
 * private scratch directory. Used by the in-process runner (bin/commands/process.ts) and
 * by the worker hosts, so all engines run the steps with identical dependencies.
 */
import type { Logger } from "pino";
import { createAsrEngine } from "../adapters/asr/index.ts";
import { createFfmpegAudioTools } from "../adapters/audio/ffmpeg.ts";
import { configSection, type Config } from "../pipeline/config.ts";
import { createTextModel } from "../adapters/nlp/index.ts";
import type { AsrEngine, AudioTools, Storage, TextModel } from "../pipeline/ports.ts";
import type { ResultSink, StepDeps } from "../pipeline/steps/deps.ts";

export interface StepPortsDeps {
  storage: Storage;
  log: Logger;
  results?: ResultSink;
  /** overrides, e.g. a text model built elsewhere; built from config when absent */
  audio?: AudioTools;
  asr?: AsrEngine;
  text?: TextModel;
}

/** Per-run additions to the shared ports. */
export type StepExtras = Partial<Pick<StepDeps, "progress" | "signal" | "log" | "results">>;

export type StepDepsFactory = (scratchDir: string, extras?: StepExtras) => StepDeps;

export function createStepPorts(config: Config, deps: StepPortsDeps): StepDepsFactory {
  // decoders never run past the longest track allowed, whatever a file's header claims
  const audio = deps.audio ?? createFfmpegAudioTools({ maxSeconds: config.MAX_TRACK_SECONDS });
  // each adapter is handed its own section of the configuration, nothing else
  const asr = deps.asr ?? createAsrEngine(configSection(config, "asr"));
  const text = deps.text ?? createTextModel(configSection(config, "text"), { log: deps.log });
  const limits = { maxTrackSeconds: config.MAX_TRACK_SECONDS, maxRecordingSeconds: config.MAX_RECORDING_SECONDS, minTrackSeconds: config.MIN_TRACK_SECONDS };
  return (scratchDir, extras = {}) => ({
    storage: deps.storage,
    audio,
    asr,
    text,
    scratchDir,
    bleedThresholdDb: config.BLEED_THRESHOLD_DB,
    limits,
    results: extras.results ?? deps.results,
    progress: extras.progress,
    signal: extras.signal,
    log: extras.log ?? deps.log,
  });
}
