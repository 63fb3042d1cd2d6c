/** Small helpers shared by the service scripts (conductor, services, tests, demo). */
import { spawnSync } from "node:child_process";
import { connect, createServer } from "node:net";
import pg from "pg";

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function isAlive(pid: number | undefined): boolean {
  if (!pid || !Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Retry `probe` with exponential back-off (capped) until it returns true or the deadline passes. */
export async function waitUntil(
  probe: () => Promise<boolean>,
  opts: { timeoutMs: number; what: string; initialDelayMs?: number; maxDelayMs?: number; onWait?: (elapsedMs: number) => void },
): Promise<void> {
  const start = Date.now();
  let delay = opts.initialDelayMs ?? 250;
  for (;;) {
    try {
      if (await probe()) return;
    } catch {
      /* not up yet */
    }
    const elapsed = Date.now() - start;
    if (elapsed > opts.timeoutMs) throw new Error(`${opts.what} did not become ready within ${Math.round(opts.timeoutMs / 1000)} s`);
    opts.onWait?.(elapsed);
    await sleep(Math.min(delay, Math.max(50, opts.timeoutMs - elapsed)));
    delay = Math.min(delay * 2, opts.maxDelayMs ?? 2000);
  }
}

export function run(cmd: string, args: string[], opts: { cwd?: string } = {}): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { cwd: opts.cwd, encoding: "utf8" });
  return { ok: r.status === 0, out: `${r.stdout ?? ""}${r.stderr ?? ""}` };
}

/** A database name we create or drop ourselves (it goes into SQL unquoted). */
const DB_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** The `postgres` maintenance database of the server that `url` points at (same credentials). */
function adminUrl(url: string): string {
  const u = new URL(url);
  u.pathname = "/postgres";
  return u.toString();
}

/**
 * Create database `name` on the server of `serverUrl` (any database URL of that server; the
 * connection goes to its `postgres` database) unless it exists. Returns the new database's URL.
 */
export async function ensureDatabase(name: string, serverUrl = "postgres://postgres@127.0.0.1:5432/postgres"): Promise<string> {
  if (!DB_NAME.test(name)) throw new Error(`invalid database name: ${name}`);
  const admin = new pg.Client({ connectionString: adminUrl(serverUrl) });
  await admin.connect();
  try {
    const { rowCount } = await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
    // another process may create it at the same moment (two servers of one database starting)
    if (!rowCount) await admin.query(`CREATE DATABASE ${name}`).catch((err: { code?: string }) => {
      if (err.code !== "42P04" && err.code !== "23505") throw err;
    });
  } finally {
    await admin.end();
  }
  const u = new URL(serverUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

/** Drop database `name` (connections still open to it are ended first). */
export async function dropDatabase(name: string, serverUrl = "postgres://postgres@127.0.0.1:5432/postgres"): Promise<void> {
  if (!DB_NAME.test(name)) throw new Error(`invalid database name: ${name}`);
  const admin = new pg.Client({ connectionString: adminUrl(serverUrl) });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

/** Whether something accepts TCP connections on host:port (1 s at most). */
export const tcpOpen = (port: number, host = "127.0.0.1"): Promise<boolean> =>
  new Promise((resolve) => {
    const s = connect({ port, host });
    s.setTimeout(1000);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
    s.once("timeout", () => {
      s.destroy();
      resolve(false);
    });
  });
