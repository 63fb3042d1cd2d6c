/**
 * The HTTP API as a Fastify instance built from its dependencies; it never listens
 * (server/server.ts does) so tests use `build(deps)` + `app.inject`. Each dependency is
 * created by the caller and passed in; the app only closes what it created itself.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import multipart from "@fastify/multipart";
import Fastify, { type FastifyError, type FastifyInstance } from "fastify";
import type pg from "pg";
import type { Logger } from "pino";
import type { Config } from "../pipeline/config.ts";
import type { Storage } from "../pipeline/ports.ts";
import type { WorkflowGateway } from "./conductor.ts";
import type { EventHub } from "./db/notify.ts";
import { createRecordingsRepo } from "./db/recordings-repo.ts";
import { createPgResultSink } from "./db/sinks.ts";
import { ApiError, UnauthorizedError } from "./errors.ts";
import { createMetrics } from "./metrics.ts";
import { createRecordingService } from "./recordings.ts";
import { recordingRoutes } from "./routes/recordings.ts";
import { shadowRoutes } from "./routes/shadow.ts";
import { createStorageSweeper } from "./storage-sweep.ts";
import type { ShadowDeps } from "./shadow/runner.ts";
import type { TrackSink } from "./upload/receive.ts";

export type AppConfig = Pick<
  Config,
  "API_TOKEN" | "MAX_TRACKS" | "MAX_TRACK_BYTES" | "API_RECONCILE_SECONDS" | "SSE_HEARTBEAT_SECONDS" | "STORAGE_SWEEP_SECONDS" | "STORAGE_SWEEP_UPLOAD_STALE_SECONDS"
>;

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
  /** stops a recording's shadow run (DELETE); injected with startShadowRun */
  cancelShadowRun?: (deps: ShadowDeps, recordingId: string) => Promise<unknown>;
}

/** Connection-level Postgres failures (as opposed to a bad query). */
const isDatabaseDown = (err: unknown): boolean => {
  const code = String((err as { code?: string })?.code ?? "");
  return ["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "57P01", "57P03", "08000", "08001", "08003", "08006"].includes(code) ||
    /timeout exceeded when trying to connect|Connection terminated|connect ECONNREFUSED/i.test(String((err as Error)?.message));
};

const sha256 = (s: string): Buffer => createHash("sha256").update(s).digest();

/** Constant-time bearer token check. */
export function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  if (!m) return false;
  return timingSafeEqual(sha256(m[1]!), sha256(token));
}

const withTimeout = async <T>(what: string, ms: number, f: (signal: AbortSignal) => Promise<T>): Promise<T> => {
  const ctl = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      f(ctl.signal),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          ctl.abort();
          reject(new Error(`${what} did not answer within ${ms} ms`));
        }, ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
};

export async function build(deps: AppDeps): Promise<FastifyInstance> {
  const { config, log, pool, storage, workflows } = deps;
  const app = Fastify({
    loggerInstance: log,
    // ids for log correlation; a client-sent x-request-id is kept
    requestIdHeader: "x-request-id",
    genReqId: () => crypto.randomUUID(),
    bodyLimit: 1024 * 1024,
    // on shutdown idle keep-alive sockets close at once; requests in flight (an upload) may finish
    forceCloseConnections: "idle",
  });
  const repo = createRecordingsRepo(pool);
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
    limits: { maxTracks: config.MAX_TRACKS, maxTrackBytes: config.MAX_TRACK_BYTES },
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

  await app.register(multipart, { throwFileSizeLimit: true });

  // ---- errors as JSON {error, message} ------------------------------------------------
  app.setErrorHandler((err: FastifyError | ApiError | Error, req, reply) => {
    if (err instanceof ApiError) {
      if (err.statusCode >= 500) req.log.error({ err }, err.message);
      if (err instanceof UnauthorizedError) reply.header("www-authenticate", 'Bearer realm="trackscribe"');
      return reply.code(err.statusCode).send({ error: err.code, message: err.message });
    }
    if (err.name === "ClientGoneError") {
      req.log.info({ reason: err.message }, "client disconnected");
      return reply.code(400).header("connection", "close").send({ error: "client_disconnected", message: err.message });
    }
    const fe = err as FastifyError;
    const status = fe.statusCode ?? 500;
    if (fe.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") return reply.code(415).send({ error: "unsupported_media_type", message: fe.message });
    if (fe.code === "FST_ERR_CTP_BODY_TOO_LARGE") return reply.code(413).send({ error: "body_too_large", message: fe.message });
    if (fe.code === "FST_ERR_CTP_INVALID_JSON_BODY" || fe.code === "FST_ERR_CTP_EMPTY_JSON_BODY" || err instanceof SyntaxError) {
      return reply.code(400).send({ error: "invalid_json", message: fe.message });
    }
    if (fe.code === "FST_INVALID_MULTIPART_CONTENT_TYPE") return reply.code(415).send({ error: "unsupported_media_type", message: fe.message });
    if (fe.validation) return reply.code(400).send({ error: "bad_request", message: fe.message });
    if (status >= 400 && status < 500) {
      return reply.code(status).send({ error: (fe.code ?? "bad_request").toLowerCase().replace(/^fst_(err_)?/, ""), message: fe.message });
    }
    if (isDatabaseDown(err)) {
      req.log.error({ err }, "Postgres unavailable");
      return reply.code(503).send({ error: "postgres_unavailable", message: `the database is unavailable: ${err.message}` });
    }
    req.log.error({ err }, "request failed");
    return reply.code(500).send({ error: "internal_error", message: "internal error (see the server log for the request id)" });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: "not_found", message: `no route ${req.method} ${req.url.split("?")[0]}` }));

  // ---- auth on /v1 --------------------------------------------------------------------
  app.addHook("onRequest", async (req, reply) => {
    if (!config.API_TOKEN || !req.url.startsWith("/v1")) return;
    if (!tokenMatches(req.headers.authorization, config.API_TOKEN)) {
      // do not read an upload the client is not allowed to send
      if (req.headers["content-length"] !== "0" && (req.headers["content-length"] || req.headers["transfer-encoding"])) reply.header("connection", "close");
      throw new UnauthorizedError(req.headers.authorization ? "the bearer token is wrong" : "missing Authorization: Bearer <API_TOKEN>");
    }
  });

  // ---- metrics ------------------------------------------------------------------------
  app.addHook("onResponse", async (req, reply) => {
    const route = req.routeOptions.url ?? "unmatched";
    metrics.httpDuration.observe({ method: req.method, route, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });

  // ---- health -------------------------------------------------------------------------
  app.get("/healthz", async () => ({ status: "ok" }));
  app.get("/readyz", async (_req, reply) => {
    const probe = async (name: string, f: (signal: AbortSignal) => Promise<unknown>): Promise<[string, string | undefined]> => {
      try {
        await withTimeout(name, 3000, f);
        return [name, undefined];
      } catch (err) {
        return [name, (err as Error).message || String(err)];
      }
    };
    const checks = await Promise.all([
      probe("postgres", () => repo.ping()),
      probe("s3", (signal) => (storage.ping ? storage.ping(signal) : storage.list("healthz/"))),
      probe("conductor", (signal) => workflows.ping(signal)),
    ]);
    const down = checks.filter(([, e]) => e !== undefined);
    const body = { checks: Object.fromEntries(checks.map(([n, e]) => [n, e === undefined ? "up" : `down: ${e}`])) };
    if (down.length === 0) return { status: "ready", ...body };
    return reply.code(503).send({ error: "not_ready", message: `not ready: ${down.map(([n]) => n).join(", ")} ${down.length === 1 ? "is" : "are"} down`, ...body });
  });
  app.get("/metrics", async (_req, reply) => {
    reply.header("content-type", metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  // ---- routes -------------------------------------------------------------------------
  await app.register(recordingRoutes, {
    service,
    repo,
    storage,
    ...(deps.hub ? { hub: deps.hub } : {}),
    metrics,
    limits: { maxTracks: config.MAX_TRACKS, maxTrackBytes: config.MAX_TRACK_BYTES },
    heartbeatMs: config.SSE_HEARTBEAT_SECONDS * 1000,
    shutdown: shutdown.signal,
  });
  if (deps.shadow) await app.register(shadowRoutes, { store: deps.shadow.store });

  // ---- background loops: reconciliation with Conductor; the storage sweeper ---------------
  const loops: NodeJS.Timeout[] = [];
  /** run `work` every `seconds` once the app is ready (0: never), one run at a time */
  const every = (seconds: number, work: () => Promise<unknown>): void => {
    if (seconds <= 0) return;
    let running = false;
    app.addHook("onReady", async () => {
      const timer = setInterval(() => {
        if (running) return;
        running = true;
        work().finally(() => {
          running = false;
        });
      }, seconds * 1000);
      timer.unref();
      loops.push(timer);
    });
  };
  every(config.API_RECONCILE_SECONDS, () =>
    service
      .reconcileAll()
      .then((n) => n && log.info({ changed: n }, "reconciled recordings with Conductor"))
      .catch((err: unknown) => log.warn({ err }, "reconciliation failed")),
  );
  // late writes under deleted recordings, uploads the API never finished (server/storage-sweep.ts)
  const sweeper = createStorageSweeper({
    pool,
    storage,
    log,
    uploadStaleSeconds: config.STORAGE_SWEEP_UPLOAD_STALE_SECONDS,
    onRemoved: (reason, n) => metrics.sweptObjects.inc({ reason }, n),
  });
  every(config.STORAGE_SWEEP_SECONDS, () => sweeper.sweep().catch((err: unknown) => log.warn({ err }, "storage sweep failed; the next one tries again")));
  app.addHook("onClose", async () => {
    shutdown.abort();
    for (const t of loops) clearInterval(t);
    service.close();
  });
  // SSE streams are hijacked: end them first so close() does not wait for them
  app.addHook("preClose", async () => {
    shutdown.abort();
  });

  return app as unknown as FastifyInstance;
}
