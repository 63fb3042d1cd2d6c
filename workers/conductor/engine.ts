/**
 * The Conductor engine for `trackscribe process --engine conductor`: registers the
 * definitions, starts workers in this process (unless --no-workers), starts the workflow,
 * follows it to the end, and returns the workflow output parsed as the Result contract.
 */
import { loadCarried } from "./carried.ts";
import { randomUUID } from "node:crypto";
import { Result, type PipelineInput, type ProgressEvent } from "../../pipeline/contracts/index.ts";
import type { Config } from "../../pipeline/config.ts";
import type { PipelineEngine } from "../../pipeline/runner/engine.ts";
import type { Logger } from "pino";
import type { Storage } from "../../pipeline/ports.ts";
import { createStepPorts } from "../step-ports.ts";
import { createConductorApi, waitForConductor, type ConductorApi, type WorkflowRecord } from "../../adapters/conductor/client.ts";
import { registerDefinitions, WORKFLOW_NAME, WORKFLOW_VERSION } from "./definitions.ts";
import { startConductorRuntime, type ConductorRuntime } from "./runtime.ts";

export class WorkflowFailedError extends Error {
  override readonly name = "WorkflowFailedError";
  constructor(readonly workflowId: string, readonly status: string, reason: string) {
    super(`workflow ${workflowId} ${status}: ${reason}`);
  }
}

/**
 * How long a follower with no workers in its process waits between two looks at a
 * workflow's status, `elapsed` ms after it started following: 100 ms at first, then 1 % of
 * the time followed so far, at most 1 s. The end is then noticed on average within 0.5 % of
 * the run time (at most 0.5 s late), while an hour-long run costs about 3,800 looks instead
 * of 36,000: each one a request that the server and this process answer with CPU
 * the decoders on a small machine want (on a 2-core machine, a 10-minute meeting ran
 * 2.5 s faster with 1 s looks than with 100 ms ones).
 */
export function followPollMs(elapsed: number): number {
  return Math.min(1000, Math.max(100, Math.round(elapsed / 100)));
}

/**
 * Follow a workflow until it ends, reporting each task once as it finishes.
 *
 * The end is watched with the cheap form of the call (the workflow's status alone, every
 * `pollMs`: given, 1 s with the workers here to say when to look, else `followPollMs`); the tasks, whose inputs and outputs carry whole transcripts, are read
 * only every `progressMs` for the progress report (not at all without `onProgress`) and
 * once at the end. Reading them every 250 ms cost the server CPU that the decoders on the
 * same machine wanted, and noticing the end late added up to a poll to every run.
 */
export async function followWorkflow(
  api: ConductorApi,
  id: string,
  opts: {
    recordingId: string;
    onProgress?: (e: ProgressEvent) => void;
    pollMs?: number;
    progressMs?: number;
    signal?: AbortSignal;
    /** when workers run in this process: a task result of this workflow was acknowledged (look again now) */
    changed?: (workflowId: string, ms: number) => Promise<unknown>;
  },
): Promise<WorkflowRecord> {
  const seen = new Set<string>();
  // told of the end by the workers in this process: look now and then only (each look is a
  // request the server answers with CPU the decoders on a small machine want)
  const started = Date.now();
  const pollMs = (): number => opts.pollMs ?? (opts.changed ? 1000 : followPollMs(Date.now() - started));
  const progressMs = opts.progressMs ?? 1000;
  const report = (wf: WorkflowRecord): void => {
    for (const t of wf.tasks) {
      const key = `${t.taskId}:${t.status}`;
      if (seen.has(key) || !["COMPLETED", "FAILED", "FAILED_WITH_TERMINAL_ERROR", "TIMED_OUT"].includes(t.status)) continue;
      if (["JOIN", "FORK", "FORK_JOIN", "FORK_JOIN_DYNAMIC"].includes(t.taskType)) continue;
      seen.add(key);
      const track = (t.inputData.track as { track_index?: number } | undefined)?.track_index;
      opts.onProgress?.({
        recording_id: opts.recordingId,
        engine: "conductor",
        step: (t.taskType === "plan_tracks" ? "pipeline" : t.taskType) as ProgressEvent["step"],
        ...(typeof track === "number" ? { track_index: track } : {}),
        status: t.status === "COMPLETED" ? "succeeded" : "failed",
        duration_ms: t.endTime && t.startTime ? t.endTime - t.startTime : undefined,
        worker_id: t.workerId ?? undefined,
        at: new Date(t.endTime || Date.now()).toISOString(),
      });
    }
  };
  let lastProgress = Date.now();
  const wait = async (): Promise<void> => {
    const ms = pollMs();
    if (!opts.changed || (await opts.changed(id, ms)) === "closed") await new Promise((r) => setTimeout(r, ms));
  };
  // told of the end here: the workflow has only just started, nothing to look at yet
  if (opts.changed) await wait();
  for (;;) {
    opts.signal?.throwIfAborted();
    const status = await api.workflowStatus(id);
    if (status !== "RUNNING" && status !== "PAUSED") {
      const full = await api.getWorkflow(id, true);
      report(full);
      return full;
    }
    if (opts.onProgress && Date.now() - lastProgress >= progressMs) {
      lastProgress = Date.now();
      report(await api.getWorkflow(id, true));
    }
    await wait();
  }
}

export function createConductorEngine(config: Config, opts: { storage: Storage; log: Logger; startWorkers: boolean }): PipelineEngine {
  const api = createConductorApi(config.CONDUCTOR_SERVER_URL);
  let runtime: ConductorRuntime | undefined;
  return {
    name: "conductor",
    async run(input: PipelineInput, hooks = {}) {
      if (opts.startWorkers && !runtime) {
        const stepDeps = createStepPorts(config, { storage: opts.storage, log: opts.log });
        runtime = await startConductorRuntime(config, { storage: opts.storage, stepDeps, log: opts.log, startsWorkflows: true });
      } else if (!runtime) {
        await waitForConductor(api, { timeoutMs: config.CONDUCTOR_WAIT_SECONDS * 1000, log: (m) => opts.log.info(m) });
        await registerDefinitions(api);
      }
      const id = await api.startWorkflow(WORKFLOW_NAME, WORKFLOW_VERSION, input, `${input.recording_id}:${randomUUID().slice(0, 8)}`);
      opts.log.info({ workflow_id: id, recording_id: input.recording_id }, "workflow started");
      const hints = runtime?.hints;
      // the first task is queued when the start call returns: this process's poll for it asks now
      hints?.wake(runtime!.successors.start.map((s) => s.type));
      const wf = await followWorkflow(api, id, {
        recordingId: input.recording_id,
        onProgress: hooks.onProgress,
        signal: hooks.signal,
        ...(hints ? { changed: (wid: string, ms: number) => hints.waitForWorkflow(wid, ms) } : {}),
      });
      if (wf.status !== "COMPLETED") throw new WorkflowFailedError(id, wf.status, wf.reasonForIncompletion ?? "no reason given");
      // finalize's words and topics travel as storage refs (./carried.ts)
      return { result: Result.parse(await loadCarried(opts.storage, (wf.output ?? {}) as Record<string, unknown>)), run: { engine: "conductor", workflow_id: id } };
    },
    async close() {
      await runtime?.stop(config.DRAIN_TIMEOUT_SECONDS * 1000);
      runtime = undefined;
    },
  };
}
