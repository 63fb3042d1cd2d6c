/**
 * The real stack `npm run chaos` runs and breaks, every piece its own process on loopback
 * with its own port and directory under the chaos work dir: Postgres (its own cluster when
 * this machine lets us make one, so restarting it disturbs nobody else), Redis (append-only
 * file, fsync always: a restart keeps what was acknowledged), the S3 server (s3rver on disk),
 * a Conductor server (scripts/conductor.ts; restarted with its exact command line, same port
 * and SQLite file), the API (`trackscribe serve`, shadow mode on), the Conductor worker
 * supervisor (`trackscribe workers --engine conductor -j 2`) and the BullMQ workers.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chownSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { startConductor, waitForConductorHealth } from "../scripts/conductor.ts";
import { freePort, isAlive, sleep, tcpOpen, waitUntil } from "../scripts/lib.ts";
import { createConductorApi } from "../adapters/conductor/client.ts";
import { loadTaskDefs, registerDefinitions, type TaskDef } from "../workers/conductor/definitions.ts";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");


/** A process we start, kill and start again with the same command line. */
export class Managed {
  child?: ChildProcess;
  starts = 0;
  constructor(
    readonly name: string,
    readonly argv: string[],
    readonly env: NodeJS.ProcessEnv,
    readonly logFile: string,
    readonly cwd = ROOT,
  ) {}
  get pid(): number | undefined {
    return this.child?.pid;
  }
  alive(): boolean {
    return Boolean(this.child && this.child.exitCode === null && this.child.signalCode === null);
  }
  start(): void {
    const out = openSync(this.logFile, "a");
    // its own process group: the whole group can be stopped at the end, nothing else
    this.child = spawn(this.argv[0]!, this.argv.slice(1), { cwd: this.cwd, env: this.env, stdio: ["ignore", out, out], detached: true });
    this.child.unref();
    this.starts++;
  }
  signal(sig: NodeJS.Signals): boolean {
    if (!this.pid) return false;
    try {
      process.kill(this.pid, sig);
      return true;
    } catch {
      return false;
    }
  }
  async exited(timeoutMs = 10_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (this.alive() && Date.now() < end) await sleep(50);
  }
  /** SIGKILL the process group (cleanup) */
  killGroup(): void {
    if (!this.pid) return;
    try {
      process.kill(-this.pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
}

/** every process below `pid`, with its command name, from /proc */
export function descendants(pid: number): { pid: number; ppid: number; comm: string; depth: number }[] {
  const all: { pid: number; ppid: number; comm: string }[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const close = stat.lastIndexOf(")");
      const comm = stat.slice(stat.indexOf("(") + 1, close);
      const fields = stat.slice(close + 2).split(" ");
      all.push({ pid: Number(d), ppid: Number(fields[1]), comm });
    } catch {
      /* exited meanwhile */
    }
  }
  const out: { pid: number; ppid: number; comm: string; depth: number }[] = [];
  const walk = (p: number, depth: number): void => {
    for (const c of all.filter((x) => x.ppid === p)) {
      out.push({ ...c, depth });
      walk(c.pid, depth + 1);
    }
  };
  walk(pid, 1);
  return out;
}

export interface Stack {
  workDir: string;
  env: Record<string, string>;
  apiUrl: string;
  token: string;
  pgAdminUrl: string;
  ownPostgres: boolean;
  redisPort: number;
  s3Port: number;
  conductorUrl: string;
  api: Managed;
  conductorWorkers: Managed;
  bullmqWorkers: Managed;
  redis: Managed;
  s3: Managed;
  logs: { api: string; conductorWorkers: string; bullmqWorkers: string };
  restartApi(): Promise<void>;
  restartConductor(): Promise<void>;
  restartRedis(): Promise<void>;
  restartPostgres(): Promise<void>;
  restartSupervisor(): Promise<void>;
  stopS3(): void;
  startS3(): Promise<void>;
  waitApi(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

const pgBin = (): string | undefined => {
  if (!existsSync("/usr/lib/postgresql")) return undefined;
  const v = readdirSync("/usr/lib/postgresql").sort().at(-1);
  return v ? `/usr/lib/postgresql/${v}/bin` : undefined;
};

/** Our own Postgres cluster (root may run it as the postgres user); undefined where that cannot be done. */
function ownCluster(dir: string, port: number, log: (s: string) => void): { start(): void; restart(): void; stop(): void } | undefined {
  const bin = pgBin();
  if (!bin || process.getuid?.() !== 0 || !existsSync("/usr/sbin/runuser")) return undefined;
  const as = (args: string[]): { ok: boolean; out: string } => {
    const r = spawnSync("/usr/sbin/runuser", ["-u", "postgres", "--", ...args], { encoding: "utf8" });
    return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
  };
  mkdirSync(dir, { recursive: true });
  const uid = Number(spawnSync("id", ["-u", "postgres"], { encoding: "utf8" }).stdout.trim());
  const gid = Number(spawnSync("id", ["-g", "postgres"], { encoding: "utf8" }).stdout.trim());
  chownSync(dir, uid, gid);
  const data = path.join(dir, "data");
  if (!existsSync(path.join(data, "PG_VERSION"))) {
    const r = as([`${bin}/initdb`, "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"]);
    if (!r.ok) {
      log(`no own Postgres cluster (initdb: ${r.out.slice(-300)}); the shared one is used and not restarted`);
      return undefined;
    }
  }
  const opts = `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=${dir} -c max_connections=200`;
  const ctl = (args: string[]): void => {
    const r = as([`${bin}/pg_ctl`, "-D", data, "-l", path.join(dir, "postgres.log"), "-o", opts, "-w", "-t", "60", ...args]);
    if (!r.ok) throw new Error(`pg_ctl ${args.join(" ")}: ${r.out.slice(-500)}`);
  };
  return {
    start: () => ctl(["start"]),
    // -m immediate: the postmaster and every backend stop at once, recovery on start (a crash)
    restart: () => ctl(["restart", "-m", "immediate"]),
    stop: () => {
      try {
        ctl(["stop", "-m", "fast"]);
      } catch {
        /* already down */
      }
    },
  };
}

export interface StackOptions {
  workDir: string;
  database: string;
  log: (s: string) => void;
  /** registered for every task: a dead or paused host's task comes back after it */
  responseTimeoutSeconds: number;
  /** shadow mode with BullMQ workers (default true; bench:long --concurrent runs Conductor alone) */
  shadow?: boolean;
  /** the Conductor worker supervisor's `-j` (default 2; 0: one worker process, no supervisor) */
  jobs?: number;
  /** more of the API's environment */
  apiEnv?: Record<string, string>;
}

export async function startStack(o: StackOptions): Promise<Stack> {
  const { workDir, log } = o;
  mkdirSync(workDir, { recursive: true });
  const node = process.execPath;
  const cli = path.join(ROOT, "bin", "trackscribe.mjs");

  // Postgres
  let pgPort = 5432;
  const ownPort = await freePort();
  const cluster = ownCluster(path.join(workDir, "pg"), ownPort, log);
  if (cluster) {
    cluster.start();
    pgPort = ownPort;
    log(`own Postgres cluster on 127.0.0.1:${pgPort}`);
  }
  const pgAdminUrl = `postgres://postgres@127.0.0.1:${pgPort}/postgres`;
  const admin = new pg.Client({ connectionString: pgAdminUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${o.database} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${o.database}`);
  await admin.end();

  // Redis
  const redisPort = await freePort();
  const redisDir = path.join(workDir, "redis");
  mkdirSync(redisDir, { recursive: true });
  const redis = new Managed(
    "redis",
    ["redis-server", "--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", redisDir, "--daemonize", "no"],
    process.env,
    path.join(workDir, "redis.log"),
  );
  redis.start();
  await waitUntil(() => tcpOpen(redisPort), { timeoutMs: 15000, what: "Redis" });

  // S3
  const s3Port = await freePort();
  const s3 = new Managed(
    "s3",
    [node, "--import", "tsx", path.join(ROOT, "scripts", "s3-server.ts"), "--dir", path.join(workDir, "s3", "data"), "--port", String(s3Port), "--bucket", "trackscribe"],
    process.env,
    path.join(workDir, "s3.log"),
  );
  s3.start();
  await waitUntil(() => tcpOpen(s3Port), { timeoutMs: 30000, what: "S3 server" });

  // Conductor, with short response timeouts so a dead or paused host's task comes back soon
  const conductorDir = path.join(workDir, "conductor");
  const conductor = await startConductor({ stateDir: conductorDir, fresh: true, log, timeoutMs: 420_000 });
  const overrides: Record<string, Partial<TaskDef>> = {};
  for (const d of loadTaskDefs()) overrides[d.name] = { responseTimeoutSeconds: Math.min(d.responseTimeoutSeconds, o.responseTimeoutSeconds) };
  await registerDefinitions(createConductorApi(conductor.url), overrides);

  const token = `chaos-${Date.now().toString(36)}-operator-token`;
  const apiPort = await freePort();
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    NODE_ENV: "production",
    LOG_LEVEL: "info",
    DATABASE_URL: `postgres://postgres@127.0.0.1:${pgPort}/${o.database}`,
    REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    STORAGE_DRIVER: "s3",
    S3_ENDPOINT: `http://127.0.0.1:${s3Port}`,
    S3_BUCKET: "trackscribe",
    S3_REGION: "us-east-1",
    S3_ACCESS_KEY_ID: "S3RVER",
    S3_SECRET_ACCESS_KEY: "S3RVER",
    S3_FORCE_PATH_STYLE: "true",
    CONDUCTOR_SERVER_URL: conductor.url,
    CONDUCTOR_REGISTER: "false",
    BULLMQ_PREFIX: "chaos",
    API_TOKEN: token,
    STEP_OUTAGE_RETRY_SECONDS: "3",
  };
  const apiEnv = {
    ...env,
    HOST: "127.0.0.1",
    PORT: String(apiPort),
    WORK_DIR: path.join(workDir, "api"),
    API_RECONCILE_SECONDS: "1",
    START_GRACE_SECONDS: "2",
    STORAGE_SWEEP_SECONDS: "5",
    STORAGE_SWEEP_UPLOAD_STALE_SECONDS: "60",
    ...(o.shadow === false ? {} : { SHADOW_MODE: "bullmq", SHADOW_SAMPLE_RATE: "1", SHADOW_WORKERS_IN_API: "false" }),
    CREATE_RATE_PER_MINUTE: "10000",
    ...o.apiEnv,
  };
  const logs = { api: path.join(workDir, "api.log"), conductorWorkers: path.join(workDir, "workers-conductor.log"), bullmqWorkers: path.join(workDir, "workers-bullmq.log") };
  const api = new Managed("api", [node, cli, "serve"], apiEnv, logs.api);
  const conductorWorkers = new Managed(
    "conductor-workers",
    [node, cli, "workers", "--engine", "conductor", ...((o.jobs ?? 2) > 0 ? ["-j", String(o.jobs ?? 2)] : [])],
    { ...env, WORK_DIR: path.join(workDir, "workers-conductor"), RECONCILER_INTERVAL_SECONDS: "5", RECONCILER_STALL_SECONDS: "20", SUPERVISOR_BACKOFF_SCALE: "0.2" },
    logs.conductorWorkers,
  );
  const bullmqWorkers = new Managed(
    "bullmq-workers",
    [node, cli, "workers", "--engine", "bullmq", "-j", "1"],
    { ...env, WORK_DIR: path.join(workDir, "workers-bullmq"), BULLMQ_LOCK_MS: "10000", BULLMQ_STALLED_INTERVAL_MS: "5000", SUPERVISOR_BACKOFF_SCALE: "0.2" },
    logs.bullmqWorkers,
  );
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const waitApi = async (timeoutMs = 90_000): Promise<void> => {
    await waitUntil(
      async () => {
        try {
          return (await fetch(`${apiUrl}/v1/recordings?limit=1`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(2000) })).status === 200;
        } catch {
          return false;
        }
      },
      { timeoutMs, what: "the API" },
    );
  };
  api.start();
  await waitApi();
  conductorWorkers.start();
  if (o.shadow !== false) bullmqWorkers.start();

  const conductorState = path.join(conductorDir, "server.json");
  return {
    workDir,
    env,
    apiUrl,
    token,
    pgAdminUrl,
    ownPostgres: Boolean(cluster),
    redisPort,
    s3Port,
    conductorUrl: conductor.url,
    api,
    conductorWorkers,
    bullmqWorkers,
    redis,
    s3,
    logs,
    waitApi,
    async restartApi() {
      api.signal("SIGKILL");
      await api.exited();
      api.start();
    },
    async restartSupervisor() {
      conductorWorkers.signal("SIGKILL");
      await conductorWorkers.exited();
      await sleep(1000);
      conductorWorkers.start();
    },
    async restartConductor() {
      // the same command line, directory and port: its SQLite file carries every workflow over
      const s = JSON.parse(readFileSync(conductorState, "utf8")) as { pid: number; url: string };
      const argv = readFileSync(`/proc/${s.pid}/cmdline`, "utf8").split("\0").filter(Boolean);
      const cwd = readlinkSync(`/proc/${s.pid}/cwd`);
      process.kill(s.pid, "SIGKILL");
      await waitUntil(async () => !isAlive(s.pid), { timeoutMs: 10000, what: "Conductor to die" });
      const out = openSync(path.join(conductorDir, "server.log"), "a");
      const child = spawn(argv[0]!, argv.slice(1), { cwd, stdio: ["ignore", out, out], detached: true });
      child.unref();
      writeFileSync(conductorState, JSON.stringify({ ...s, pid: child.pid }, null, 2));
      await waitForConductorHealth(s.url, 420_000);
    },
    async restartRedis() {
      redis.signal("SIGKILL");
      await redis.exited();
      redis.start();
      await waitUntil(() => tcpOpen(redisPort), { timeoutMs: 15000, what: "Redis" });
    },
    async restartPostgres() {
      if (!cluster) throw new Error("no own Postgres cluster");
      cluster.restart();
    },
    stopS3() {
      s3.signal("SIGKILL");
    },
    async startS3() {
      await s3.exited();
      s3.start();
      await waitUntil(() => tcpOpen(s3Port), { timeoutMs: 30000, what: "S3 server" });
    },
    async stop() {
      for (const m of [conductorWorkers, bullmqWorkers]) {
        m.signal("SIGCONT");
        m.signal("SIGTERM");
      }
      await Promise.all([conductorWorkers.exited(30_000), bullmqWorkers.exited(30_000)]);
      api.signal("SIGTERM");
      await api.exited(15_000);
      for (const m of [conductorWorkers, bullmqWorkers, api, s3, redis]) m.killGroup();
      // leftovers of killed supervisors (their orphaned children) carry our work dir in their environment
      for (const m of [conductorWorkers, bullmqWorkers]) for (const pid of strays(String(m.env.WORK_DIR))) safeKill(pid);
      cluster?.stop();
      // an S3 server or Redis started again while an earlier one still held the port
      for (const pid of byCommandLine(workDir)) safeKill(pid);
      const s = existsSync(conductorState) ? (JSON.parse(readFileSync(conductorState, "utf8")) as { pid: number }) : undefined;
      if (s && isAlive(s.pid)) safeKill(s.pid);
    },
  };
}

function safeKill(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    /* gone */
  }
}

/** processes whose command line names this directory */
export function byCommandLine(dir: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, "utf8").split("\0").some((a) => a.startsWith(dir + path.sep))) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** processes whose environment names this WORK_DIR (orphans of a killed supervisor) */
export function strays(workDirValue: string): number[] {
  const out: number[] = [];
  const needle = `WORK_DIR=${workDirValue}\0`;
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${d}/environ`, "utf8").includes(needle)) out.push(Number(d));
    } catch {
      /* gone or not ours */
    }
  }
  return out;
}
