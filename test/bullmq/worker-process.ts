/**
 * A BullMQ worker process for the tests (what `trackscribe workers --engine bullmq` runs):
 * configured from the environment, prints `ready <worker_id>` once its workers listen,
 * drains and exits on SIGTERM.
 */
import { pino } from "pino";
import { loadConfig } from "../../pipeline/config.ts";
import { createLocalStorage } from "../../adapters/storage/local.ts";
import { startBullmqWorkerHostFromConfig } from "../../workers/bullmq/main.ts";
import { buildInfo, workerIdentity } from "../../workers/identity.ts";

const config = loadConfig(process.env);
const log = pino({ level: config.LOG_LEVEL }, pino.destination(2));
const identity = workerIdentity(config.WORKER_SLOT, buildInfo().build);
const proc = await startBullmqWorkerHostFromConfig(config, { log, storage: createLocalStorage(config.LOCAL_STORAGE_DIR), identity });
process.stdout.write(`ready ${identity.worker_id}\n`);
process.once("SIGTERM", () => {
  void proc.stop(config.DRAIN_TIMEOUT_SECONDS * 1000).then(() => process.exit(0));
});
