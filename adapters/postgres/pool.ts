/** The Postgres pool of a process (created once in its wiring function, ended in `finally`). */
import pg from "pg";
import type { ConfigSection } from "../../pipeline/config.ts";

export function createPool(config: Pick<ConfigSection<"database">, "DATABASE_URL" | "DATABASE_SCHEMA" | "DATABASE_POOL_MAX">, opts: { max?: number } = {}): pg.Pool {
  if (!config.DATABASE_URL) throw new Error("DATABASE_URL is not set");
  return new pg.Pool({
    connectionString: config.DATABASE_URL,
    max: opts.max ?? config.DATABASE_POOL_MAX,
    ...(config.DATABASE_SCHEMA ? { options: `-c search_path=${config.DATABASE_SCHEMA}` } : {}),
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
  });
}

/** Postgres error codes the repositories act on. */
export const PgCode = {
  uniqueViolation: "23505",
  foreignKeyViolation: "23503",
} as const;

export const pgCode = (err: unknown): string | undefined => (err as { code?: string } | undefined)?.code;

/** Run `fn` in a transaction on one client: COMMIT when it returns, ROLLBACK when it throws. */
export async function withTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    const out = await fn(client);
    await client.query("COMMIT");
    return out;
  } catch (err) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}
