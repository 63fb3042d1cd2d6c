/**
 * What `trackscribe process --engine <name>` and the API need from an engine: run one
 * PipelineInput to a Result. Implemented by the in-process runner (pipeline/runner),
 * Conductor (workers/conductor/engine.ts) and BullMQ (workers/bullmq/engine.ts).
 */
import type { PipelineInput, ProgressEvent, Result } from "../contracts/index.ts";

export interface EngineRun {
  engine: string;
  /** Conductor workflow id, BullMQ flow/run id, or absent for in-process runs */
  workflow_id?: string;
}

export interface PipelineEngine {
  readonly name: "inprocess" | "conductor" | "bullmq";
  run(input: PipelineInput, hooks?: { onProgress?: (e: ProgressEvent) => void; signal?: AbortSignal }): Promise<{ result: Result; run: EngineRun }>;
  close(): Promise<void>;
}
