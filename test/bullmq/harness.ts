/**
 * Real services for the BullMQ integration tests: Redis with a key prefix of its own,
 * a fresh Postgres schema with the migrations applied, a local storage directory, and a
 * BullMQ engine wired like `trackscribe process --engine bullmq` does it.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Redis } from "ioredis";
import { pino } from "pino";
import { loadConfig, type Config } from "../../pipeline/config.ts";
import type { Storage } from "../../pipeline/ports.ts";
import { createLocalStorage } from "../../adapters/storage/local.ts";
import { createBullmqEngine, createBullmqRedis, type BullmqEngine } from "../../workers/bullmq/engine.ts";
import { createPgEventLog, type EventLog } from "../../workers/bullmq/event-log.ts";
import { dropPrefix } from "../../workers/bullmq/queues.ts";

export { dropPrefix };
import { migratedSchema, type TestSchema } from "./db.ts";

export interface Harness {
  config: Config;
  env: Record<string, string>;
  redis: Redis;
  prefix: string;
  db: TestSchema;
  dir: string;
  storageDir: string;
  storage: Storage;
  eventLog: EventLog;
  engine: BullmqEngine;
  close(): Promise<void>;
}

export const uid = (): string => randomBytes(4).toString("hex");

export async function bullmqHarness(opts: { startWorkers: boolean; env?: Record<string, string>; tag?: string }): Promise<Harness> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "ts-bullmq-"));
  const storageDir = path.join(dir, "storage");
  const prefix = `tsb-${opts.tag ?? "t"}-${uid()}`;
  const env: Record<string, string> = {
    NODE_ENV: "test",
    LOG_LEVEL: process.env.LOG_LEVEL ?? "warn",
    WORK_DIR: path.join(dir, "work"),
    STORAGE_DRIVER: "local",
    LOCAL_STORAGE_DIR: storageDir,
    REDIS_URL: process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
    BULLMQ_PREFIX: prefix,
    BULLMQ_SWEEP_MS: "500",
    BULLMQ_RETRY_BASE_MS: "50",
    ASR_CONCURRENCY: "2",
    WORKER_CONCURRENCY: "2",
    DRAIN_TIMEOUT_SECONDS: "5",
    ...opts.env,
  };
  const config = loadConfig(env);
  const db = await migratedSchema(opts.tag ?? "bullmq");
  const redis = createBullmqRedis(config.REDIS_URL);
  const storage = createLocalStorage(storageDir);
  const log = pino({ level: config.LOG_LEVEL });
  const eventLog = createPgEventLog(db.pool);
  const engine = createBullmqEngine(config, { storage, log, pool: db.pool, redis, prefix, startWorkers: opts.startWorkers });
  return {
    config,
    env,
    redis,
    prefix,
    db,
    dir,
    storageDir,
    storage,
    eventLog,
    engine,
    async close() {
      await engine.close();
      await dropPrefix(redis, prefix);
      await redis.quit();
      await db.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
