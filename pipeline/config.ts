/**
 * The one configuration object. Built once per process from the environment by
 * `loadConfig(process.env)` in the wiring code (bin/, server.ts, worker hosts) and passed
 * down; nothing else reads process.env. A bad or missing variable fails fast with a
 * message naming every offending variable.
 */
import os from "node:os";
import { z } from "zod/v4";

const bool = z
  .enum(["1", "0", "true", "false", "yes", "no", "on", "off"])
  .transform((v) => ["1", "true", "yes", "on"].includes(v));
const int = (def: number, min = 0, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max).default(def);
const num = (def: number, min = -Infinity, max = Infinity) => z.coerce.number().min(min).max(max).default(def);
const url = z.url();

/** Every variable the product reads. The README table and the compose check use this list. */
export const EnvSchema = z.object({
  NODE_ENV: z.enum(["development", "production", "test"]).default("development"),
  /** git commit baked into the Docker image (workers report it as part of their build id) */
  BUILD_COMMIT: z.string().optional(),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  WORK_DIR: z.string().min(1).default(".work"),

  // storage
  STORAGE_DRIVER: z.enum(["local", "s3"]).default("local"),
  LOCAL_STORAGE_DIR: z.string().min(1).default(".work/storage"),
  S3_ENDPOINT: url.optional(),
  S3_REGION: z.string().min(1).default("us-east-1"),
  S3_BUCKET: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, "must be a valid bucket name").default("trackscribe"),
  S3_ACCESS_KEY_ID: z.string().optional(),
  S3_SECRET_ACCESS_KEY: z.string().optional(),
  S3_FORCE_PATH_STYLE: bool.default(true),
  /** multipart parts (5 MiB each) a streamed upload sends at once: memory ≈ (this + 2) × 5 MiB per upload */
  S3_UPLOAD_QUEUE_SIZE: int(1, 1, 16),
  /** where streamed uploads spool their parts (default: the OS temp dir; empty: in memory) */
  S3_SPOOL_DIR: z.string().optional(),

  // services
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, "must be a postgres:// URL").optional(),
  REDIS_URL: z.string().regex(/^rediss?:\/\//, "must be a redis:// URL").default("redis://127.0.0.1:6379"),
  CONDUCTOR_SERVER_URL: url.default("http://127.0.0.1:8080/api"),
  CONDUCTOR_WAIT_SECONDS: int(180, 0),
  CONDUCTOR_POLL_INTERVAL_MS: int(25, 1, 60000),
  /** how long the server holds a poll open waiting for a task (long poll) */
  CONDUCTOR_LONG_POLL_MS: int(1000, 0, 30000),
  /** hold our polls in the worker host (woken by this process's task results) instead of on the server */
  CONDUCTOR_HELD_POLLS: bool.default(true),
  /** within a held poll, the longest pause between two asks without a wake-up */
  CONDUCTOR_POLL_SLICE_MS: int(1000, 5, 30000),
  /** within held polls in an idle process, the longest pause for a type found empty again and again (doubling from the slice) */
  CONDUCTOR_POLL_IDLE_MAX_MS: int(3000, 5, 300000),
  /** register task and workflow definitions when a worker host starts */
  CONDUCTOR_REGISTER: bool.default(true),
  /** comma-separated task types this worker host serves (default: all) */
  CONDUCTOR_TASKS: z.string().regex(/^[a-z_]+(,[a-z_]+)*$/, "must be task names separated by commas").optional(),

  // engines
  ASR_ENGINE: z.enum(["pocketsphinx", "openai"]).default("pocketsphinx"),
  ASR_URL: url.optional(),
  ASR_API_KEY: z.string().optional(),
  ASR_MODEL: z.string().default("whisper-1"),
  ASR_CONCURRENCY: int(Math.max(1, os.availableParallelism()), 1, 64),
  /** segments one process has in flight at an OpenAI-compatible speech server */
  ASR_HTTP_CONCURRENCY: int(4, 1, 64),
  /** attempts per segment at the speech server (429, 5xx, timeouts and network errors are retried, honouring Retry-After) */
  ASR_HTTP_MAX_ATTEMPTS: int(4, 1, 20),
  /** one request to the speech server */
  ASR_HTTP_TIMEOUT_SECONDS: num(120, 1, 3600),
  /** seconds an idle pocketsphinx decoder stays loaded; 0: while the process lives (workers load them at start) */
  ASR_IDLE_SECONDS: num(0, 0),
  POCKETSPHINX_HMM: z.string().default("/usr/share/pocketsphinx/model/en-us/en-us"),
  POCKETSPHINX_DICT: z.string().default("/usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict"),
  POCKETSPHINX_LM: z.string().default("/usr/share/pocketsphinx/model/en-us/en-us.lm.bin"),
  /** decoders read the dictionary cut to the language model's words (same results, faster start) */
  POCKETSPHINX_PRUNE_DICT: bool.default(true),
  TEXT_ENGINE: z.enum(["offline", "openai"]).default("offline"),
  LLM_URL: url.optional(),
  LLM_MODEL: z.string().default("gpt-4o-mini"),
  LLM_API_KEY: z.string().optional(),
  LLM_TIMEOUT_SECONDS: num(120, 1, 3600),
  /** attempts per chat request: transport errors and unparseable answers are retried */
  LLM_MAX_ATTEMPTS: int(3, 1, 10),
  BLEED_THRESHOLD_DB: num(10, 0, 60),

  // HTTP API
  PORT: int(3000, 0, 65535),
  /** loopback by default: the container image sets 0.0.0.0 */
  HOST: z.string().min(1).default("127.0.0.1"),
  API_TOKEN: z.string().min(16, "must be at least 16 characters").optional(),
  /** every request acts as the operator: only behind another authenticating proxy */
  AUTH_DISABLED: bool.default(false),
  MAX_TRACKS: int(16, 1, 256),
  /** JSON-referenced tracks must live under this prefix (an API key: under <prefix><key name>/) */
  INCOMING_PREFIX: z.string().regex(/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*\/$/, "must be a relative key prefix ending in '/'").refine((p) => !p.startsWith("recordings/") && !p.split("/").includes(".."), "must not be under recordings/").default("incoming/"),
  MAX_TRACK_BYTES: int(2 * 1024 * 1024 * 1024, 1024),
  /** uploads streaming at once (each ≈ 6 MB of the API's memory, parts spooled to disk); more wait: 503 + Retry-After */
  MAX_CONCURRENT_UPLOADS: int(4, 1, 1000),
  /** recordings one API key (or the operator) may create per minute: 429 + Retry-After beyond */
  CREATE_RATE_PER_MINUTE: int(60, 1, 100000),
  /** event streams open at once, and per recording: 503 + Retry-After beyond */
  MAX_SSE_STREAMS: int(500, 1, 100000),
  MAX_SSE_PER_RECORDING: int(20, 1, 10000),
  /** an upload that sends nothing this long is cut off and removed (a stalled or slowloris client) */
  UPLOAD_IDLE_SECONDS: num(60, 0.1, 3600),
  /** the bytes of all tracks of one upload together */
  MAX_UPLOAD_BYTES: int(8 * 1024 * 1024 * 1024, 1024),
  /** longest track (its audio); workers decode no further (-t) */
  MAX_TRACK_SECONDS: num(4 * 3600, 1, 48 * 3600),
  /** longest timeline of a recording, offsets included */
  MAX_RECORDING_SECONDS: num(6 * 3600, 1, 72 * 3600),
  /** shortest track (its audio): a track with no samples is refused */
  MIN_TRACK_SECONDS: num(0.1, 0, 60),
  /** workflows running at once per owner (API key, or the operator); more recordings wait queued */
  MAX_WORKFLOWS_PER_OWNER: int(8, 1, 10000),
  /** a queued recording with no workflow this long (the API stopped between row and start) is started by the reconciler */
  START_GRACE_SECONDS: num(15, 0.1, 3600),
  /** a recording whose workflow could not be started for this long is failed with a reason */
  START_GIVE_UP_SECONDS: num(3600, 1),
  /** test only (NODE_ENV=test): the API kills itself (SIGKILL) at this point of creating a recording */
  TEST_CRASH_AT: z.enum(["after_row", "after_workflow_start"]).optional(),
  /** Postgres schema for the API's tables (default: the connection's search_path, usually public) */
  DATABASE_SCHEMA: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, "must be a lowercase SQL identifier").optional(),
  DATABASE_POOL_MAX: int(10, 1, 200),
  /** apply pending migrations when `trackscribe serve` starts */
  MIGRATE_ON_START: bool.default(true),
  /** how often the API compares unfinished recordings with their Conductor workflow (0: only on request) */
  API_RECONCILE_SECONDS: num(5, 0),
  /** task attempts of one recording that may time out (a worker host died or hung) before its workflow's failure stands (server/infra-rescue.ts) */
  INFRA_RETRY_BUDGET: int(6, 0, 100),
  /** SSE keep-alive comment interval */
  SSE_HEARTBEAT_SECONDS: num(15, 0.05),
  /** how often the API's storage sweeper looks for objects to remove (0: never; adapters/storage/sweeper.ts) */
  STORAGE_SWEEP_SECONDS: num(30, 0),
  /** an upload not finished after this long is abandoned (the API stopped mid-upload): its objects are removed */
  STORAGE_SWEEP_UPLOAD_STALE_SECONDS: num(6 * 3600, 60),
  /** the API's public base URL (e.g. https://meetings.example.com): webhook bodies link to it; unset: links are paths such as /v1/recordings/<id> */
  PUBLIC_URL: url.optional(),
  /** how often the API's webhook dispatcher looks for due deliveries (0: this process sends none) */
  WEBHOOK_POLL_SECONDS: num(1, 0, 3600),
  /** one attempt's limit: connecting, sending and reading the first 1 KB of the answer */
  WEBHOOK_TIMEOUT_SECONDS: num(10, 0.05, 120),
  /** attempts per delivery before it is failed for good (5xx, 429, 408, timeouts and network errors are retried; other answers are not) */
  WEBHOOK_MAX_ATTEMPTS: int(8, 1, 50),
  /** the first retry's delay; each next one is 3.5 times longer (±20 % jitter): 60 s and 8 attempts span about a day */
  WEBHOOK_RETRY_BASE_SECONDS: num(60, 0.001, 86400),
  /** the longest delay between two attempts (a receiver's Retry-After is honoured up to it) */
  WEBHOOK_RETRY_MAX_SECONDS: num(12 * 3600, 0.001, 7 * 86400),
  /** webhooks one API key (or the operator) may have */
  WEBHOOK_MAX_PER_OWNER: int(25, 1, 1000),
  /** allow webhook receivers on loopback, private, link-local and metadata addresses (tests; receivers inside your own network) */
  WEBHOOK_ALLOW_PRIVATE: bool.default(false),

  // workers
  WORKER_SLOT: int(0, 0, 1024),
  WORKER_CONCURRENCY: int(2, 1, 64),
  /** transcribe_track tasks one worker process holds at once (default ASR_CONCURRENCY + 1: see transcribeConcurrency) */
  TRANSCRIBE_CONCURRENCY: z.coerce.number().int().min(1).max(64).optional(),
  DRAIN_TIMEOUT_SECONDS: int(60, 0),
  /** set by the supervisor for its children: the pid in the worker id `host/slot/pid` (survives restarts) */
  WORKER_ID_PID: z.coerce.number().int().positive().optional(),
  /** a child that ran this long before exiting restarts after 1 s again (back-off reset) */
  SUPERVISOR_HEALTHY_SECONDS: num(60, 0),
  /** multiplies the restart back-off 1,2,4,8,16,30 s (tests use e.g. 0.01) */
  SUPERVISOR_BACKOFF_SCALE: num(1, 0.0001, 100),
  // child channel for heavy steps (workers/child)
  CHILD_CALL_TIMEOUT_SECONDS: num(3600, 0.001),
  /** once a step streams progress, this much silence counts as a stall */
  CHILD_STALL_TIMEOUT_SECONDS: num(300, 0.001),
  CHILD_PING_INTERVAL_SECONDS: num(5, 0.001),
  /** a child that answers no ping this long while a call runs is hung and replaced */
  CHILD_PING_TIMEOUT_SECONDS: num(60, 0.001),
  CHILD_MAX_PAYLOAD_BYTES: int(64 * 1024 * 1024, 1024),
  /** a heavy step whose child process died under it runs again in a fresh one this many times before failing (no orchestrator retry spent) */
  STEP_INFRA_RERUNS: int(2, 0, 20),
  /** times one task is handed back to its orchestrator because a dependency (S3, Postgres, Redis) was down, before it fails as usual */
  STEP_OUTAGE_HANDBACKS: int(30, 0, 1000),
  /** how long a handed-back task waits before it runs again */
  STEP_OUTAGE_RETRY_SECONDS: int(5, 1, 600),
  /** run heavy steps (audio decoding, ASR, mixdown) in a child process */
  HEAVY_STEPS_IN_CHILD: bool.default(true),
  RECONCILER_ENABLED: bool.default(true),
  RECONCILER_INTERVAL_SECONDS: num(15, 0.1),
  RECONCILER_STALL_SECONDS: num(60, 0.1),
  /** `task=ms,task=ms`: a completion faster than this is flagged as suspicious */
  SUSPICIOUS_FAST_MS: z.string().default("prepare_track=20,transcribe_track=200,plan_speech=2,mixdown=20"),

  // shadow mode
  SHADOW_MODE: z.enum(["off", "bullmq"]).default("off"),
  SHADOW_SAMPLE_RATE: num(1, 0, 1),
  SHADOW_WER_TOLERANCE: num(0, 0, 1),
  SHADOW_TIME_TOLERANCE_SECONDS: num(0.05, 0),
  /** comma-separated comparison names to classify as ignored, e.g. `duration,summary` */
  SHADOW_IGNORE: z.string().default(""),
  /** run the BullMQ workers of shadow runs inside the API process (false when `trackscribe workers --engine bullmq` runs them) */
  SHADOW_WORKERS_IN_API: bool.default(true),
  /** how long a shadow comparison waits for the authoritative (Conductor) run to end */
  SHADOW_WAIT_SECONDS: int(1800, 1),
  /** test-only `step` or `step:track` whose BullMQ output is altered; honoured only when NODE_ENV=test */
  SHADOW_TEST_PERTURB: z.string().regex(/^[a-z_]+(:\d+)?$/, "must be step or step:track").optional(),

  // BullMQ engine (shadow mode and `--engine bullmq`)
  BULLMQ_PREFIX: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be letters, digits, '-' or '_'").default("trackscribe"),
  /** a job whose worker stops renewing its lock this long is stalled and run again */
  BULLMQ_LOCK_MS: int(30000, 1000),
  BULLMQ_STALLED_INTERVAL_MS: int(30000, 500),
  BULLMQ_MAX_STALLED: int(3, 0, 100),
  /** how often the coordinator checks its jobs' states besides listening to queue events */
  BULLMQ_SWEEP_MS: int(2000, 50),
  BULLMQ_MAX_ATTEMPTS: int(3, 1, 50),
  BULLMQ_RETRY_BASE_MS: int(1000, 0),
});
export type Env = z.infer<typeof EnvSchema>;

export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(readonly problems: { variable: string; message: string }[]) {
    super(`invalid configuration:\n${problems.map((p) => `  ${p.variable}: ${p.message}`).join("\n")}`);
  }
}

export type Config = Env & { suspiciousFastMs: Record<string, number> };

function parseFloors(spec: string): Record<string, number> | string {
  const out: Record<string, number> = {};
  for (const part of spec.split(",").map((s) => s.trim()).filter(Boolean)) {
    const m = /^([a-z_]+)=(\d+)$/.exec(part);
    if (!m) return `'${part}' is not task=ms`;
    out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** Pure: the environment in, a validated config out (or a ConfigError naming each variable). */
export function loadConfig(env: Record<string, string | undefined>): Config {
  // empty strings count as unset, as in docker-compose files with `VAR=`
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const parsed = EnvSchema.safeParse(cleaned);
  const problems: { variable: string; message: string }[] = [];
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push({ variable: String(issue.path[0] ?? "?"), message: issue.message });
  }
  const floors = parseFloors(cleaned.SUSPICIOUS_FAST_MS ?? EnvSchema.shape.SUSPICIOUS_FAST_MS.parse(undefined));
  if (typeof floors === "string") problems.push({ variable: "SUSPICIOUS_FAST_MS", message: floors });
  if (parsed.success) {
    const c = parsed.data;
    if (c.STORAGE_DRIVER === "s3" && !c.S3_ENDPOINT && !cleaned.AWS_REGION) {
      problems.push({ variable: "S3_ENDPOINT", message: "required when STORAGE_DRIVER=s3 (or set AWS_REGION for AWS S3)" });
    }
    if (c.ASR_ENGINE === "openai" && !c.ASR_URL) problems.push({ variable: "ASR_URL", message: "required when ASR_ENGINE=openai" });
    if (c.TEXT_ENGINE === "openai" && !c.LLM_URL) problems.push({ variable: "LLM_URL", message: "required when TEXT_ENGINE=openai" });
  }
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);
  return { ...parsed.data, suspiciousFastMs: floors as Record<string, number> };
}

/** Names of every variable the config knows (for the compose check and README). */
export const knownVariables = (): string[] => Object.keys(EnvSchema.shape);

/**
 * transcribe_track tasks one worker process takes at once: by default every track a meeting
 * may have (MAX_TRACKS). A held task costs little (its segments wait in the shared decoder
 * queue, read from disk as their turn comes), and the decoder queue can only order a
 * meeting's segments as one batch, longest-first across tracks, when every track of the
 * meeting is in it. Capped at ASR_CONCURRENCY + 1, an hour-long 4-track meeting had three
 * tracks decoded together and the fourth only started when they had finished: 1.35× the
 * in-process run's wall time. The decoders themselves stay at ASR_CONCURRENCY.
 */
export function transcribeConcurrency(config: Pick<Config, "TRANSCRIBE_CONCURRENCY" | "ASR_CONCURRENCY" | "WORKER_CONCURRENCY" | "MAX_TRACKS">): number {
  return config.TRANSCRIBE_CONCURRENCY ?? Math.max(config.MAX_TRACKS, config.WORKER_CONCURRENCY, config.ASR_CONCURRENCY + 1);
}

/**
 * prepare_track tasks one worker process takes at once: each runs ffmpeg on a whole track,
 * CPU-bound, so one more than the decoders keeps the cores busy without oversubscribing them.
 */
export function prepareConcurrency(config: Pick<Config, "ASR_CONCURRENCY" | "WORKER_CONCURRENCY">): number {
  return Math.max(config.WORKER_CONCURRENCY, config.ASR_CONCURRENCY + 1);
}

/**
 * The configuration by layer: each adapter and shell part is handed only its section
 * (`configSection(config, "storage")`), so what a part can read is what it declares.
 * Every variable belongs to exactly one section (test/config.test.ts).
 */
export const CONFIG_SECTIONS = {
  process: ["NODE_ENV", "BUILD_COMMIT", "LOG_LEVEL", "WORK_DIR"],
  storage: ["STORAGE_DRIVER", "LOCAL_STORAGE_DIR", "S3_ENDPOINT", "S3_REGION", "S3_BUCKET", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "S3_FORCE_PATH_STYLE", "S3_UPLOAD_QUEUE_SIZE", "S3_SPOOL_DIR"],
  database: ["DATABASE_URL", "DATABASE_SCHEMA", "DATABASE_POOL_MAX", "MIGRATE_ON_START"],
  redis: ["REDIS_URL"],
  conductor: [
    "CONDUCTOR_SERVER_URL",
    "CONDUCTOR_WAIT_SECONDS",
    "CONDUCTOR_POLL_INTERVAL_MS",
    "CONDUCTOR_LONG_POLL_MS",
    "CONDUCTOR_HELD_POLLS",
    "CONDUCTOR_POLL_SLICE_MS",
    "CONDUCTOR_POLL_IDLE_MAX_MS",
    "CONDUCTOR_REGISTER",
    "CONDUCTOR_TASKS",
    "RECONCILER_ENABLED",
    "RECONCILER_INTERVAL_SECONDS",
    "RECONCILER_STALL_SECONDS",
    "SUSPICIOUS_FAST_MS",
  ],
  asr: ["ASR_ENGINE", "ASR_URL", "ASR_API_KEY", "ASR_MODEL", "ASR_CONCURRENCY", "ASR_HTTP_CONCURRENCY", "ASR_HTTP_MAX_ATTEMPTS", "ASR_HTTP_TIMEOUT_SECONDS", "ASR_IDLE_SECONDS", "POCKETSPHINX_HMM", "POCKETSPHINX_DICT", "POCKETSPHINX_LM", "POCKETSPHINX_PRUNE_DICT"],
  text: ["TEXT_ENGINE", "LLM_URL", "LLM_MODEL", "LLM_API_KEY", "LLM_TIMEOUT_SECONDS", "LLM_MAX_ATTEMPTS"],
  pipeline: ["BLEED_THRESHOLD_DB", "MAX_TRACK_SECONDS", "MAX_RECORDING_SECONDS", "MIN_TRACK_SECONDS"],
  api: [
    "PORT",
    "HOST",
    "API_TOKEN",
    "AUTH_DISABLED",
    "MAX_TRACKS",
    "INCOMING_PREFIX",
    "MAX_TRACK_BYTES",
    "MAX_UPLOAD_BYTES",
    "MAX_CONCURRENT_UPLOADS",
    "CREATE_RATE_PER_MINUTE",
    "MAX_SSE_STREAMS",
    "MAX_SSE_PER_RECORDING",
    "UPLOAD_IDLE_SECONDS",
    "API_RECONCILE_SECONDS",
    "INFRA_RETRY_BUDGET",
    "MAX_WORKFLOWS_PER_OWNER",
    "START_GRACE_SECONDS",
    "START_GIVE_UP_SECONDS",
    "TEST_CRASH_AT",
    "SSE_HEARTBEAT_SECONDS",
    "STORAGE_SWEEP_SECONDS",
    "STORAGE_SWEEP_UPLOAD_STALE_SECONDS",
    "PUBLIC_URL",
    "WEBHOOK_POLL_SECONDS",
    "WEBHOOK_TIMEOUT_SECONDS",
    "WEBHOOK_MAX_ATTEMPTS",
    "WEBHOOK_RETRY_BASE_SECONDS",
    "WEBHOOK_RETRY_MAX_SECONDS",
    "WEBHOOK_MAX_PER_OWNER",
    "WEBHOOK_ALLOW_PRIVATE",
  ],
  workers: [
    "WORKER_SLOT",
    "WORKER_CONCURRENCY",
    "TRANSCRIBE_CONCURRENCY",
    "DRAIN_TIMEOUT_SECONDS",
    "WORKER_ID_PID",
    "SUPERVISOR_HEALTHY_SECONDS",
    "SUPERVISOR_BACKOFF_SCALE",
    "CHILD_CALL_TIMEOUT_SECONDS",
    "CHILD_STALL_TIMEOUT_SECONDS",
    "CHILD_PING_INTERVAL_SECONDS",
    "CHILD_PING_TIMEOUT_SECONDS",
    "CHILD_MAX_PAYLOAD_BYTES",
    "HEAVY_STEPS_IN_CHILD",
    "STEP_INFRA_RERUNS",
    "STEP_OUTAGE_HANDBACKS",
    "STEP_OUTAGE_RETRY_SECONDS",
  ],
  shadow: [
    "SHADOW_MODE",
    "SHADOW_SAMPLE_RATE",
    "SHADOW_WER_TOLERANCE",
    "SHADOW_TIME_TOLERANCE_SECONDS",
    "SHADOW_IGNORE",
    "SHADOW_WORKERS_IN_API",
    "SHADOW_WAIT_SECONDS",
    "SHADOW_TEST_PERTURB",
  ],
  bullmq: ["BULLMQ_PREFIX", "BULLMQ_LOCK_MS", "BULLMQ_STALLED_INTERVAL_MS", "BULLMQ_MAX_STALLED", "BULLMQ_SWEEP_MS", "BULLMQ_MAX_ATTEMPTS", "BULLMQ_RETRY_BASE_MS"],
} as const satisfies Record<string, readonly (keyof Env)[]>;

export type ConfigSectionName = keyof typeof CONFIG_SECTIONS;
export type ConfigSection<S extends ConfigSectionName> = Pick<Config, (typeof CONFIG_SECTIONS)[S][number]>;

/** Only the variables of section `name` (a copy: the part cannot read the rest). */
export function configSection<S extends ConfigSectionName>(config: Config, name: S): ConfigSection<S> {
  const out: Record<string, unknown> = {};
  for (const key of CONFIG_SECTIONS[name]) if (config[key] !== undefined) out[key] = config[key];
  return out as ConfigSection<S>;
}
