/**
 * Starts the worker host of one engine in this process and adapts it to what the
 * supervisor protocol needs (`active()` + `stop(drainMs)`). Used by child-main.ts and by
 * `trackscribe workers` without -j. Heavy steps (step table `heavy: true`) run in child
 * processes (workers/child) unless HEAVY_STEPS_IN_CHILD=false; those children are
 * stopped after the host has drained.
 */
import type { Logger } from "pino";
import { asrCapabilities } from "../../adapters/asr/index.ts";
import type { Config } from "../../pipeline/config.ts";
import { createHeavyStepIsolation } from "../child/executor.ts";
import { openStorage } from "../child/open-storage.ts";
import type { WorkerIdentity } from "../identity.ts";
import type { SupervisedHost } from "./child-runtime.ts";

export type WorkerEngine = "conductor" | "bullmq";

export interface EngineHostDeps {
  log: Logger;
  identity: WorkerIdentity;
}

/**
 * Whether a worker host loads its speech recognizer as it starts (in the heavy-step child
 * that will use it): when the ASR engine declares it worth it (`preload`: pocketsphinx
 * keeping its decoders loaded, ASR_IDLE_SECONDS=0) and the host serves transcribe_track,
 * so that no recording waits for a model load (≈0.5 s of CPU per decoder). Otherwise the
 * engine loads when a recording's first track starts preparing, beside ffmpeg.
 */
export function preloadsDecoders(engine: WorkerEngine, config: Pick<Config, "ASR_ENGINE" | "ASR_IDLE_SECONDS" | "CONDUCTOR_TASKS">): boolean {
  const transcribes = engine === "bullmq" || !config.CONDUCTOR_TASKS || config.CONDUCTOR_TASKS.split(",").includes("transcribe_track");
  return transcribes && asrCapabilities(config).preload;
}

export async function startEngineHost(engine: WorkerEngine, config: Config, deps: EngineHostDeps): Promise<SupervisedHost> {
  const storage = await openStorage(config);
  const heavy = createHeavyStepIsolation(config, { log: deps.log });
  let host: SupervisedHost;
  try {
    // the step children boot before the first task is taken (see ChildStepRunner.prestart)
    await heavy.runner?.prestart();
    if (engine === "bullmq") {
      const { startBullmqWorkerHostFromConfig } = await import("../bullmq/main.ts");
      const proc = await startBullmqWorkerHostFromConfig(config, { log: deps.log, storage, identity: deps.identity, runStepFn: heavy.runStepFn });
      host = { active: () => proc.host.active(), stop: (ms) => proc.stop(ms) };
    } else {
      const { startConductorProcessHost } = await import("../conductor/process-host.ts");
      const proc = await startConductorProcessHost(config, { log: deps.log, identity: deps.identity, storage, runStepFn: heavy.runStepFn });
      host = { active: () => proc.active(), stop: (ms) => proc.stop(ms) };
    }
  } catch (err) {
    await heavy.close();
    throw err;
  }
  const preload = heavy.runner !== null && preloadsDecoders(engine, config);
  if (preload) heavy.runner!.warmShared();
  deps.log.info({ heavy_steps_in_child: heavy.runner !== null, asr_preloaded: preload }, "worker host started");
  return {
    active: () => host.active(),
    async stop(drainMs) {
      try {
        return await host.stop(drainMs);
      } finally {
        await heavy.close();
      }
    },
  };
}
