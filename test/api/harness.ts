/**
 * Services for the API tests: a fresh Postgres schema (all migrations applied), a real
 * S3-compatible server over HTTP (s3rver) with its own directory, and the real Conductor
 * server at CONDUCTOR_SERVER_URL (started by `npm test`; started here when unset) with the
 * workflow and task definitions of workflows/ registered.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ListMultipartUploadsCommand } from "@aws-sdk/client-s3";
import pg from "pg";
import { pino, type Logger } from "pino";
import { wavHeader } from "../../pipeline/audio/wav.ts";
import { loadConfig, type Config } from "../../pipeline/config.ts";
import { startS3Server, type S3ServerHandle } from "../../scripts/s3-server.ts";
import { migrate } from "../../adapters/postgres/migrate.ts";
import { createStorage, type ServiceStorage } from "../../adapters/storage/index.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export interface ApiServices {
  config: Config;
  pool: pg.Pool;
  storage: ServiceStorage;
  s3: S3ServerHandle;
  conductorUrl: string;
  log: Logger;
  /** rows in the API's tables (recordings, tracks, results, events, step_runs, idempotency_keys, upload_intents) */
  rowCounts(): Promise<Record<string, number>>;
  /** bucket keys under `prefix` and multipart uploads still pending */
  bucketState(prefix?: string): Promise<{ keys: string[]; pendingUploads: number }>;
  /** running workflow ids of the pipeline workflow */
  runningWorkflows(): Promise<string[]>;
  conductor(pathAndQuery: string, init?: RequestInit): Promise<Response>;
  close(): Promise<void>;
}

async function ensureConductor(given?: string): Promise<{ url: string; stop?: () => Promise<void> }> {
  if (given) return { url: given };
  if (process.env.CONDUCTOR_SERVER_URL) return { url: process.env.CONDUCTOR_SERVER_URL };
  const { startConductor } = await import("../../scripts/conductor.ts");
  const stateDir = path.join(root, ".work", "test-api-conductor");
  const h = await startConductor({ stateDir, log: (s) => process.stderr.write(`${s}\n`) });
  return { url: h.url, stop: h.stop };
}

/** Register the task and workflow definitions of workflows/ (idempotent). */
export async function registerWorkflowDefinitions(conductorUrl: string): Promise<void> {
  const base = conductorUrl.replace(/\/+$/, "");
  const tasks = JSON.parse(await readFile(path.join(root, "workflows", "tasks.json"), "utf8")) as unknown[];
  const wf = JSON.parse(await readFile(path.join(root, "workflows", "multitrack_diarization.json"), "utf8")) as unknown;
  const t = await fetch(`${base}/metadata/taskdefs`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(tasks) });
  if (!t.ok) throw new Error(`task definitions: ${t.status} ${await t.text()}`);
  const w = await fetch(`${base}/metadata/workflow`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify([wf]) });
  if (!w.ok) throw new Error(`workflow definition: ${w.status} ${await w.text()}`);
}

/** `opts.conductorUrl`: a Conductor server of the test's own (else the run's, or one started here) */
export async function startApiServices(overrides: Record<string, string> = {}, opts: { conductorUrl?: string } = {}): Promise<ApiServices> {
  const schema = `api_${randomBytes(4).toString("hex")}`;
  const dir = await mkdtemp(path.join(os.tmpdir(), "ts-api-"));
  const s3 = await startS3Server({ dir: path.join(dir, "s3"), inProcess: true });
  const conductor = await ensureConductor(opts.conductorUrl);
  await registerWorkflowDefinitions(conductor.url);
  const config = loadConfig({
    NODE_ENV: "test",
    LOG_LEVEL: process.env.LOG_LEVEL ?? "warn",
    DATABASE_URL: process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test",
    DATABASE_SCHEMA: schema,
    STORAGE_DRIVER: "s3",
    S3_ENDPOINT: s3.endpoint,
    S3_BUCKET: s3.bucket,
    S3_ACCESS_KEY_ID: s3.accessKeyId,
    S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
    CONDUCTOR_SERVER_URL: conductor.url,
    WORK_DIR: path.join(dir, "work"),
    PORT: "0",
    HOST: "127.0.0.1",
    API_RECONCILE_SECONDS: "0",
    STORAGE_SWEEP_SECONDS: "0",
    ...overrides,
  });
  await migrate(config);
  const pool = new pg.Pool({ connectionString: config.DATABASE_URL, options: `-c search_path=${schema}`, max: 6 });
  const storage = createStorage(config);
  const log = pino({ level: config.LOG_LEVEL });
  const base = conductor.url.replace(/\/+$/, "");
  return {
    config,
    pool,
    storage,
    s3,
    conductorUrl: conductor.url,
    log,
    async rowCounts() {
      const out: Record<string, number> = {};
      for (const t of ["recordings", "tracks", "results", "events", "step_runs", "idempotency_keys", "upload_intents"]) {
        out[t] = Number((await pool.query(`SELECT count(*) AS n FROM ${t}`)).rows[0].n);
      }
      return out;
    },
    async bucketState(prefix = "recordings/") {
      const keys = await storage.list(prefix);
      const up = await storage.s3!.client.send(new ListMultipartUploadsCommand({ Bucket: config.S3_BUCKET }));
      return { keys, pendingUploads: up.Uploads?.length ?? 0 };
    },
    async runningWorkflows() {
      const res = await fetch(`${base}/workflow/running/multitrack_diarization?version=1`);
      if (!res.ok) throw new Error(`running workflows: ${res.status}`);
      return ((await res.json()) as string[]).sort();
    },
    conductor: (p, init) => fetch(`${base}${p}`, init),
    async close() {
      await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
      await pool.end();
      await storage.close();
      await s3.stop();
      await conductor.stop?.();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A multipart body (and its content type) built with the platform's FormData. */
export async function multipartBody(
  manifest: unknown,
  files: { name: string; data: Buffer | Uint8Array; field?: string }[],
  opts: { manifestFirst?: boolean } = {},
): Promise<{ body: Buffer; contentType: string }> {
  const form = new FormData();
  const addFiles = (): void => {
    for (const f of files) form.append(f.field ?? "track", new Blob([f.data]), f.name);
  };
  if (opts.manifestFirst === false) addFiles();
  if (manifest !== undefined) form.append("manifest", typeof manifest === "string" ? manifest : JSON.stringify(manifest));
  if (opts.manifestFirst !== false) addFiles();
  const res = new Response(form);
  return { body: Buffer.from(await res.arrayBuffer()), contentType: res.headers.get("content-type")! };
}

/** A valid, tiny 16 kHz mono WAV (silence + a tone) of `seconds`. */
export function wavBytes(seconds = 0.5, rate = 16000): Buffer {
  const n = Math.round(seconds * rate);
  const b = Buffer.alloc(44 + n * 2);
  wavHeader(n * 2, rate).copy(b, 0);
  for (let i = 0; i < n; i++) b.writeInt16LE(Math.round(3000 * Math.sin((2 * Math.PI * 440 * i) / rate)), 44 + i * 2);
  return b;
}

export interface SseEvent {
  event: string;
  id?: string;
  data: Record<string, unknown>;
  /** the event's block as sent */
  raw: string;
}

/** Read a recording's SSE stream to its end (or the timeout), event by event. */
export async function followEvents(baseUrl: string, id: string, headers: Record<string, string>, timeoutMs: number): Promise<SseEvent[]> {
  const res = await fetch(`${baseUrl}/v1/recordings/${id}/events`, { headers: { ...headers, accept: "text/event-stream" }, signal: AbortSignal.timeout(timeoutMs) });
  if (res.status !== 200) throw new Error(`events of ${id}: HTTP ${res.status}`);
  if (!/^text\/event-stream/.test(res.headers.get("content-type") ?? "")) throw new Error(`events of ${id}: not an event stream`);
  const events: SseEvent[] = [];
  const decoder = new TextDecoder();
  let buf = "";
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const lines = block.split("\n");
      const data = lines.filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
      if (!data) continue;
      events.push({
        event: lines.find((l) => l.startsWith("event: "))?.slice(7) ?? "message",
        id: lines.find((l) => l.startsWith("id: "))?.slice(4),
        data: JSON.parse(data) as Record<string, unknown>,
        raw: block,
      });
    }
  }
  return events;
}

/** A `trackscribe serve` child process (tests that kill the API with SIGKILL and start it again). */
export interface ServeProcess {
  url: string;
  child: import("node:child_process").ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * `trackscribe serve` as its own process on a free port with the test services of `svc`
 * (NODE_ENV=test, API_TOKEN `token`, shadow mode off, background loops off unless `extra`
 * turns them on); resolves once it listens. The caller stops (or kills) it.
 */
/** The environment a `trackscribe` child process needs to use these services (the test's database schema, bucket and Conductor). */
export function servicesEnv(svc: ApiServices, logLevel = "info"): Record<string, string> {
  const c = svc.config;
  return {
    ...(process.env as Record<string, string>),
    NODE_ENV: "test",
    LOG_LEVEL: logLevel,
    DATABASE_URL: c.DATABASE_URL!,
    DATABASE_SCHEMA: c.DATABASE_SCHEMA!,
    STORAGE_DRIVER: "s3",
    S3_ENDPOINT: c.S3_ENDPOINT!,
    S3_BUCKET: c.S3_BUCKET,
    S3_ACCESS_KEY_ID: c.S3_ACCESS_KEY_ID!,
    S3_SECRET_ACCESS_KEY: c.S3_SECRET_ACCESS_KEY!,
    CONDUCTOR_SERVER_URL: c.CONDUCTOR_SERVER_URL,
    WORK_DIR: c.WORK_DIR,
  };
}

export async function spawnServe(svc: ApiServices, token: string, extra: Record<string, string> = {}): Promise<ServeProcess> {
  const { spawn } = await import("node:child_process");
  const env: Record<string, string> = {
    ...servicesEnv(svc),
    HOST: "127.0.0.1",
    PORT: "0",
    API_TOKEN: token,
    API_RECONCILE_SECONDS: "0",
    STORAGE_SWEEP_SECONDS: "0",
    SHADOW_MODE: "off",
    ...extra,
  };
  const child = spawn(process.execPath, [path.join(root, "bin", "trackscribe.mjs"), "serve"], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out = (out + d.toString()).slice(-64_000);
      const m = /"address":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(out);
      if (m) resolve(m[1]!);
    });
    void exited.then((x) => reject(new Error(`serve exited (${x.code ?? x.signal}) before listening: ${err}`)));
    setTimeout(() => reject(new Error(`serve did not listen within 60 s: ${err}`)), 60_000).unref();
  });
  return { url, child, exited };
}

/**
 * The Conductor worker host in this process, as the pipeline tests run it (two tasks of a
 * type at once, no reconciler, heavy steps in-process), writing results and events to the
 * test database. Resolves with its stop function.
 */
export async function startInProcessWorkers(svc: ApiServices, overrides: Record<string, unknown> = {}): Promise<() => Promise<unknown>> {
  const { startConductorRuntime } = await import("../../workers/conductor/runtime.ts");
  const { createStepPorts } = await import("../../workers/step-ports.ts");
  const { createConductorTaskEventHandler, createPgResultSink } = await import("../../adapters/postgres/sinks.ts");
  const config = { ...svc.config, WORKER_CONCURRENCY: 2, RECONCILER_ENABLED: false, HEAVY_STEPS_IN_CHILD: false };
  const runtime = await startConductorRuntime(config, {
    storage: svc.storage,
    stepDeps: createStepPorts(config, { storage: svc.storage, log: svc.log, results: createPgResultSink(svc.pool, { log: svc.log }) }),
    log: svc.log,
    onTaskEvent: createConductorTaskEventHandler(svc.pool, { log: svc.log }),
    reconciler: false,
    ...overrides,
  });
  return () => runtime.stop(10_000);
}
