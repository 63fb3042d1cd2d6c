/**
 * A supervised worker child for the supervisor tests: the real child runtime
 * (runSupervisedWorker) around a fake host whose one "task" takes FAKE_TASK_MS and then
 * "reports its result" by writing FAKE_RESULTS_DIR/<task>.json. It records every start in
 * FAKE_RESULTS_DIR/starts.jsonl and leaves a scratch file in its WORK_DIR (the slot dir).
 * FAKE_STUBBORN=1: its host ignores the drain deadline (the supervisor must kill it).
 */
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { loadConfig } from "../../pipeline/config.ts";
import { workerIdentity } from "../../workers/identity.ts";
import { runSupervisedWorker, type SupervisedHost } from "../../workers/supervisor/child-runtime.ts";

const config = loadConfig(process.env);
const results = process.env.FAKE_RESULTS_DIR!;
const taskMs = Number(process.env.FAKE_TASK_MS ?? "0");
const stubborn = process.env.FAKE_STUBBORN === "1";
const identity = workerIdentity(config.WORKER_SLOT, "0.0.0+test", os.hostname(), config.WORKER_ID_PID ?? process.pid);
const log = pino({ level: config.LOG_LEVEL, base: { worker_id: identity.worker_id, pid: process.pid } }, pino.destination({ dest: 2, sync: true }));

const scratch = path.join(config.WORK_DIR, "scratch");
mkdirSync(scratch, { recursive: true });
writeFileSync(path.join(scratch, `tmp-${process.pid}`), "temporary");
appendFileSync(path.join(results, "starts.jsonl"), `${JSON.stringify({ slot: config.WORKER_SLOT, pid: process.pid, worker_id: identity.worker_id, work_dir: config.WORK_DIR, at: Date.now() })}\n`);

function startHost(): SupervisedHost {
  const running = new Set<string>();
  let finished: Promise<void> = Promise.resolve();
  if (taskMs > 0) {
    const id = `task-${config.WORKER_SLOT}-${process.pid}`;
    running.add(id);
    finished = new Promise((resolve) =>
      setTimeout(() => {
        writeFileSync(path.join(results, `${id}.json`), JSON.stringify({ worker_id: identity.worker_id, at: Date.now() }));
        running.delete(id);
        resolve();
      }, taskMs),
    );
  }
  return {
    active: () => [...running],
    async stop(drainMs) {
      if (stubborn) return await new Promise(() => {});
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<"deadline">((r) => (timer = setTimeout(() => r("deadline"), drainMs)));
      const how = await Promise.race([finished.then(() => "done" as const), deadline]);
      clearTimeout(timer);
      return { cutOff: how === "done" ? [] : [...running] };
    },
  };
}

const code = await runSupervisedWorker({ startHost: async () => startHost(), worker_id: identity.worker_id, build: identity.build, log, drainMs: config.DRAIN_TIMEOUT_SECONDS * 1000 });
process.exit(code);
