/**
 * Migrations (node-pg-migrate, SQL files in adapters/postgres/migrations): applied by
 * `trackscribe migrate` and when the server starts. node-pg-migrate holds an advisory
 * lock while it runs, so several API processes starting at once apply each file once.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { runner } from "node-pg-migrate";
import type { Config } from "../../pipeline/config.ts";

export const MIGRATIONS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), "migrations");

export interface MigrateOptions {
  direction?: "up" | "down";
  /** how many migrations (default: all up, one down) */
  count?: number;
  log?: (line: string) => void;
}

/** Apply pending migrations; resolves with the names of those applied. */
export async function migrate(config: Pick<Config, "DATABASE_URL" | "DATABASE_SCHEMA">, opts: MigrateOptions = {}): Promise<string[]> {
  if (!config.DATABASE_URL) throw new Error("DATABASE_URL is not set");
  const direction = opts.direction ?? "up";
  const applied = await runner({
    databaseUrl: config.DATABASE_URL,
    dir: MIGRATIONS_DIR,
    direction,
    ...(opts.count !== undefined ? { count: opts.count } : direction === "down" ? { count: 1 } : {}),
    migrationsTable: "pgmigrations",
    ...(config.DATABASE_SCHEMA ? { schema: config.DATABASE_SCHEMA, createSchema: true } : {}),
    // files of several owners are added independently; their order does not matter
    checkOrder: false,
    log: opts.log ?? (() => undefined),
  });
  return applied.map((m) => m.name);
}
