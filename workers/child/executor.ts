/**
 * A drop-in for `runStep` in worker hosts: steps marked `heavy` in the step table run in
 * a child process through the runner, the others in this process. Both parse the input
 * and validate the output with the step's contract, so the caller cannot tell them apart
 * (except that a crashed child surfaces as WorkerCrashError instead of killing the host).
 */
import type { z } from "zod/v4";
import { PublicError } from "../../pipeline/failures.ts";
import { runStep, StepInputError, StepOutputError, steps, type StepDeps, type StepTable } from "../../pipeline/steps/index.ts";
import type { Logger } from "pino";
import type { Config } from "../../pipeline/config.ts";
import { childStepRunnerOptions, createChildStepRunner, type ChildStepRunner, type ChildStepRunnerOptions } from "./runner.ts";

export type StepExecutor = <K extends keyof StepTable>(name: K, rawInput: unknown, deps: StepDeps) => Promise<z.infer<StepTable[K]["output"]>>;

export interface StepExecutorOptions {
  /** null: run everything in-process (HEAVY_STEPS_IN_CHILD=false) */
  runner: ChildStepRunner | null;
  /**
   * How many times a heavy step whose child process died under it (killed, crashed, hung
   * and replaced) is run again here in a fresh child before the step fails (default 0).
   * The process dying is not the step's fault: re-running it here spends none of the
   * orchestrator's retries, which stay for the step's own errors.
   */
  infraReruns?: number;
  log?: Logger;
}

/** The child running the step died or hung: the process's fault, not the step's. */
const INFRASTRUCTURE_FAULTS = new Set(["WorkerCrashError", "ChildUnresponsiveError"]);
/**
 * A decoder process the step started was killed by a signal (the chaos run: `kill -9` of
 * pocketsphinx mid-decode failed the track as "could not transcribe this audio"). Errors
 * cross the child boundary as text, so this is read from the message.
 */
const DECODER_KILLED = /\b(pocketsphinx\w*|ffmpeg|ffprobe|sox)\b[^\n]{0,40}?\b(exited with|killed by|terminated by) (signal )?SIG(KILL|TERM|INT|QUIT|ABRT|SEGV|BUS|PIPE)\b/;
export const isInfrastructureFault = (err: unknown): boolean => {
  const e = err as { name?: string; message?: unknown } | undefined;
  return INFRASTRUCTURE_FAULTS.has(e?.name ?? "") || (typeof e?.message === "string" && DECODER_KILLED.test(e.message));
};

export function createStepExecutor(o: StepExecutorOptions): StepExecutor {
  return async (name, rawInput, deps) => {
    const def = steps[name];
    // a track starting to prepare means its transcription follows: load the recognizer's
    // model now, beside ffmpeg, where it will run (the shared child, or this process)
    if (name === "prepare_track") {
      if (o.runner) o.runner.warmShared();
      else deps.asr.warm?.();
    }
    if (!def.heavy || !o.runner) return runStep(name, rawInput, deps);
    // fail fast on bad input here: no child needed to say so
    const parsed = def.input.safeParse(rawInput);
    if (!parsed.success) throw new StepInputError(name, parsed.error);
    const reruns = o.infraReruns ?? 0;
    let out: unknown;
    for (let attempt = 0; ; attempt++) {
      try {
        out = await o.runner.run(name, parsed.data, {
          scratchDir: deps.scratchDir,
          ...(deps.signal ? { signal: deps.signal } : {}),
          ...(deps.progress ? { onProgress: (p: unknown) => deps.progress!(p as Parameters<NonNullable<StepDeps["progress"]>>[0]) } : {}),
        });
        break;
      } catch (err) {
        if (!isInfrastructureFault(err) || deps.signal?.aborted) throw err;
        if (attempt >= reruns) {
          if (reruns === 0) throw err;
          // a step that takes its process down every time still fails, saying so
          throw new PublicError("worker_crashed", `the process running ${name} stopped ${attempt + 1} times in a row (${reruns} fresh processes tried); the step failed`, {
            cause: err,
            detail: (err as Error).message,
          });
        }
        (deps.log ?? o.log)?.warn({ err: (err as Error).message, step: name, rerun: attempt + 1, of: reruns }, "the step's process died under it: running the step again in a fresh process (no retry spent)");
      }
    }
    // everything crossing a process boundary is JSON: validate it again
    const checked = def.output.safeParse(out);
    if (!checked.success) throw new StepOutputError(name, checked.error);
    return checked.data as z.infer<StepTable[typeof name]["output"]>;
  };
}

/**
 * The worker hosts' step function per config: heavy steps in child processes when
 * HEAVY_STEPS_IN_CHILD (the default), everything in-process otherwise. `close()` stops the
 * children; call it after the host has drained.
 */
export function createHeavyStepIsolation(
  config: Config,
  deps: { log?: Logger; env?: NodeJS.ProcessEnv; overrides?: Partial<ChildStepRunnerOptions> } = {},
): { runStepFn: StepExecutor; runner: ChildStepRunner | null; close(): Promise<void> } {
  const runner = config.HEAVY_STEPS_IN_CHILD
    ? createChildStepRunner(childStepRunnerOptions(config, { ...(deps.log ? { log: deps.log } : {}), ...(deps.env ? { env: deps.env } : {}), ...deps.overrides }))
    : null;
  return {
    runStepFn: createStepExecutor({ runner, infraReruns: config.STEP_INFRA_RERUNS, ...(deps.log ? { log: deps.log } : {}) }),
    runner,
    close: async () => runner?.close(),
  };
}
