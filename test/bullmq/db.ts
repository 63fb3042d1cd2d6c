/**
 * A fresh Postgres schema with every migration of adapters/postgres/migrations applied (by the
 * app's own `migrate`), for one test file; dropped afterwards. Uses DATABASE_URL (set by
 * `npm test`) or the local `test` database.
 */
import { randomBytes } from "node:crypto";
import type pg from "pg";
import { createPool } from "../../adapters/postgres/pool.ts";
import { migrate } from "../../adapters/postgres/migrate.ts";

export const testDatabaseUrl = (): string => process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

export interface TestSchema {
  pool: pg.Pool;
  schema: string;
  /** DATABASE_URL and DATABASE_SCHEMA for config objects and subprocesses */
  env: { DATABASE_URL: string; DATABASE_SCHEMA: string };
  /** a connection string whose connections use this schema */
  url: string;
  drop(): Promise<void>;
}

export async function migratedSchema(tag: string): Promise<TestSchema> {
  const base = testDatabaseUrl();
  const schema = `t_${tag}_${randomBytes(4).toString("hex")}`;
  const env = { DATABASE_URL: base, DATABASE_SCHEMA: schema };
  await migrate(env);
  const pool = createPool({ ...env, DATABASE_POOL_MAX: 4 });
  const url = `${base}${base.includes("?") ? "&" : "?"}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  return {
    pool,
    schema,
    env,
    url,
    async drop() {
      await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
      await pool.end();
    },
  };
}
