/**
 * One line of documentation per configuration variable. `npm run env:docs` renders the
 * README table and `.env.example` from this and the schema's defaults; a test fails when a
 * variable is missing here or the README is out of date.
 */
import { EnvSchema } from "./config.ts";

export const VARIABLE_DOCS: Record<keyof typeof EnvSchema.shape, string> = {
  NODE_ENV: "`production`, `development` or `test` (test-only switches need `test`)",
  BUILD_COMMIT: "git commit of this build (set in the Docker image); part of every worker's build id",
  LOG_LEVEL: "pino log level",
  WORK_DIR: "scratch space and worker slots; one supervisor per directory (locked)",
  STORAGE_DRIVER: "`local` (a directory) or `s3`",
  LOCAL_STORAGE_DIR: "the directory of `STORAGE_DRIVER=local`",
  S3_ENDPOINT: "S3-compatible endpoint (MinIO, s3rver); empty for AWS with `AWS_REGION`",
  S3_REGION: "S3 region",
  S3_BUCKET: "bucket for tracks and derived audio",
  S3_ACCESS_KEY_ID: "S3 access key",
  S3_SECRET_ACCESS_KEY: "S3 secret key",
  S3_FORCE_PATH_STYLE: "path-style bucket URLs (MinIO, s3rver)",
  S3_UPLOAD_QUEUE_SIZE: "multipart parts uploaded at once per streamed track (disk ≈ (n+1) × 5 MiB in S3_SPOOL_DIR; in memory when spooling is off: ≈ (n+2) × 5 MiB)",
  S3_SPOOL_DIR: "directory where a streamed upload writes each 5 MiB multipart part before sending it from the file (default: `<os temp dir>/trackscribe-spool`); the API then holds a few stream chunks per upload instead of part buffers. Empty: build parts in memory (lib-storage)",
  DATABASE_URL: "Postgres connection URL (API, result and event sinks, BullMQ event log)",
  REDIS_URL: "Redis for BullMQ",
  CONDUCTOR_SERVER_URL: "Conductor API base, e.g. `http://conductor:8080/api`",
  CONDUCTOR_WAIT_SECONDS: "how long processes wait (with back-off) for Conductor at start",
  CONDUCTOR_POLL_INTERVAL_MS: "pause after each poll returns, per task type. A poll is held (by the worker, or by the server for the first step) up to CONDUCTOR_LONG_POLL_MS, so while idle a worker sends about one poll per task type per window whatever this is; it matters after a poll returns a task. Keep it well above 0 if you set CONDUCTOR_LONG_POLL_MS to 0",
  CONDUCTOR_REGISTER: "register task and workflow definitions when a worker host starts",
  CONDUCTOR_TASKS: "comma-separated task types a worker host serves (default: all). A type whose step before runs on another host keeps its long poll on the server (held polls would see its tasks only at the next slice)",
  ASR_ENGINE: "`pocketsphinx` (offline) or `openai` (OpenAI-compatible HTTP)",
  ASR_URL: "base URL of the OpenAI-compatible speech server (`POST {ASR_URL}/v1/audio/transcriptions`)",
  ASR_API_KEY: "bearer token for the speech server",
  ASR_MODEL: "model name sent to the speech server",
  ASR_CONCURRENCY: "pocketsphinx decoders per process, shared by all tracks (segments are queued across tracks); also tracks prepared at once by the in-process runner (default: cores)",
  ASR_HTTP_CONCURRENCY: "segments one process sends at once to the OpenAI-compatible speech server (`ASR_ENGINE=openai`), across all its tracks",
  ASR_HTTP_MAX_ATTEMPTS: "attempts per segment at the speech server: 429, 5xx, timeouts and network errors are retried with back-off (0.5 s doubling, or the server's `Retry-After`, at most 60 s)",
  ASR_HTTP_TIMEOUT_SECONDS: "limit of one request to the speech server",
  ASR_IDLE_SECONDS:
    "seconds an idle pocketsphinx decoder stays loaded before it exits (≈85 MB each); 0: loaded while the process lives, and worker hosts load them when they start, so no recording waits for a model load",
  POCKETSPHINX_HMM: "pocketsphinx acoustic model directory",
  POCKETSPHINX_DICT: "pocketsphinx pronunciation dictionary",
  POCKETSPHINX_LM: "pocketsphinx language model",
  POCKETSPHINX_PRUNE_DICT:
    "decoders read the dictionary cut to the language model's words (cached once per model in the OS temp dir): the same words, each decoder starts ≈0.13 s sooner; `false`: the full dictionary",
  TEXT_ENGINE: "`offline` (NLP libraries) or `openai` (OpenAI-compatible chat)",
  LLM_URL: "base URL of the OpenAI-compatible chat server (`POST {LLM_URL}/v1/chat/completions`)",
  LLM_MODEL: "chat model name",
  LLM_API_KEY: "bearer token for the chat server",
  LLM_TIMEOUT_SECONDS: "timeout of one chat request",
  LLM_MAX_ATTEMPTS: "attempts per chat request (transport errors and unparseable answers are retried)",
  BLEED_THRESHOLD_DB: "a word is mic bleed when another track is this many dB louder over it",
  PORT: "API port",
  HOST: "API listen address (the Docker image sets `0.0.0.0`). On any non-loopback address `serve` refuses to start with no `API_TOKEN` and no API key, unless `AUTH_DISABLED=true`",
  API_TOKEN: "the operator's token (at least 16 characters): `Authorization: Bearer <API_TOKEN>` sees and manages every recording; users get API keys (`trackscribe keys create`)",
  AUTH_DISABLED: "`true`: no authentication at all, every request acts as the operator (only behind a proxy that authenticates; logged as a warning at start)",
  MAX_TRACKS: "most tracks one recording may have",
  MAX_CONCURRENT_UPLOADS: "uploads streaming at once. Each costs the API ≈ 6 MB of memory (its parts are spooled to S3_SPOOL_DIR) over an idle ≈ 115–130 MB: the default 4 keeps it near its 150 MB budget; size the API's memory as ≈ 130 MB + 6 MB × this. One more is answered 503 `too_many_uploads` with `Retry-After`, its body unread",
  CREATE_RATE_PER_MINUTE: "recordings one API key (or the operator's token) may create per minute; beyond, 429 `rate_limited` with `Retry-After`",
  MAX_SSE_STREAMS: "event streams open at once; one more is answered 503 `too_many_streams` with `Retry-After`",
  MAX_SSE_PER_RECORDING: "event streams open at once on one recording; one more is answered 503 `too_many_streams` with `Retry-After`",
  UPLOAD_IDLE_SECONDS: "an upload whose client sends nothing this long (while the API is ready for more) is cut off: its rows, objects and S3 multipart upload are removed",
  MAX_UPLOAD_BYTES: "largest upload: all tracks of one request together (413 `upload_too_large` beyond, reading stops early)",
  MAX_TRACK_SECONDS: "longest track; a longer one is refused (422 `track_too_long`), and workers never decode past it",
  MAX_RECORDING_SECONDS: "longest recording timeline, offsets included (422 `recording_too_long`)",
  MIN_TRACK_SECONDS: "shortest track: a track with less audio (e.g. a WAV header with no samples) is refused at upload (422 `no_audio`) and by the worker that decodes it",
  MAX_WORKFLOWS_PER_OWNER: "workflows running at once per owner (an API key; the operator's token is one owner): a recording beyond it is accepted (202, status `queued`, no workflow yet) and started by the API's reconciler, oldest first, when one of the owner's workflows ends",
  START_GRACE_SECONDS: "a `queued` recording with no workflow this long after creation is started by the API's reconciler (the API stopped between the row and the workflow start, or the owner was at MAX_WORKFLOWS_PER_OWNER); a workflow that did start is found by its correlation id (the recording id) first, never started twice",
  START_GIVE_UP_SECONDS: "a recording whose workflow could not be started for this long (Conductor refusing) is failed with `workflow_not_started`",
  TEST_CRASH_AT: "test only (`NODE_ENV=test`): the API kills itself with SIGKILL at this point of creating a recording (`after_row`: the row is stored, no workflow yet; `after_workflow_start`: the workflow started, its id not stored), to prove that the reconciler leaves no recording queued and starts none twice",
  INCOMING_PREFIX: "where tracks referenced by key (a JSON `POST /v1/recordings`) must be: an API key may name only keys under `<prefix><key name>/`, the operator any key under the prefix; never `recordings/`",
  MAX_TRACK_BYTES: "largest track upload (413 beyond, reading stops early)",
  DATABASE_SCHEMA: "Postgres schema for the tables (default: search_path)",
  DATABASE_POOL_MAX: "Postgres pool size of the API",
  MIGRATE_ON_START: "apply pending migrations when `trackscribe serve` starts",
  API_RECONCILE_SECONDS: "how often the API compares unfinished recordings with their workflow (0: on request only)",
  INFRA_RETRY_BUDGET: "task attempts of one recording that may time out in Conductor (their worker host was killed, crashed or paused past the task's response timeout) without the recording failing: when such timeouts used up a task's retries and failed the workflow, the API's reconciler retries the workflow from that task, and a step that failed on its own gets back the retries the timeouts took. Its own errors keep the task definition's retryCount; past this budget the recording fails with a reason that says the workers stopped answering",
  SSE_HEARTBEAT_SECONDS: "SSE keep-alive interval",
  STORAGE_SWEEP_SECONDS: "how often the API's storage sweeper runs (0: never). It sweeps a deleted recording's prefix again 30 s, 5 min, 1 h and 1 day after the deletion (a step already running may still write there) and removes the objects of uploads that never finished; it acts only on ids the database recorded, never on a listing of the bucket",
  STORAGE_SWEEP_UPLOAD_STALE_SECONDS: "an upload whose recording row does not exist this long after it started is abandoned (the API stopped mid-upload) and its objects are removed; keep it above the longest upload you expect",
  STEP_INFRA_RERUNS: "a heavy step whose child process died under it (killed, crashed, hung and replaced), or whose decoder process (pocketsphinx, ffmpeg) was killed by a signal, runs again in a fresh child this many times before the task fails: the process dying is not the step's fault, so it spends none of the task's Conductor (or BullMQ) retries, which stay for the step's own errors. A step that takes its process down every time still fails, with `worker_crashed` and a reason that says how many times",
  STEP_OUTAGE_HANDBACKS: "a task whose step failed because a dependency was down (the S3 server, Postgres, Redis or an HTTP upstream refusing or dropping connections) is handed back to its orchestrator to run again later instead of failing: Conductor gets IN_PROGRESS with a callback delay, BullMQ moves the job to delayed, and neither spends one of the step's retries. After this many hand-backs of one task (Conductor counts its polls) the error fails the task as usual, so a dependency that never comes back still ends the recording",
  STEP_OUTAGE_RETRY_SECONDS: "the delay before a handed-back task (see STEP_OUTAGE_HANDBACKS) is offered to a worker again",
  PUBLIC_URL: "the API's public base URL (e.g. `https://meetings.example.com`); webhook bodies link to the recording under it. Unset: the links are paths (`/v1/recordings/<id>`)",
  WEBHOOK_POLL_SECONDS: "how often the API's webhook dispatcher looks for due deliveries in the outbox (0: this API process sends none; another must)",
  WEBHOOK_TIMEOUT_SECONDS: "limit of one webhook attempt: connecting, sending, and reading at most 1 KB of the answer; a timeout is retried",
  WEBHOOK_MAX_ATTEMPTS: "attempts per webhook delivery; 5xx, 429, 408, timeouts and network errors are retried, other answers (4xx, redirects) are not",
  WEBHOOK_RETRY_BASE_SECONDS: "delay before the first retry; each next one is 3.5 times longer, ±20 % jitter (60 s and 8 attempts span about a day)",
  WEBHOOK_RETRY_MAX_SECONDS: "longest delay between two webhook attempts; a receiver's `Retry-After` is honoured up to it",
  WEBHOOK_MAX_PER_OWNER: "webhooks one API key (or the operator) may register (409 `too_many_webhooks` beyond)",
  WEBHOOK_ALLOW_PRIVATE: "`true`: webhook receivers may be on loopback, private, link-local or metadata addresses (tests; receivers inside your own network). Off, every attempt resolves the receiver once and refuses such addresses",
  WORKER_SLOT: "slot number in the worker id `host/slot/pid` (the supervisor sets it)",
  CONDUCTOR_HELD_POLLS: "hold the workers' polls in the worker process instead of on the server: ask without a wait, and ask again as soon as a result delivered from this process lets the next step start (or after CONDUCTOR_POLL_SLICE_MS). The server's queue looks for tasks only every 100 ms; held, a hand-off between two steps took a median 10–13 ms instead of 70–90 ms (bench:conductor). The first step's poll stays on the server in a worker process, since other processes start workflows",
  CONDUCTOR_POLL_SLICE_MS: "with held polls, the longest pause between two asks for a task nothing in this process announced (a retry, a rescue, a task another process could not take). Each ask is a request the server answers with CPU: idle server + workers measured 0.08 cores at 1000 ms, 0.13 at 500 ms, 0.18 at 250 ms (2 cores)",
  CONDUCTOR_POLL_IDLE_MAX_MS: "with held polls, a task type found empty again and again (no wake-up from this process in between) is asked ever less often: the pause doubles from CONDUCTOR_POLL_SLICE_MS up to this. A wake-up for the type, a task of the type handed over, or a failed result of the type delivered (its retry follows) brings it back; work for other types does not. An idle worker host asked for each of its 11 types once a second, and during a recording every type not up next was asked once a second too (one recording: 81 requests to the server before, 66–68 after). The cost: a task nothing here announced (one another process could not take, a retry, a rescue) is seen up to this late; the steps of a workflow this process runs are announced, and only types whose every predecessor runs here are held",
  CONDUCTOR_LONG_POLL_MS: "how long a worker's poll waits for a task (the SDK's batch poll timeout). Held polls wait in the worker; polls left to the server (the first step, or CONDUCTOR_HELD_POLLS=false) are answered within the server's 100 ms cadence whatever the window, and a longer window means fewer requests",
  WORKER_CONCURRENCY: "tasks one worker process runs at once per task type (transcribe_track: TRANSCRIBE_CONCURRENCY)",
  TRANSCRIBE_CONCURRENCY: "transcribe_track tasks one worker process holds at once; their decoding shares the ASR_CONCURRENCY decoders, so every track of a meeting can wait in one decoder queue (default: max(MAX_TRACKS, WORKER_CONCURRENCY, ASR_CONCURRENCY + 1))",
  DRAIN_TIMEOUT_SECONDS: "on SIGTERM, how long in-flight tasks may finish before they are cut off",
  WORKER_ID_PID: "set by the supervisor: its pid, so a child's worker id survives restarts",
  SUPERVISOR_HEALTHY_SECONDS: "a child that ran this long restarts after 1 s again (back-off reset)",
  SUPERVISOR_BACKOFF_SCALE: "multiplies the restart back-off 1, 2, 4, 8, 16, 30 s",
  CHILD_CALL_TIMEOUT_SECONDS: "bound on one heavy step run in a child process",
  CHILD_STALL_TIMEOUT_SECONDS: "silence in a step's progress stream that counts as a stall",
  CHILD_PING_INTERVAL_SECONDS: "health ping interval of step children",
  CHILD_PING_TIMEOUT_SECONDS: "a step child answering no ping this long is hung and replaced",
  CHILD_MAX_PAYLOAD_BYTES: "largest message to or from a step child (checked before sending)",
  HEAVY_STEPS_IN_CHILD: "run audio decoding, ASR and mixdown in crash-safe child processes",
  RECONCILER_ENABLED: "run the stuck-workflow reconciler in the Conductor worker host",
  RECONCILER_INTERVAL_SECONDS: "reconciler pass interval",
  RECONCILER_STALL_SECONDS: "a RUNNING workflow with nothing in progress and no change this long gets a forced decide (so does one whose worker task is silent past its response timeout: its worker is gone and Conductor may not look again for an hour)",
  SUSPICIOUS_FAST_MS: "`task=ms,…`: completions faster than this are flagged by `inspect`",
  SHADOW_MODE: "`off` or `bullmq`: also run sampled recordings on BullMQ and compare",
  SHADOW_SAMPLE_RATE: "fraction of recordings run in shadow (0..1)",
  SHADOW_WER_TOLERANCE: "word error rate between engines still counted as matched",
  SHADOW_TIME_TOLERANCE_SECONDS: "word start/end difference still counted as matched",
  SHADOW_IGNORE: "comparison names classified as ignored, e.g. `duration,summary`",
  SHADOW_WORKERS_IN_API: "run shadow BullMQ workers inside the API process",
  SHADOW_WAIT_SECONDS: "how long a comparison waits for the Conductor run to end",
  SHADOW_TEST_PERTURB: "test only (`NODE_ENV=test`): alter a BullMQ step's output, `step` or `step:track`",
  BULLMQ_PREFIX: "Redis key prefix of the BullMQ queues",
  BULLMQ_LOCK_MS: "job lock duration; a worker that stops renewing it has stalled",
  BULLMQ_STALLED_INTERVAL_MS: "stalled-job check interval",
  BULLMQ_MAX_STALLED: "times a job may stall (its worker died or hung and its lock lapsed) and run again under the same attempt before it fails; these recoveries are the infrastructure's budget, so they spend none of the step's attempts, and a job that stalls more often fails the task without retry, saying its workers stopped that many times",
  BULLMQ_SWEEP_MS: "how often the BullMQ coordinator checks its jobs besides queue events",
  BULLMQ_MAX_ATTEMPTS: "attempts per BullMQ step",
  BULLMQ_RETRY_BASE_MS: "first retry delay of a BullMQ step (doubles per attempt)",
};

const defaultOf = (name: keyof typeof EnvSchema.shape): string => {
  const r = (EnvSchema.shape[name] as { safeParse(v: unknown): { success: boolean; data?: unknown } }).safeParse(undefined);
  if (!r.success || r.data === undefined) return "";
  return name === "ASR_CONCURRENCY" ? "cores" : String(r.data);
};

export function envTable(): string {
  const rows = (Object.keys(EnvSchema.shape) as (keyof typeof EnvSchema.shape)[]).map(
    (n) => `| \`${n}\` | ${defaultOf(n) ? `\`${defaultOf(n)}\`` : ""} | ${VARIABLE_DOCS[n] ?? ""} |`,
  );
  return ["| variable | default | meaning |", "|---|---|---|", ...rows].join("\n");
}

export function envExample(): string {
  const lines = ["# trackscribe configuration: every variable, with its default (empty = unset).", ""];
  for (const n of Object.keys(EnvSchema.shape) as (keyof typeof EnvSchema.shape)[]) {
    lines.push(`# ${VARIABLE_DOCS[n]}`, `${n}=${defaultOf(n) === "cores" ? "" : defaultOf(n)}`);
  }
  return `${lines.join("\n")}\n`;
}
