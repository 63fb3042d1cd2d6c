/**
 * A Conductor worker process's resources, created here at start and closed on stop
 * (nothing inherited from another process): storage, the Postgres pool (when DATABASE_URL is set: finalize's result
 * sink and the per-task progress events), the step ports, the runtime (host + reconciler).
 * Used by `trackscribe workers --engine conductor` and by supervised children.
 */
import type { Logger } from "pino";
import { configSection, type Config } from "../../pipeline/config.ts";
import type { Storage } from "../../pipeline/ports.ts";
import { createStepPorts } from "../step-ports.ts";
import type { WorkerIdentity } from "../identity.ts";
import { startConductorRuntime, type ConductorRuntime } from "./runtime.ts";

export interface ConductorProcessHost {
  runtime: ConductorRuntime;
  active(): string[];
  stop(drainMs: number): Promise<{ cutOff: string[] }>;
}

export async function startConductorProcessHost(
  config: Config,
  deps: { log: Logger; identity: WorkerIdentity; storage: Storage; runStepFn?: import("./host.ts").ConductorHostDeps["runStepFn"] },
): Promise<ConductorProcessHost> {
  let pool: import("pg").Pool | undefined;
  let results;
  let onTaskEvent;
  if (config.DATABASE_URL) {
    const { createPool } = await import("../../adapters/postgres/pool.ts");
    const sinks = await import("../../adapters/postgres/sinks.ts");
    pool = createPool(configSection(config, "database"), { max: 4, onError: (err) => deps.log.warn({ err: err.message }, "idle Postgres client error") });
    results = sinks.createPgResultSink(pool, { log: deps.log });
    onTaskEvent = sinks.createConductorTaskEventHandler(pool, { log: deps.log });
  }
  try {
    const stepDeps = createStepPorts(config, { storage: deps.storage, log: deps.log, ...(results ? { results } : {}) });
    const runtime = await startConductorRuntime(config, { storage: deps.storage, stepDeps, log: deps.log, identity: deps.identity, onTaskEvent, runStepFn: deps.runStepFn });
    return {
      runtime,
      active: () => runtime.host.inFlight(),
      async stop(drainMs) {
        try {
          return { cutOff: await runtime.stop(drainMs) };
        } finally {
          await pool?.end();
        }
      },
    };
  } catch (err) {
    await pool?.end();
    throw err;
  }
}
