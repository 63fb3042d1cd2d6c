/** `trackscribe migrate [--down] [--count n]`: apply (or roll back) database migrations. */
import type { Command } from "commander";
import { loadConfig } from "../../pipeline/config.ts";
import { CliError } from "../errors.ts";

export function register(program: Command): void {
  program
    .command("migrate")
    .description("apply pending database migrations (adapters/postgres/migrations) to DATABASE_URL")
    .option("--down", "roll back instead (one migration unless --count)")
    .option("--count <n>", "how many migrations to apply or roll back")
    .action(async (opts: { down?: boolean; count?: string }) => {
      const config = loadConfig(process.env);
      if (!config.DATABASE_URL) throw new CliError("set DATABASE_URL (npm run services:start prints it)");
      const count = opts.count === undefined ? undefined : Number(opts.count);
      if (count !== undefined && (!Number.isInteger(count) || count < 1)) throw new CliError("--count must be a positive integer");
      const { migrate } = await import("../../adapters/postgres/migrate.ts");
      let applied: string[];
      try {
        applied = await migrate(config, { direction: opts.down ? "down" : "up", ...(count !== undefined ? { count } : {}) });
      } catch (err) {
        throw new CliError(`migration failed: ${(err as Error).message}`, 1);
      }
      const verb = opts.down ? "rolled back" : "applied";
      process.stdout.write(applied.length ? `${verb}: ${applied.join(", ")}\n` : `nothing to ${opts.down ? "roll back" : "apply"}: the database is up to date\n`);
    });
}
