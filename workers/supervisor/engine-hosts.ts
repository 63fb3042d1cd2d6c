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
  const url = new URL("../conductor/host.ts", import.meta.url);
  if (!existsSync(url)) throw new Error("the Conductor worker host (workers/conductor/host.ts) is not in this build");
  const mod = (await import(url.href)) as Record<string, unknown>;
  const start = mod.startConductorWorkerHost as
    | ((config: Config, deps: { log: Logger; identity: WorkerIdentity; storage: Storage }) => SupervisedHost | Promise<SupervisedHost>)
    | undefined;
  if (typeof start !== "function") throw new Error("workers/conductor/host.ts does not export startConductorWorkerHost");
  return await start(config, { log: deps.log, identity: deps.identity, storage });
}
