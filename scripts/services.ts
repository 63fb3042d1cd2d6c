/**
 * Everything the app needs on this machine, idempotently: PostgreSQL and Redis (started
 * only if not running), a Conductor server, and an S3-compatible server with the bucket.
 * Prints `export NAME=value` lines for the app's configuration and records what it started
 * so `services:stop` stops exactly that.
 *
 *   npm run services:start [-- --fresh] [-- --database NAME]
 *   npm run services:stop
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startConductor, stopConductor } from "./conductor.ts";
import { ensureDatabase, freePort, isAlive, run, sleep, tcpOpen, waitUntil } from "./lib.ts";

export { ensureDatabase };

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

interface ServicesState {
  startedPostgres: boolean;
  startedRedis: boolean;
  s3?: { pid: number; port: number; dir: string };
  env: Record<string, string>;
}


export function workDir(env = process.env): string {
  return path.resolve(root, env.WORK_DIR ?? ".work");
}

async function ensurePostgres(log: (s: string) => void): Promise<boolean> {
  if (await tcpOpen(5432)) return false;
  const versions = existsSync("/etc/postgresql") ? readdirSync("/etc/postgresql") : [];
  if (versions.length === 0) throw new Error("PostgreSQL is not running on 127.0.0.1:5432 and no cluster is installed under /etc/postgresql");
  log(`starting PostgreSQL ${versions[0]}…`);
  const r = run("pg_ctlcluster", ["--skip-systemctl-redirect", versions[0]!, "main", "start"]);
  if (!r.ok) throw new Error(`pg_ctlcluster failed: ${r.out}`);
  await waitUntil(() => tcpOpen(5432), { timeoutMs: 30000, what: "PostgreSQL on 127.0.0.1:5432" });
  return true;
}

async function ensureRedis(log: (s: string) => void): Promise<boolean> {
  if (await tcpOpen(6379)) return false;
  log("starting Redis…");
  mkdirSync("/var/lib/redis", { recursive: true });
  mkdirSync("/var/log/redis", { recursive: true });
  const r = run("redis-server", [
    "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379", "--save", "", "--appendonly", "no",
    "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log",
  ]);
  if (!r.ok) throw new Error(`redis-server failed: ${r.out}`);
  await waitUntil(() => tcpOpen(6379), { timeoutMs: 15000, what: "Redis on 127.0.0.1:6379" });
  return true;
}

async function startS3(dir: string, bucket: string, log: (s: string) => void): Promise<{ pid: number; port: number; dir: string }> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const out = openSync(path.join(dir, "..", "s3rver.log"), "a");
  const child = spawn(
    process.execPath,
    ["--import", "tsx", path.join(root, "scripts", "s3-server.ts"), "--dir", dir, "--port", String(port), "--bucket", bucket],
    { detached: true, stdio: ["ignore", out, out], cwd: root },
  );
  child.unref();
  log(`starting S3-compatible server (s3rver, pid ${child.pid}, port ${port}, dir ${dir})…`);
  await waitUntil(() => tcpOpen(port), { timeoutMs: 30000, what: `S3 server on port ${port}` });
  return { pid: child.pid!, port, dir };
}

export async function startServices(
  opts: { fresh?: boolean; database?: string; redisLock?: boolean; log?: (s: string) => void } = {},
): Promise<Record<string, string>> {
  const log = opts.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  const dir = workDir();
  mkdirSync(dir, { recursive: true });
  const stateFile = path.join(dir, "services.json");
  const prev: ServicesState | undefined = existsSync(stateFile) ? JSON.parse(readFileSync(stateFile, "utf8")) : undefined;

  const startedPostgres = (await ensurePostgres(log)) || (prev?.startedPostgres ?? false);
  const startedRedis = (await ensureRedis(log)) || (prev?.startedRedis ?? false);
  const databaseUrl = await ensureDatabase(opts.database ?? "trackscribe");
  // --redis-lock: Conductor takes its workflow execution lock in Redis (as a multi-server
  // deployment does); the tests use it to reproduce a lost decide honestly
  const lockNs = `trackscribe-lock-${process.pid}-${Date.now()}`;
  const extraArgs = opts.redisLock
    ? [
        "--conductor.workflow-execution-lock.type=redis",
        "--conductor.redis-lock.serverAddress=redis://127.0.0.1:6379",
        `--conductor.redis-lock.namespace=${lockNs}`,
      ]
    : [];
  const conductor = await startConductor({ stateDir: path.join(dir, "conductor"), fresh: opts.fresh, log, extraArgs });

  let s3 = prev?.s3;
  if (s3 && opts.fresh) {
    await stopPid(s3.pid);
    s3 = undefined;
  }
  if (!s3 || !isAlive(s3.pid) || !(await tcpOpen(s3.port))) {
    const s3dir = path.join(dir, "s3", "data");
    if (opts.fresh) rmSync(s3dir, { recursive: true, force: true });
    s3 = await startS3(s3dir, "trackscribe", log);
  }
  const env: Record<string, string> = {
    DATABASE_URL: databaseUrl,
    REDIS_URL: "redis://127.0.0.1:6379",
    CONDUCTOR_SERVER_URL: conductor.url,
    STORAGE_DRIVER: "s3",
    S3_ENDPOINT: `http://127.0.0.1:${s3.port}`,
    S3_BUCKET: "trackscribe",
    S3_REGION: "us-east-1",
    S3_ACCESS_KEY_ID: "S3RVER",
    S3_SECRET_ACCESS_KEY: "S3RVER",
    S3_FORCE_PATH_STYLE: "true",
    ...(opts.redisLock ? { CONDUCTOR_REDIS_LOCK_NAMESPACE: lockNs } : {}),
  };
  const state: ServicesState = { startedPostgres, startedRedis, s3, env };
  writeFileSync(stateFile, JSON.stringify(state, null, 2));
  writeFileSync(path.join(dir, "services.env"), Object.entries(env).map(([k, v]) => `export ${k}=${v}`).join("\n") + "\n");
  return env;
}

async function stopPid(pid: number): Promise<void> {
  if (!isAlive(pid)) return;
  process.kill(pid, "SIGTERM");
  for (let i = 0; i < 50 && isAlive(pid); i++) await sleep(100);
  if (isAlive(pid)) process.kill(pid, "SIGKILL");
}

export async function stopServices(log: (s: string) => void = (s) => process.stderr.write(`${s}\n`)): Promise<void> {
  const dir = workDir();
  const stateFile = path.join(dir, "services.json");
  await stopConductor(path.join(dir, "conductor"));
  if (!existsSync(stateFile)) return;
  const state = JSON.parse(readFileSync(stateFile, "utf8")) as ServicesState;
  if (state.s3) await stopPid(state.s3.pid);
  if (state.startedRedis) run("redis-cli", ["-p", "6379", "shutdown", "nosave"]);
  if (state.startedPostgres) {
    const versions = existsSync("/etc/postgresql") ? readdirSync("/etc/postgresql") : [];
    if (versions[0]) run("pg_ctlcluster", ["--skip-systemctl-redirect", versions[0], "main", "stop"]);
  }
  rmSync(stateFile, { force: true });
  log("services stopped");
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const cmd = process.argv[2];
  const dbIdx = process.argv.indexOf("--database");
  const main = async (): Promise<void> => {
    if (cmd === "start") {
      const env = await startServices({
        fresh: process.argv.includes("--fresh"),
        redisLock: process.argv.includes("--redis-lock"),
        database: dbIdx > 0 ? process.argv[dbIdx + 1] : undefined,
      });
      process.stdout.write(Object.entries(env).map(([k, v]) => `export ${k}=${v}`).join("\n") + "\n");
    } else if (cmd === "stop") await stopServices();
    else throw new Error("usage: services.ts start [--fresh] [--database NAME] | stop");
  };
  main().catch((err: Error) => {
    process.stderr.write(`services: ${err.message}\n`);
    process.exit(1);
  });
}
