/**
 * A real Conductor OSS server for this machine: fetches the pinned jar from Maven Central
 * with `mvn dependency:copy` into a cache, picks a JDK that runs it, starts it on a free
 * port with its own SQLite file (or on a Postgres database, which several servers can
 * share), and waits for its health endpoint with back-off.
 *
 *   npm run conductor:start   # idempotent; prints CONDUCTOR_SERVER_URL=…
 *   npm run conductor:start -- --steady   # JVM options for a long-running server
 *   npm run conductor:start -- --postgres [postgres://user@host:5432/conductor]
 *        # executions, queues, index and locks in Postgres (database created if missing)
 *   npm run conductor:stop
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ensureDatabase, freePort, isAlive, run, sleep, waitUntil } from "./lib.ts";

export const CONDUCTOR_VERSION = "3.32.3";
const ARTIFACT = `org.conductoross:conductor-server:${CONDUCTOR_VERSION}:jar:boot`;
const MIN_JAVA = 21;

/**
 * Size of the server's database connection pool (HikariCP; Spring Boot's default is 10).
 * 10 deadlocks the SQLite persistence of this server: removing a workflow hands every task
 * to the SQLite index's async executor (up to 10 threads), and each of those holds one
 * connection for its transaction while asking the pool for a second one for the statements
 * inside it. A 3-track recording has 21 tasks, so deleting one could take all 10
 * connections, and every other call (polls, starts, task updates) then waited for the
 * pool's 30 s timeout. With headroom over those 10 holders the inner statements always get
 * a connection. docker-compose.yml sets the same value (test/compose.test.ts checks it).
 */
export const CONDUCTOR_DB_POOL_SIZE = 64;

/**
 * How often the server's own system-task workers poll their queues: 250 ms (server default
 * 50 ms). Our JOINs complete only on that polling (SYNC or not: the server evaluates a JOIN
 * on its JOIN poller, never inside the task update), so a JOIN waits on average half this
 * after its last branch, three times per recording. Each async system task type has its own
 * poller: 7 with the AI integrations off (CONDUCTOR_AI_INTEGRATIONS), 24 with them on. The
 * pollers run whether or not anything is queued, and that is what the choice weighs:
 *  - Idle server, 2 cores, AI integrations off, pop timeout 0 (2026-12-03, 30 s of
 *    /proc/<pid>/stat): 50 ms 0.092 cores, 250 ms 0.022, 1 s 0.012. Per thread during a
 *    10-minute meeting at 250 ms: HTTP 3.2 CPU-s, system-task pollers 2.5, sweeper 1.1.
 *  - At 50 ms the idle pollers took 4.6 % of a 2-core machine for the whole of an
 *    hour-long meeting, time the decoders wanted; the JOINs it saves are ~0.3 s per
 *    recording. 50 ms served the 30-second fixture (bench:conductor: JOIN waits 65–117 ms
 *    per recording at 50 ms, 125–201 ms at 100 ms); a meeting's length is what counts now.
 *  - At 1 s a JOIN waited up to 0.6 s after its last branch, for 0.01 cores more saved.
 * CONDUCTOR_SYSTEM_TASK_POLL in the environment of `conductor:start` overrides it (a
 * Spring duration: 50ms, 1s). docker-compose.yml sets the same (test/compose.test.ts checks it).
 */
export const CONDUCTOR_SYSTEM_TASK_POLL = "250ms";

/**
 * How long one system-task poll may wait for its batch (server default 100 ms): 0, one try.
 * The SQLite queue answers a pop with a timeout by trying again every 100 ms until it has
 * the whole batch (as many tasks as free threads, 4 on 2 cores) or the timeout has passed,
 * and only then hands what it popped to the executor. A single JOIN ready to be evaluated
 * thus waited for the rest of a batch that never came: 100–200 ms after it was popped.
 * With 0 the poller pops once, runs what it got at once, and sleeps the poll interval
 * (CONDUCTOR_SYSTEM_TASK_POLL) only when it got nothing.
 * A JOIN evaluated this soon can lose a race in the server's workflow retry (it re-queues a
 * canceled JOIN before it creates the retried branch task): one CI run failed a retried
 * workflow that way until the API's retry learned to notice and retry again
 * (retryWorkflow in adapters/conductor/gateway.ts).
 */
export const CONDUCTOR_SYSTEM_TASK_POP_TIMEOUT = "0ms";

/**
 * SQLite connection settings for the server's database, as JDBC URL parameters, so that
 * the driver applies them to every connection of the pool.
 *  - WAL journal, 15 s busy timeout: the server's own defaults (its application.properties).
 *  - synchronous=NORMAL: the server means to run this way (SqliteConfiguration runs
 *    `PRAGMA synchronous=NORMAL`), but a pragma is per connection and it runs on the one
 *    connection it opens at start; the other pool connections kept SQLite's default FULL,
 *    which syncs the WAL to disk on every commit. The server commits on every poll (each
 *    poll records its poll time), every JOIN evaluation and every task update.
 *    strace of one recording: 627 fsync calls at FULL. In WAL mode NORMAL syncs at
 *    checkpoints only; the database stays consistent after a crash, and a power loss can
 *    lose the last commits (the sweeper and our reconciler pick up where the state is).
 * docker-compose.yml uses the same (test/compose.test.ts checks it).
 */
export const CONDUCTOR_SQLITE_PARAMS = "busy_timeout=15000&journal_mode=WAL&synchronous=NORMAL";

/**
 * Largest task and workflow payload (input or output) the server keeps inline, and the
 * largest it accepts: both thresholds set to this. Words travel between tasks as JSON
 * (about 72 bytes a word; topics as much again), so finalize's input and the workflow's
 * output grow with the meeting: ~1.4 MB for an hour of speech. The server's defaults (3 MB
 * for a task, 5 MB for a workflow) move anything larger to its "external payload storage",
 * which on this server is a temp directory of its own: the next task's poll then came with
 * an empty input (measured: a 4 MB output, next input `{}` plus a path), and above 10 MB
 * the task failed outright. A meeting of some two hours' speech broke the pipeline so.
 * 32 MB keeps some twenty hours of speech inline; a larger payload fails its task with the
 * server's reason naming the size. docker-compose.yml sets the same
 * (test/compose.test.ts checks it).
 */
export const CONDUCTOR_PAYLOAD_LIMIT = "32MB";
/** the server properties CONDUCTOR_PAYLOAD_LIMIT sets */
export const CONDUCTOR_PAYLOAD_PROPERTIES = [
  "taskInputPayloadSizeThreshold",
  "maxTaskInputPayloadSizeThreshold",
  "taskOutputPayloadSizeThreshold",
  "maxTaskOutputPayloadSizeThreshold",
  "workflowInputPayloadSizeThreshold",
  "maxWorkflowInputPayloadSizeThreshold",
  "workflowOutputPayloadSizeThreshold",
  "maxWorkflowOutputPayloadSizeThreshold",
] as const;

/**
 * The server's JVM options, by use (CONDUCTOR_JVM_OPTS replaces them).
 *  - `quick` (tests, CI, `npm run conductor:start`): C1 only (TieredStopAtLevel=1). A fresh
 *    server is ready sooner and compiles little while a test suite of a few minutes runs.
 *  - `steady` (docker-compose.yml's JAVA_OPTS, `conductor:start -- --steady`, and what
 *    bench:conductor measures): the JVM's full tiered compiler. After its warm-up a
 *    long-running server spends less CPU per request: in bench:conductor 0.68 s of server
 *    CPU per recording against 0.97 s with C1 only, with the same settings. Compiling
 *    takes the first minutes of load (bench:conductor warms until the compiler is done).
 *    Its compiler threads run at nice 19 (`CompilerThreadPriority`, which the JVM applies
 *    only under `ThreadPriorityPolicy=1`): code paths a recording runs a dozen times cross
 *    the compile thresholds only after hundreds of recordings, so a server keeps compiling
 *    in bursts (0.03–0.5 s of CPU in single recordings after 40 warm-up ones), on the cores
 *    the decoders want. At nice 19 a compile waits for a moment the decoders leave a core
 *    free. The policy also lets the JVM raise a few of its own threads (VM thread,
 *    reference handler) where it has the right to; without it (not root) it warns once at
 *    start and the compiler is still lowered (anyone may lower a thread's priority).
 * Both use the serial collector: one small heap, no concurrent GC threads beside the
 * decoders on a small machine.
 */
export const CONDUCTOR_JVM_OPTS = {
  quick: ["-Xms256m", "-Xmx1536m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"],
  steady: ["-Xms256m", "-Xmx1536m", "-XX:+UseSerialGC", "-XX:ThreadPriorityPolicy=1", "-XX:CompilerThreadPriority=19"],
} as const;
export type ConductorJvm = keyof typeof CONDUCTOR_JVM_OPTS;

/**
 * Whether the server's AI integrations are on (its application.properties turns them on).
 * They bring 17 system task types (LLM_*, the MCP and agent tasks, GENERATE_IMAGE/AUDIO/
 * VIDEO/PDF), and the server runs one poller thread per system task type: 24 pollers, 7
 * without them. We call our LLM from our own workers and use none of these tasks. Off,
 * the idle server measured 0.05 cores instead of 0.08 (2 cores), and the pollers' share
 * during a run fell from 0.06–0.09 cores. docker-compose.yml sets the same.
 */
export const CONDUCTOR_AI_INTEGRATIONS = false;

/**
 * The server's workflow scheduler (cron-started workflows; its properties turn it on):
 * off. We start every workflow ourselves; off, its scheduling and archival threads are
 * gone (0.01 cores of an idle server on 2 cores). docker-compose.yml sets the same.
 */
export const CONDUCTOR_SCHEDULER = false;

/**
 * Sweeper threads (server default: 2 per core). Each one pops the decider queue about ten
 * times a second whether or not anything is due; the sweeper re-decides a workflow when its
 * 30 s offset passes (timeouts, lost updates; our reconciler forces a decide for stalled
 * ones too). One thread sweeps hundreds of workflows a second, far beyond what one worker
 * node runs; an idle server's sweeper CPU fell from 0.016 to 0.005 cores (2 cores).
 * docker-compose.yml sets the same.
 */
export const CONDUCTOR_SWEEPER_THREADS = 1;

/**
 * The server's task search index (`/api/tasks/search`, the UI's task search): off. With
 * SQLite every task update was indexed on the spot, each one a JSON copy of the task's
 * input and output written again: every JOIN evaluation (about 20 a second while a
 * recording's tracks are transcribed) and every hand-off. Nothing here searches tasks;
 * workflow search (the UI's list) stays on. Measured on 12 recordings each, side by side
 * on two servers: JOIN evaluation CPU 0.223 → 0.162 s per recording, HTTP threads 0.247 →
 * 0.228 s. docker-compose.yml sets the same; CONDUCTOR_TASK_INDEXING=true (compose:
 * CONDUCTOR_APP_TASKINDEXINGENABLED) turns it back on.
 */
export const CONDUCTOR_TASK_INDEXING = false;

/*
 * Queues stay in SQLite (the server's default). Tried and not adopted: the Redis queue
 * (`conductor.queue.type=redis_standalone`). SQLite answers a held poll by popping every
 * 100 ms, so each hand-off between steps waits 50–100 ms (median 70 ms); in Redis the
 * median was 6 ms and idle CPU (server, Redis, workers) 0.15 instead of ≈ 0.35 cores. But
 * in the full test suite a shadow-mode run took 126 s instead of 14 s and an API run 48 s
 * instead of 17 s (each 14–31 s when run alone): consistent with that queue's per-server
 * prefetch cache holding a message for a poller that has gone away until the message's
 * unack timeout. A minute-long stall after a worker restarts is worse than 70 ms a step.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/**
 * Postgres persistence, for more than one server (docs/conductor.md "Conductor on
 * Postgres"). With `conductor.db.type=postgres` the server's Postgres module (in the boot
 * jar: conductor-postgres-persistence) provides every store: executions and metadata, the
 * task and decider queues (its QueueDAO comes with the db type; `conductor.queue.type` is
 * set as well so the configuration says what it is), poll data, and, with
 * `conductor.indexing.type=postgres`, the workflow search index (tables workflow_index and
 * task_index; no Elasticsearch). Its Flyway migrations (classpath db/migration_postgres,
 * V1–V18, and the data back-fills of db/migration_postgres_data) create the schema in the
 * database at the first start; a second server finds them applied.
 *  - Locks: `conductor.workflow-execution-lock.type=postgres` (table `locks`). The server
 *    takes a workflow's lock around each decide; with SQLite the lock is `local_only`, an
 *    in-memory lock that another server does not see, so two servers could decide one
 *    workflow at once (a worker's update through one, the sweeper or a JOIN poll on the
 *    other). A caller's own lock choice (extraArgs, e.g. the tests' Redis lock) wins.
 *  - The queue's pop is the SQLite one's (pop, sleep 100 ms, until the batch is full or
 *    the timeout has passed; PostgresQueueDAO.pollMessages), so CONDUCTOR_SYSTEM_TASK_POLL
 *    and CONDUCTOR_SYSTEM_TASK_POP_TIMEOUT apply unchanged; so do the payload limits, the
 *    task index off, the sweeper, scheduler and AI integration settings.
 *  - The pool differs: CONDUCTOR_PG_POOL_SIZE, CONDUCTOR_PG_POOL_MIN_IDLE.
 */
export interface ConductorPostgres {
  /** the server's database, as a postgres:// URL (user and password in it, if any) */
  url: string;
}

/** The database `conductor:start -- --postgres` uses when given no URL. */
export const CONDUCTOR_PG_DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/conductor";

/**
 * Connections per server on Postgres at most (SQLite: CONDUCTOR_DB_POOL_SIZE, 64). Every
 * server sharing a database holds its own pool, and a Postgres server accepts 100
 * connections by default (`max_connections`), which the API's and the workers' pools
 * (DATABASE_POOL_MAX each) share when Conductor uses the same Postgres server. 64 per
 * server would let two servers alone exhaust it. The SQLite deadlock that asked for 64
 * (one transaction waiting for a second connection while ten index threads hold one each)
 * comes from the SQLite index's executor; the Postgres module's async index pool has at most
 * 12 threads (`conductor.postgres.async-max-pool-size`), so 32 keeps headroom over them and
 * over the HTTP threads. Measured (pg_stat_activity every 0.5 s) in two runs of
 * test/conductor/shared-db.int.test.ts, two servers, 3–4 workflows of the 3-track fixture:
 * at most 21–26 connections open to the database across both servers, at most 5 active.
 * docker-compose.yml sets the same (test/compose.test.ts checks it).
 */
export const CONDUCTOR_PG_POOL_SIZE = 32;

/**
 * Idle connections a Postgres-backed server keeps (HikariCP's default: the pool size, so
 * every server would hold all 32 from its start on, idle or not). 4: an idle server polls
 * its queues on a few connections; the pool grows to CONDUCTOR_PG_POOL_SIZE under load and
 * gives back idle connections after HikariCP's idle timeout (10 minutes).
 * docker-compose.yml sets the same.
 */
export const CONDUCTOR_PG_POOL_MIN_IDLE = 4;

/** `postgres://user:password@host:port/db` as the JDBC URL and credentials the server takes. */
export function jdbcOf(url: string): { jdbcUrl: string; user: string; password: string; database: string } {
  const u = new URL(url);
  if (u.protocol !== "postgres:" && u.protocol !== "postgresql:") throw new Error(`not a postgres:// URL: ${url}`);
  const database = decodeURIComponent(u.pathname.replace(/^\//, ""));
  if (!database) throw new Error(`the Postgres URL names no database: ${url}`);
  const query = u.search;
  return {
    jdbcUrl: `jdbc:postgresql://${u.hostname}:${u.port || "5432"}/${database}${query}`,
    user: decodeURIComponent(u.username) || "postgres",
    password: decodeURIComponent(u.password),
    database,
  };
}

/** The server properties that put it on Postgres (see ConductorPostgres). */
export function postgresProperties(pgUrl: string, extraArgs: readonly string[] = []): string[] {
  const j = jdbcOf(pgUrl);
  const lockChosen = extraArgs.some((a) => a.startsWith("--conductor.workflow-execution-lock.type="));
  return [
    `--spring.datasource.url=${j.jdbcUrl}`,
    `--spring.datasource.username=${j.user}`,
    `--spring.datasource.password=${j.password}`,
    `--spring.datasource.hikari.maximum-pool-size=${CONDUCTOR_PG_POOL_SIZE}`,
    `--spring.datasource.hikari.minimum-idle=${CONDUCTOR_PG_POOL_MIN_IDLE}`,
    "--conductor.db.type=postgres",
    "--conductor.queue.type=postgres",
    "--conductor.indexing.type=postgres",
    ...(lockChosen ? [] : ["--conductor.workflow-execution-lock.type=postgres"]),
  ];
}

/** The server properties of its SQLite file (the default). */
export function sqliteProperties(dbFile: string): string[] {
  return [`--spring.datasource.url=jdbc:sqlite:${dbFile}?${CONDUCTOR_SQLITE_PARAMS}`, `--spring.datasource.hikari.maximum-pool-size=${CONDUCTOR_DB_POOL_SIZE}`];
}

/** A URL without its password (for logs and the state file). */
const redact = (url: string): string => {
  const u = new URL(url);
  if (u.password) u.password = "***";
  return u.toString();
};


export function cacheDir(env = process.env): string {
  return path.join(env.TRACKSCRIBE_CACHE ?? path.join(env.XDG_CACHE_HOME ?? path.join(os.homedir(), ".cache"), "trackscribe"), "conductor");
}

/** The jar path, downloading it with Maven the first time. */
export function ensureConductorJar(env = process.env): string {
  const dir = cacheDir(env);
  const jar = path.join(dir, `conductor-server-${CONDUCTOR_VERSION}-boot.jar`);
  if (existsSync(jar)) return jar;
  mkdirSync(dir, { recursive: true });
  process.stderr.write(`fetching ${ARTIFACT} from Maven Central…\n`);
  const r = run("mvn", ["-q", "-B", "dependency:copy", `-Dartifact=${ARTIFACT}`, `-DoutputDirectory=${dir}`]);
  if (!r.ok || !existsSync(jar)) throw new Error(`could not fetch ${ARTIFACT} with mvn dependency:copy:\n${r.out.slice(-2000)}`);
  return jar;
}

function javaMajor(java: string): number {
  const r = run(java, ["-version"]);
  const m = /version "(\d+)(?:\.(\d+))?/.exec(r.out);
  if (!m) return 0;
  const major = Number(m[1]);
  return major === 1 ? Number(m[2]) : major;
}

/** JAVA_HOME, then `java` on PATH, then any JDK under /usr/lib/jvm, newest first. */
export function findJava(env = process.env): string {
  const candidates: string[] = [];
  if (env.CONDUCTOR_JAVA) candidates.push(env.CONDUCTOR_JAVA);
  if (env.JAVA_HOME) candidates.push(path.join(env.JAVA_HOME, "bin", "java"));
  candidates.push("java");
  if (existsSync("/usr/lib/jvm")) {
    for (const d of readdirSync("/usr/lib/jvm").sort().reverse()) candidates.push(path.join("/usr/lib/jvm", d, "bin", "java"));
  }
  const seen: string[] = [];
  for (const c of candidates) {
    const major = javaMajor(c);
    if (major >= MIN_JAVA) return c;
    seen.push(`${c} (${major || "not runnable"})`);
  }
  throw new Error(`Conductor ${CONDUCTOR_VERSION} needs Java ${MIN_JAVA}+; found only: ${seen.join(", ")}. Install a JDK ${MIN_JAVA}+ or set CONDUCTOR_JAVA.`);
}

export interface ConductorHandle {
  url: string;
  pid: number;
  port: number;
  /** the SQLite file; empty on Postgres */
  dbFile: string;
  /** on Postgres: its database URL (password redacted) */
  database?: string;
  stop(): Promise<void>;
}

interface StateFile {
  pid: number;
  port: number;
  url: string;
  dbFile: string;
  database?: string;
}

export function defaultStateDir(env = process.env): string {
  return path.resolve(root, env.WORK_DIR ?? ".work", "conductor");
}

export async function isConductorHealthy(url: string): Promise<boolean> {
  try {
    const base = url.replace(/\/api\/?$/, "");
    const res = await fetch(`${base}/health`, { signal: AbortSignal.timeout(2000) });
    if (!res.ok) return false;
    const body = (await res.json()) as { healthy?: boolean };
    if (body.healthy !== true) return false;
    const md = await fetch(`${url.replace(/\/$/, "")}/metadata/taskdefs`, { signal: AbortSignal.timeout(3000) });
    return md.ok;
  } catch {
    return false;
  }
}

/** Wait for a Conductor server with back-off and a clear message (its health check is slow and flaky at start). */
export async function waitForConductorHealth(url: string, timeoutMs: number, log: (s: string) => void = () => {}): Promise<void> {
  let lastNote = 0;
  await waitUntil(() => isConductorHealthy(url), {
    timeoutMs,
    what: `Conductor at ${url}`,
    initialDelayMs: 500,
    onWait: (ms) => {
      if (ms - lastNote > 10000) {
        lastNote = ms;
        log(`still waiting for Conductor at ${url} (${Math.round(ms / 1000)} s)…`);
      }
    },
  });
}

async function stopPid(pid: number, graceMs = 15000): Promise<void> {
  if (!isAlive(pid)) return;
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(200);
  if (isAlive(pid)) process.kill(pid, "SIGKILL");
}

/**
 * Start (or reuse) a server whose state lives in `stateDir`. With `fresh`, any existing
 * server of that dir is stopped and its SQLite file removed, so a test run gets its own.
 */
export async function startConductor(
  opts: {
    stateDir?: string;
    fresh?: boolean;
    timeoutMs?: number;
    extraArgs?: string[];
    log?: (s: string) => void;
    /** JVM options (CONDUCTOR_JVM_OPTS): `quick` (default) or `steady` */
    jvm?: ConductorJvm;
    /** payload thresholds (default CONDUCTOR_PAYLOAD_LIMIT); null: the server's own (tests of what they do) */
    payloadLimit?: string | null;
    /** persist to this Postgres database (created if missing) instead of a SQLite file of stateDir */
    postgres?: ConductorPostgres;
  } = {},
): Promise<ConductorHandle> {
  // a bad Postgres URL is refused before anything starts
  if (opts.postgres) jdbcOf(opts.postgres.url);
  const stateDir = path.resolve(opts.stateDir ?? defaultStateDir());
  const log = opts.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  const stateFile = path.join(stateDir, "server.json");
  mkdirSync(stateDir, { recursive: true });
  const handle = (s: StateFile): ConductorHandle => ({
    ...s,
    stop: async () => {
      await stopConductor(stateDir);
    },
  });

  if (existsSync(stateFile)) {
    const s = JSON.parse(readFileSync(stateFile, "utf8")) as StateFile;
    const wanted = opts.postgres ? redact(opts.postgres.url) : undefined;
    if (opts.fresh) await stopConductor(stateDir);
    else if (isAlive(s.pid) && s.database !== wanted) {
      log(`the running server (pid ${s.pid}) persists to ${s.database ?? s.dbFile}, not ${wanted ?? "SQLite"}: restarting it`);
      await stopConductor(stateDir);
    } else if (isAlive(s.pid)) {
      await waitForConductorHealth(s.url, opts.timeoutMs ?? 180000, log);
      return handle(s);
    }
  }
  const jar = ensureConductorJar();
  const java = findJava();
  const port = await freePort();
  if (opts.postgres) await ensureDatabase(jdbcOf(opts.postgres.url).database, opts.postgres.url);
  const dbFile = opts.postgres ? "" : path.join(stateDir, `conductor-${Date.now()}.db`);
  if (opts.fresh) for (const f of readdirSync(stateDir)) if (f.startsWith("conductor-") && f.includes(".db")) rmSync(path.join(stateDir, f), { force: true });
  const logFile = path.join(stateDir, "server.log");
  const out = openSync(logFile, "a");
  const args = [
    ...(process.env.CONDUCTOR_JVM_OPTS ? process.env.CONDUCTOR_JVM_OPTS.split(/\s+/).filter(Boolean) : CONDUCTOR_JVM_OPTS[opts.jvm ?? "quick"]),
    "-jar",
    jar,
    `--server.port=${port}`,
    ...(opts.postgres ? postgresProperties(opts.postgres.url, opts.extraArgs) : sqliteProperties(dbFile)),
    `--conductor.app.systemTaskWorkerPollInterval=${process.env.CONDUCTOR_SYSTEM_TASK_POLL ?? CONDUCTOR_SYSTEM_TASK_POLL}`,
    `--conductor.app.systemTaskQueuePopTimeout=${CONDUCTOR_SYSTEM_TASK_POP_TIMEOUT}`,
    `--conductor.integrations.ai.enabled=${CONDUCTOR_AI_INTEGRATIONS}`,
    `--conductor.scheduler.enabled=${CONDUCTOR_SCHEDULER}`,
    `--conductor.app.sweeperThreadCount=${CONDUCTOR_SWEEPER_THREADS}`,
    `--conductor.app.taskIndexingEnabled=${process.env.CONDUCTOR_TASK_INDEXING ?? CONDUCTOR_TASK_INDEXING}`,
    ...(opts.payloadLimit === null ? [] : CONDUCTOR_PAYLOAD_PROPERTIES.map((p) => `--conductor.app.${p}=${opts.payloadLimit ?? CONDUCTOR_PAYLOAD_LIMIT}`)),
    // keep the server on loopback and quiet
    "--server.address=127.0.0.1",
    "--logging.level.root=WARN",
    "--logging.level.com.netflix.conductor=WARN",
    ...(opts.extraArgs ?? []),
  ];
  const child = spawn(java, args, { detached: true, stdio: ["ignore", out, out], cwd: stateDir });
  child.unref();
  const url = `http://127.0.0.1:${port}/api`;
  const state: StateFile = { pid: child.pid!, port, url, dbFile, ...(opts.postgres ? { database: redact(opts.postgres.url) } : {}) };
  writeFileSync(stateFile, JSON.stringify(state, null, 2));
  log(`starting Conductor ${CONDUCTOR_VERSION} (pid ${child.pid}, port ${port}, db ${state.database ?? dbFile}, log ${logFile})…`);
  try {
    await waitForConductorHealth(url, opts.timeoutMs ?? 180000, log);
  } catch (err) {
    const tail = existsSync(logFile) ? readFileSync(logFile, "utf8").split("\n").slice(-30).join("\n") : "";
    await stopConductor(stateDir);
    throw new Error(`${(err as Error).message}; last server log lines:\n${tail}`);
  }
  return handle(state);
}

export async function stopConductor(stateDir = defaultStateDir()): Promise<boolean> {
  const stateFile = path.join(stateDir, "server.json");
  if (!existsSync(stateFile)) return false;
  const s = JSON.parse(readFileSync(stateFile, "utf8")) as StateFile;
  await stopPid(s.pid);
  rmSync(stateFile, { force: true });
  return true;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const cmd = process.argv[2];
  if (cmd === "start") {
    const pgAt = process.argv.indexOf("--postgres");
    const pgArg = pgAt > 0 ? process.argv[pgAt + 1] : undefined;
    const postgres = pgAt > 0 ? { url: pgArg && !pgArg.startsWith("--") ? pgArg : CONDUCTOR_PG_DEFAULT_URL } : undefined;
    startConductor({ fresh: process.argv.includes("--fresh"), jvm: process.argv.includes("--steady") ? "steady" : "quick", postgres })
      .then((h) => process.stdout.write(`CONDUCTOR_SERVER_URL=${h.url}\n`))
      .catch((err: Error) => {
        process.stderr.write(`conductor:start failed: ${err.message}\n`);
        process.exit(1);
      });
  } else if (cmd === "stop") {
    stopConductor()
      .then((stopped) => process.stdout.write(stopped ? "Conductor stopped\n" : "no Conductor was running from this work dir\n"))
      .catch((err: Error) => {
        process.stderr.write(`conductor:stop failed: ${err.message}\n`);
        process.exit(1);
      });
  } else {
    process.stderr.write("usage: conductor.ts start [--fresh] [--steady] [--postgres [postgres://user@host:port/db]] | stop\n");
    process.exit(2);
  }
}
