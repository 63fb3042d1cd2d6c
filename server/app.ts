/**
 * The HTTP API as a Fastify instance built from its dependencies; it never listens
 * (server/server.ts does) so tests use `build(deps)` + `app.inject`. Each dependency is
 * created by the caller and passed in; the app only closes what it created itself.
 */
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import multipart from "@fastify/multipart";
import Fastify, { type FastifyInstance } from "fastify";
import { serializerCompiler, validatorCompiler } from "fastify-type-provider-zod";
import type pg from "pg";
import type { Logger } from "pino";
import type { Config } from "../pipeline/config.ts";
import type { Storage } from "../pipeline/ports.ts";
import type { WorkflowGateway } from "../adapters/conductor/gateway.ts";
import type { EventHub } from "../adapters/postgres/notify.ts";
import { createRecordingsRepo } from "../adapters/postgres/recordings-repo.ts";
import { createPgResultSink } from "../adapters/postgres/sinks.ts";
import authPlugin from "./auth/plugin.ts";
import backgroundPlugin from "./plugins/background.ts";
import errorsPlugin from "./plugins/errors.ts";
import healthPlugin from "./plugins/health.ts";
import openApiPlugin from "./plugins/openapi.ts";
import { webPlugin } from "./plugins/web.ts";
import { createApiKeys, type ApiKeys } from "./auth/keys.ts";
import { createMetrics } from "./metrics.ts";
import { createRecordingService } from "./recordings.ts";
import { recordingRoutes } from "./routes/recordings.ts";
import { shadowRoutes } from "./routes/shadow.ts";
import { integrationRoutes } from "./routes/integrations.ts";
import { createWebhooksRepo } from "../adapters/postgres/webhooks.ts";
import { createSearchRepo } from "../adapters/postgres/search.ts";
import { createWebhookDispatcher } from "./webhooks/dispatcher.ts";
import { createShadowStore } from "./shadow/store.ts";
import { createStorageSweeper } from "../adapters/storage/sweeper.ts";
import { createDurationTap, probeHead } from "../adapters/audio/probe.ts";
import type { ShadowDeps } from "./shadow/runner.ts";
import type { TrackSink } from "./upload/receive.ts";
import type { UploadLimits } from "./upload/limits.ts";

export type AppConfig = Pick<
  Config,
  "API_TOKEN" | "AUTH_DISABLED" | "HOST" | "MAX_TRACKS" | "MAX_TRACK_BYTES" | "MAX_UPLOAD_BYTES" | "MAX_CONCURRENT_UPLOADS" | "CREATE_RATE_PER_MINUTE" | "MAX_SSE_STREAMS" | "MAX_SSE_PER_RECORDING" | "UPLOAD_IDLE_SECONDS" | "MAX_TRACK_SECONDS" | "MAX_RECORDING_SECONDS" | "MIN_TRACK_SECONDS" | "MAX_WORKFLOWS_PER_OWNER" | "START_GRACE_SECONDS" | "START_GIVE_UP_SECONDS" | "INCOMING_PREFIX" | "API_RECONCILE_SECONDS" | "SSE_HEARTBEAT_SECONDS" | "STORAGE_SWEEP_SECONDS" | "STORAGE_SWEEP_UPLOAD_STALE_SECONDS"
  | "PUBLIC_URL" | "WEBHOOK_POLL_SECONDS" | "WEBHOOK_TIMEOUT_SECONDS" | "WEBHOOK_MAX_ATTEMPTS" | "WEBHOOK_RETRY_BASE_SECONDS" | "WEBHOOK_RETRY_MAX_SECONDS" | "WEBHOOK_MAX_PER_OWNER" | "WEBHOOK_ALLOW_PRIVATE"
> &
  Partial<Pick<Config, "INFRA_RETRY_BUDGET">>;

export interface RouteEntry {
  method: string;
  url: string;
  readonly public: boolean;
}

declare module "fastify" {
  interface FastifyInstance {
    /** every registered route (server/app.ts) */
    routeTable: RouteEntry[];
  }
}

export interface AppDeps {
  config: AppConfig;
  log: Logger;
  pool: pg.Pool;
  storage: Storage & { ping?(signal?: AbortSignal): Promise<void> };
  /** streaming uploads of track files; default: storage.put (S3 storage passes its multipart upload) */
  trackSink?: TrackSink;
  workflows: WorkflowGateway;
  /** live event notifications (Postgres LISTEN); without it SSE streams poll */
  hub?: EventHub;
  /** shadow mode (SHADOW_MODE=bullmq): started after each workflow start */
  shadow?: ShadowDeps;
  /** what `startShadowRun` is (injected so the app does not load the BullMQ stack when off) */
  startShadowRun?: (deps: ShadowDeps, recordingId: string, input: import("../pipeline/contracts/index.ts").PipelineInput, opts: { workflowId?: string }) => unknown;
  /** test hook: named points of creation where a test may kill the process (server/server.ts, NODE_ENV=test only) */
  crashPoint?: (point: "after_row" | "after_workflow_start") => void;
  /** stops a recording's shadow run (DELETE); injected with startShadowRun */
  cancelShadowRun?: (deps: ShadowDeps, recordingId: string) => Promise<unknown>;
  /** the built web app served at `/` (default: web/dist of this checkout; a missing one says how to build it) */
  webRoot?: string;
}

export { tokenMatches } from "./auth/plugin.ts";

/** A client's x-request-id is kept for log correlation only when it is this plain. */
export const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/** Is `host` a loopback listen address (only this machine can connect)? */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h) || h === "::ffff:127.0.0.1";
}

/** How often the API renews its shadow runs' heartbeat; a run silent six times as long is abandoned. */
export const SHADOW_HEARTBEAT_SECONDS = 10;

/** What one request may cause (server/upload/limits.ts). */
export const uploadLimits = (c: AppConfig): UploadLimits => ({
  maxTracks: c.MAX_TRACKS,
  maxTrackBytes: c.MAX_TRACK_BYTES,
  maxUploadBytes: c.MAX_UPLOAD_BYTES,
  maxTrackSeconds: c.MAX_TRACK_SECONDS,
  maxRecordingSeconds: c.MAX_RECORDING_SECONDS,
  minTrackSeconds: c.MIN_TRACK_SECONDS,
});

export async function build(deps: AppDeps): Promise<FastifyInstance> {
  const { config, log, pool, storage, workflows } = deps;
  const app = Fastify({
    loggerInstance: log,
    // ids for log correlation: a client-sent x-request-id is kept only when it is plain
    requestIdHeader: false,
    genReqId: (req) => {
      const sent = req.headers["x-request-id"];
      return typeof sent === "string" && SAFE_REQUEST_ID.test(sent) ? sent : randomUUID();
    },
    bodyLimit: 1024 * 1024,
    // on shutdown idle keep-alive sockets close at once; requests in flight (an upload) may finish
    forceCloseConnections: "idle",
  });
  // every route as registered (method, path, public?): the auth test walks it, so a new route is covered
  const routeTable: RouteEntry[] = [];
  app.addHook("onRoute", (r) => {
    // `public` read when asked: a later onRoute hook (the docs') may still mark the route
    for (const method of [r.method].flat()) {
      routeTable.push({
        method,
        url: r.url,
        get public() {
          return r.config?.public === true;
        },
      });
    }
  });
  app.decorate("routeTable", routeTable);
  const repo = createRecordingsRepo(pool);
  const keys: ApiKeys = createApiKeys(pool);
  const results = createPgResultSink(pool, { log });
  const metrics = createMetrics({ countByStatus: () => repo.countByStatus() });
  const shutdown = new AbortController();

  const trackSink: TrackSink = deps.trackSink ?? ((key, body, contentType) => storage.put(key, body, contentType));
  const service = createRecordingService({
    repo,
    storage,
    trackSink,
    workflows,
    results,
    log,
    limits: uploadLimits(config),
    incomingPrefix: config.INCOMING_PREFIX,
    // every uploaded track is measured while it streams; a key-referenced one by its header
    durationTap: (format, check) => createDurationTap({ format, check }),
    probeHead: (head, format, size) => probeHead(head, format, size),
    maxWorkflowsPerOwner: config.MAX_WORKFLOWS_PER_OWNER,
    startGraceSeconds: config.START_GRACE_SECONDS,
    startGiveUpSeconds: config.START_GIVE_UP_SECONDS,
    ...(config.INFRA_RETRY_BUDGET === undefined ? {} : { infraRetryBudget: config.INFRA_RETRY_BUDGET }),
    ...(deps.crashPoint ? { crashPoint: deps.crashPoint } : {}),
    onStarted: (id, input, workflowId) => {
      if (deps.shadow && deps.startShadowRun) {
        try {
          deps.startShadowRun(deps.shadow, id, input, { workflowId });
        } catch (err) {
          log.warn({ err, recording_id: id }, "shadow run could not start");
        }
      }
    },
    beforeDelete: async (id) => {
      if (deps.shadow && deps.cancelShadowRun) await deps.cancelShadowRun(deps.shadow, id);
    },
    onUploadOutcome: (outcome, bytes) => {
      metrics.uploads.inc({ outcome });
      metrics.uploadBytes.inc(bytes);
    },
  });

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  await app.register(multipart, { throwFileSizeLimit: true });
  await app.register(errorsPlugin);
  await app.register(authPlugin, {
    operatorToken: config.API_TOKEN,
    keys,
    disabled: config.AUTH_DISABLED,
    openWhenNoCredentials: isLoopbackHost(config.HOST),
  });
  await app.register(openApiPlugin);
  await app.register(healthPlugin, {
    metrics,
    probes: {
      postgres: () => repo.ping(),
      s3: (signal) => (storage.ping ? storage.ping(signal) : storage.list("healthz/")),
      conductor: (signal) => workflows.ping(signal),
    },
  });

  // ---- routes -------------------------------------------------------------------------
  await app.register(recordingRoutes, {
    service,
    repo,
    storage,
    ...(deps.hub ? { hub: deps.hub } : {}),
    metrics,
    limits: uploadLimits(config),
    heartbeatMs: config.SSE_HEARTBEAT_SECONDS * 1000,
    admission: {
      uploads: config.MAX_CONCURRENT_UPLOADS,
      createsPerMinute: config.CREATE_RATE_PER_MINUTE,
      sseStreams: config.MAX_SSE_STREAMS,
      ssePerRecording: config.MAX_SSE_PER_RECORDING,
      uploadIdleMs: config.UPLOAD_IDLE_SECONDS * 1000,
    },
    shutdown: shutdown.signal,
  });
  // the web app's static files (public: they hold no data); the API stays under /v1
  await app.register(webPlugin, { root: deps.webRoot ?? fileURLToPath(new URL("../web/dist", import.meta.url)) });
  // with shadow mode off the comparison routes still answer (404 "not shadowed", the summary empty)
  await app.register(shadowRoutes, { store: deps.shadow?.store ?? createShadowStore(pool), assertVisible: (id, who) => service.assertVisible(id, who) });

  const webhooks = createWebhooksRepo(pool);
  await app.register(integrationRoutes, {
    webhooks,
    search: createSearchRepo(pool),
    service,
    allowPrivate: config.WEBHOOK_ALLOW_PRIVATE,
    maxWebhooksPerOwner: config.WEBHOOK_MAX_PER_OWNER,
  });

  // ---- background loops: reconciliation with Conductor; the storage sweeper (adapters/storage/sweeper.ts);
  // the webhook dispatcher (server/webhooks/dispatcher.ts: sends what the outbox holds)
  const dispatcher = createWebhookDispatcher({
    repo: webhooks,
    log,
    timeoutMs: config.WEBHOOK_TIMEOUT_SECONDS * 1000,
    maxAttempts: config.WEBHOOK_MAX_ATTEMPTS,
    retryBaseMs: config.WEBHOOK_RETRY_BASE_SECONDS * 1000,
    retryMaxMs: config.WEBHOOK_RETRY_MAX_SECONDS * 1000,
    allowPrivate: config.WEBHOOK_ALLOW_PRIVATE,
    publicUrl: config.PUBLIC_URL,
  });
  const sweeper = createStorageSweeper({
    pool,
    storage,
    log,
    uploadStaleSeconds: config.STORAGE_SWEEP_UPLOAD_STALE_SECONDS,
    ...(deps.shadow?.forget ? { forget: deps.shadow.forget } : {}),
    onRemoved: (reason, n) => metrics.sweptObjects.inc({ reason }, n),
  });
  await app.register(backgroundPlugin, {
    loops: [
      {
        name: "reconcile",
        seconds: config.API_RECONCILE_SECONDS,
        work: async () => {
          const n = await service.reconcileAll();
          if (n) log.info({ changed: n }, "reconciled recordings with Conductor");
        },
      },
      { name: "storage-sweep", seconds: config.STORAGE_SWEEP_SECONDS, work: () => sweeper.sweep() },
      // shadow runs: this process's heartbeat, and runs a stopped API left `running` marked failed
      ...(deps.shadow
        ? [
            {
              name: "shadow-heartbeat",
              seconds: SHADOW_HEARTBEAT_SECONDS,
              work: async () => {
                const s = deps.shadow!;
                await s.store.heartbeat([...(s.active?.keys() ?? [])]);
                const n = await s.store.failAbandoned(SHADOW_HEARTBEAT_SECONDS * 6);
                if (n) log.warn({ runs: n }, "shadow runs left running by a stopped API process marked failed");
              },
            },
          ]
        : []),
      { name: "webhooks", seconds: config.WEBHOOK_POLL_SECONDS, work: () => dispatcher.runOnce() },
    ],
  });
  app.addHook("onClose", async () => {
    shutdown.abort();
    // attempts in flight are cut off; their deliveries stay claimed until the lease runs out, then go out again
    await dispatcher.stop();
    service.close();
  });
  // SSE streams are hijacked: end them first so close() does not wait for them
  app.addHook("preClose", async () => {
    shutdown.abort();
  });

  return app as unknown as FastifyInstance;
}
