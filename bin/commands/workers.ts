/**
 * `trackscribe workers --engine conductor|bullmq [-j N]`: run worker hosts. With -j, a
 * supervisor runs N children in stable slots (restarts with back-off, drain on SIGTERM).
 * `trackscribe workers audit`: who polls each of our task types, flagging unknown builds.
 */
import os from "node:os";
import { Option, type Command } from "commander";
import { pino } from "pino";
import { loadConfig } from "../../pipeline/config.ts";
import { auditPollers, formatTable } from "../../workers/conductor/audit.ts";
import { createConductorApi, waitForConductor } from "../../adapters/conductor/client.ts";
import { CONDUCTOR_TASKS } from "../../workers/conductor/definitions.ts";
import { buildInfo, workerIdentity } from "../../workers/identity.ts";
import { CliError } from "../errors.ts";

export function register(program: Command): void {
  const cmd = program
    .command("workers")
    .description("run pipeline workers (Conductor or BullMQ); `workers audit` lists who polls our tasks")
    .addOption(new Option("--engine <engine>", "which engine's tasks to work on").choices(["conductor", "bullmq"]).default("conductor"))
    .option("-j, --jobs <n>", "run N supervised worker processes in stable slots", (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1 || n > 64) throw new CliError(`-j must be a whole number from 1 to 64, got '${v}'`);
      return n;
    })
    .action(async (opts: { engine: "conductor" | "bullmq"; jobs?: number }) => {
      const config = loadConfig(process.env);
      const build = buildInfo(config.BUILD_COMMIT ? { BUILD_COMMIT: config.BUILD_COMMIT } : {}).build;
      if (opts.jobs !== undefined) {
        const { runSupervisorProcess, CHILD_MAIN } = await import("../../workers/supervisor/run.ts");
        const log = pino({ level: config.LOG_LEVEL, base: { role: "supervisor", engine: opts.engine } }, pino.destination(2));
        const { WorkDirLockedError } = await import("../../workers/supervisor/lock.ts");
        process.exitCode = await runSupervisorProcess({ config, slots: opts.jobs, log, child: { module: CHILD_MAIN, args: ["--engine", opts.engine] } }).catch((e: unknown) => {
          throw e instanceof WorkDirLockedError ? new CliError(e.message, 75) : e;
        });
        return;
      }
      const identity = workerIdentity(config.WORKER_SLOT, build, os.hostname(), config.WORKER_ID_PID ?? process.pid);
      const log = pino({ level: config.LOG_LEVEL, base: { worker_id: identity.worker_id, engine: opts.engine } }, pino.destination(2));
      const { startEngineHost } = await import("../../workers/supervisor/engine-hosts.ts");
      const host = await startEngineHost(opts.engine, config, { log, identity });
      log.info({ build }, "workers running; SIGTERM or SIGINT drains and stops");
      await new Promise<void>((resolve) => {
        const stop = (sig: NodeJS.Signals): void => {
          log.info({ signal: sig, drain_seconds: config.DRAIN_TIMEOUT_SECONDS }, "stopping: no new work, draining in-flight tasks");
          void host.stop(config.DRAIN_TIMEOUT_SECONDS * 1000).finally(resolve);
        };
        process.once("SIGTERM", stop);
        process.once("SIGINT", stop);
      });
    });

  cmd
    .command("audit")
    .description("list every worker that polled our task types recently (Conductor poll data); flag unknown builds and hosts")
    .option("--recent <seconds>", "a poll older than this counts as not recent", "300")
    .option("--host <name...>", "hosts expected to run workers (others are flagged)")
    .option("--json", "print JSON")
    .action(async (opts: { recent: string; host?: string[]; json?: boolean }) => {
      const config = loadConfig(process.env);
      const api = createConductorApi(config.CONDUCTOR_SERVER_URL);
      await waitForConductor(api, { timeoutMs: 10000 });
      const currentBuild = buildInfo(config.BUILD_COMMIT ? { BUILD_COMMIT: config.BUILD_COMMIT } : {}).build;
      const rows = [];
      for (const task of CONDUCTOR_TASKS) {
        const polls = await api.pollData(task);
        rows.push(...auditPollers(task, polls, { currentBuild, knownHosts: opts.host, now: Date.now(), recentMs: Number(opts.recent) * 1000 }));
      }
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ current_build: currentBuild, pollers: rows }, null, 2)}\n`);
        return;
      }
      process.stdout.write(`current build: ${currentBuild}\n${formatTable(rows as never, ["task", "worker_id", "build", "last_poll", "flags"])}\n`);
      const flagged = rows.filter((r) => r.flags.length).length;
      process.stdout.write(flagged ? `${flagged} poller(s) flagged\n` : "no poller flagged\n");
      if (flagged) process.exitCode = 3;
    });
}
