/**
 * Wiring of a BullMQ worker process (`trackscribe workers --engine bullmq`): the Redis
 * connection, storage and step ports are created here, once, and closed by `stop()`.
 */
import type { Logger } from "pino";
import type { Config } from "../../pipeline/config.ts";
import type { Storage } from "../../pipeline/ports.ts";
import type { ResultSink } from "../../pipeline/steps/deps.ts";
import type { WorkerIdentity } from "../identity.ts";
import { bullmqWorkerIdentity, createBullmqRedis, workerHostOptions } from "./engine.ts";
import { startBullmqWorkerHost, type WorkerHost, type WorkerHostDeps } from "./worker-host.ts";

export interface BullmqWorkerProcessDeps {
  log: Logger;
  /** configured storage (local directory or S3), shared with the coordinator */
  storage: Storage;
  /** where finalize saves results (the API's Postgres results table), if any */
  results?: ResultSink;
  /** the worker's identity; default slot WORKER_SLOT and this process's pid */
  identity?: WorkerIdentity;
  /** BullMQ key prefix (default BULLMQ_PREFIX) */
  prefix?: string;
  /** runs a step (default runStep; the supervisor's child runner for heavy steps) */
  runStepFn?: WorkerHostDeps["runStepFn"];
}

export interface BullmqWorkerProcess {
  host: WorkerHost;
  /** stop taking jobs, drain until `drainMs`, close the connection */
  stop(drainMs: number): Promise<{ cutOff: string[] }>;
}

export async function startBullmqWorkerHostFromConfig(config: Config, deps: BullmqWorkerProcessDeps): Promise<BullmqWorkerProcess> {
  const redis = createBullmqRedis(config.REDIS_URL);
  try {
    const { createStepPorts } = await import("../step-ports.ts");
    const stepDeps = createStepPorts(config, { storage: deps.storage, log: deps.log, ...(deps.results ? { results: deps.results } : {}) });
    const identity = deps.identity ?? bullmqWorkerIdentity(config);
    const host = startBullmqWorkerHost({ redis, stepDeps, identity, logger: deps.log, options: workerHostOptions(config, deps.prefix), runStepFn: deps.runStepFn });
    await Promise.all(host.workers.map((w) => w.waitUntilReady()));
    return {
      host,
      async stop(drainMs) {
        try {
          return await host.stop(drainMs);
        } finally {
          await redis.quit().catch(() => redis.disconnect());
        }
      },
    };
  } catch (err) {
    redis.disconnect();
    throw err;
  }
}
