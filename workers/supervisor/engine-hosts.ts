/**
 * Starts the worker host of one engine in this process and adapts it to what the
 * supervisor protocol needs (`active()` + `stop(drainMs)`). Used by child-main.ts.
 */
import { existsSync } from "node:fs";
import type { Logger } from "pino";
import type { Config } from "../../pipeline/config.ts";
import type { Storage } from "../../pipeline/ports.ts";
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
  if (engine === "bullmq") {
    const { startBullmqWorkerHostFromConfig } = await import("../bullmq/main.ts");
    const proc = await startBullmqWorkerHostFromConfig(config, { log: deps.log, storage, identity: deps.identity });
    return { active: () => proc.host.active(), stop: (ms) => proc.stop(ms) };
  }
  const { startConductorProcessHost } = await import("../conductor/process-host.ts");
  const host = await startConductorProcessHost(config, { log: deps.log, identity: deps.identity, storage });
  return { active: () => host.active(), stop: (ms) => host.stop(ms) };
}
