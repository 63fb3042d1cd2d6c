/**
 * The supervisor process wiring (runSupervisorProcess) for the tests:
 * `fake-supervisor.ts <slots> [drainGraceMs]`. Children run the fake worker, or the real
 * child entry (child-main.ts) when SUP_ENGINE=conductor|bullmq. Logs JSON lines on stderr.
 */
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import { loadConfig } from "../../pipeline/config.ts";
import { WorkDirLockedError } from "../../workers/supervisor/lock.ts";
import { CHILD_MAIN, runSupervisorProcess } from "../../workers/supervisor/run.ts";

const config = loadConfig(process.env);
const log = pino({ level: "debug", base: { role: "supervisor" } }, pino.destination({ dest: 2, sync: true }));
const slots = Number(process.argv[2] ?? "1");
const grace = process.argv[3] ? Number(process.argv[3]) : undefined;
try {
  const code = await runSupervisorProcess({
    config,
    slots,
    log,
    child: process.env.SUP_ENGINE
      ? { module: CHILD_MAIN, args: ["--engine", process.env.SUP_ENGINE] }
      : { module: fileURLToPath(new URL("./fake-worker.ts", import.meta.url)), args: [] },
    ...(grace !== undefined ? { policy: { drainGraceMs: grace } } : {}),
  });
  process.exit(code);
} catch (err) {
  if (err instanceof WorkDirLockedError) {
    process.stderr.write(`trackscribe: ${err.message}\n`);
    process.exit(2);
  }
  throw err;
}
