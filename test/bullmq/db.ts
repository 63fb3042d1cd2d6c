/**
 * A fresh Postgres schema with every migration of server/db/migrations applied, for one
 * test file; dropped afterwards. Uses DATABASE_URL (set by `npm test`) or the local `test`
 * database.
 */
import { randomBytes } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { runner } from "node-pg-migrate";
import pg from "pg";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const testDatabaseUrl = (): string => process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

export interface TestSchema {
  pool: pg.Pool;
  schema: string;
  /** a connection string whose connections use this schema (for subprocesses) */
  url: string;
  drop(): Promise<void>;
}

export async function migratedSchema(tag: string): Promise<TestSchema> {
  const base = testDatabaseUrl();
  const schema = `t_${tag}_${randomBytes(4).toString("hex")}`;
  await runner({
    databaseUrl: base,
    dir: path.join(root, "server/db/migrations"),
    direction: "up",
    migrationsTable: "pgmigrations",
    schema,
    createSchema: true,
    checkOrder: false,
    log: () => undefined,
  });
  const url = `${base}${base.includes("?") ? "&" : "?"}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  const pool = new pg.Pool({ connectionString: base, options: `-c search_path=${schema}`, max: 4 });
  return {
    pool,
    schema,
    url,
    async drop() {
      await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
      await pool.end();
    },
  };
}
