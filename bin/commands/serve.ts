/**
 * `trackscribe serve`: the HTTP API (applies pending migrations first unless
 * MIGRATE_ON_START=false). Listens on HOST:PORT until SIGINT/SIGTERM.
 */
import type { Command } from "commander";
import { loadConfig } from "../../pipeline/config.ts";
import { CliError } from "../errors.ts";

export function register(program: Command): void {
  program
    .command("serve")
    .description("run the HTTP API (upload recordings, follow progress, fetch transcripts)")
    .option("-p, --port <port>", "listen on this port (overrides PORT)")
    .action(async (opts: { port?: string }) => {
      const config = loadConfig({ ...process.env, ...(opts.port ? { PORT: opts.port } : {}) });
      if (!config.DATABASE_URL) throw new CliError("`trackscribe serve` needs Postgres: set DATABASE_URL (npm run services:start prints it)");
      const { pino } = await import("pino");
      const log = pino({ level: config.LOG_LEVEL, base: { svc: "api", pid: process.pid } });
      // loaded here, not at the top: every other command would otherwise load the server too
      const { serveUntilSignalled, InsecureStartError } = await import("../../server/server.ts");
      try {
        await serveUntilSignalled(config, log);
      } catch (err) {
        if (err instanceof InsecureStartError) throw new CliError(err.message, 78);
        throw err;
      }
    });
}
