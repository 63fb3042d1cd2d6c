/** Everything a step may use, injected by the adapter that runs it. */
import type { Logger } from "pino";
import type { Result } from "../contracts/index.ts";
import type { DurationLimits } from "../audio/errors.ts";
import type { AsrEngine, AudioTools, ProgressSink, Storage, TextModel } from "../ports.ts";

/** Where finalize writes the Result (Postgres in the service; nothing for a CLI run). */
export interface ResultSink {
  /** `extras`: where the mixdown went (finalize passes them when it has them) */
  saveResult(recordingId: string, namespace: string, result: Result, extras?: { audio_key?: string; waveform?: number[] }): Promise<void>;
}

export interface StepDeps {
  storage: Storage;
  audio: AudioTools;
  asr: AsrEngine;
  text: TextModel;
  /** a private scratch directory for this step run; the adapter creates and removes it */
  scratchDir: string;
  /** dB by which another track must be louder over a word for it to count as bleed */
  bleedThresholdDb: number;
  /** duration limits a decoded track must meet (MAX_TRACK_SECONDS, MAX_RECORDING_SECONDS, MIN_TRACK_SECONDS) */
  limits?: DurationLimits;
  results?: ResultSink;
  progress?: ProgressSink;
  signal?: AbortSignal;
  log?: Logger;
}
