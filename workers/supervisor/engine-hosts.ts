/**
 * Starts the worker host of one engine in this process and adapts it to what the
 * supervisor protocol needs (`active()` + `stop(drainMs)`). Used by child-main.ts and by
 * `trackscribe workers` without -j. Heavy steps (step table `heavy: true`) run in child
 * processes (workers/child) unless HEAVY_STEPS_IN_CHILD=false; those children are
 * stopped after the host has drained.
 */
import type { Logger } from "pino";
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

export async function startEngineHost(engine: WorkerEngine, config: Config, deps: EngineHostDeps): Promise<SupervisedHost> {
  const storage = await openStorage(config);
  const heavy = createHeavyStepIsolation(config, { log: deps.log });
  let host: SupervisedHost;
  try {
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
  deps.log.info({ heavy_steps_in_child: heavy.runner !== null }, "worker host started");
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
