/** The Postgres pool of a process (created once in its wiring function, ended in `finally`). */
import pg from "pg";
import type { ConfigSection } from "../../pipeline/config.ts";

export function createPool(
  config: Pick<ConfigSection<"database">, "DATABASE_URL" | "DATABASE_SCHEMA" | "DATABASE_POOL_MAX">,
  opts: { max?: number; onError?: (err: Error) => void } = {},
): pg.Pool {
  if (!config.DATABASE_URL) throw new Error("DATABASE_URL is not set");
  const pool = new pg.Pool({
    connectionString: config.DATABASE_URL,
    max: opts.max ?? config.DATABASE_POOL_MAX,
    ...(config.DATABASE_SCHEMA ? { options: `-c search_path=${config.DATABASE_SCHEMA}` } : {}),
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
  });
  return guardPool(pool, opts.onError);
}

/**
 * A Postgres restart must not end the process. When a connection dies, pg emits `error` on
 * its client; pg-pool listens only while the client is idle (and re-emits it on the pool),
 * so a client checked out for a transaction had no listener, and an unlistened `error` is
 * thrown: a worker host died with its finalize in flight, and Conductor, whose sweep of that
 * workflow was postponed for an hour, had nobody to time the task out. Every client gets a
 * listener for its whole life (the query in flight fails with the same error, and its caller
 * handles that), and the pool's idle errors go to `onError`.
 */
export function guardPool(pool: pg.Pool, onError: (err: Error) => void = () => {}): pg.Pool {
  pool.on("connect", (client) => {
    client.on("error", () => {
      /* reported by the failing query (pg-pool drops a client that is not queryable when it comes back), or by the idle listener below */
    });
  });
  pool.on("error", (err) => onError(err));
  return pool;
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
