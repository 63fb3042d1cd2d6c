/**
 * Entry of a supervised worker child: `node --import tsx child-main.ts --engine conductor|bullmq`.
 * The supervisor sets WORKER_SLOT, WORKER_ID_PID (its own pid, so the worker id
 * `host/slot/pid` survives restarts) and WORK_DIR (the slot's private directory, removed
 * when the child dies). Everything (config, storage, connections) is built here, in this
 * process (nothing inherited from the supervisor).
 */
import os from "node:os";
import { pino } from "pino";
import { loadConfig } from "../../pipeline/config.ts";
import { buildInfo, workerIdentity } from "../identity.ts";
import { runSupervisedWorker } from "./child-runtime.ts";
import { startEngineHost, type WorkerEngine } from "./engine-hosts.ts";

function engineFromArgv(argv: string[]): WorkerEngine {
  const i = argv.indexOf("--engine");
  const v = i >= 0 ? argv[i + 1] : undefined;
  if (v !== "conductor" && v !== "bullmq") {
    process.stderr.write(`child-main: --engine conductor|bullmq is required (got ${v ?? "nothing"})\n`);
    process.exit(2);
  }
  return v;
}

async function main(): Promise<number> {
  const engine = engineFromArgv(process.argv.slice(2));
  const config = loadConfig(process.env);
  const identity = workerIdentity(config.WORKER_SLOT, buildInfo(process.env).build, os.hostname(), config.WORKER_ID_PID ?? process.pid);
  const log = pino({ level: config.LOG_LEVEL, base: { worker_id: identity.worker_id, pid: process.pid, engine } }, pino.destination({ dest: 2, sync: true }));
  return await runSupervisedWorker({
    startHost: () => startEngineHost(engine, config, { log, identity }),
    worker_id: identity.worker_id,
    build: identity.build,
    log,
    drainMs: config.DRAIN_TIMEOUT_SECONDS * 1000,
  });
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`worker child failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
