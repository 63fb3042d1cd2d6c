/**
 * The HTTP API as a Fastify instance built from its dependencies; it never listens
 * (server/server.ts does) so tests use `build(deps)` + `app.inject`. Each dependency is
 * created by the caller and passed in; the app only closes what it created itself.
 */
import { randomUUID } from "node:crypto";
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
import { ApiError, DependencyError, UnauthorizedError } from "./errors.ts";
import authPlugin from "./auth/plugin.ts";
import { createApiKeys, type ApiKeys } from "./auth/keys.ts";
import { createMetrics } from "./metrics.ts";
import { createRecordingService } from "./recordings.ts";
import { recordingRoutes } from "./routes/recordings.ts";
import { shadowRoutes } from "./routes/shadow.ts";
import { createShadowStore } from "./shadow/store.ts";
import { createStorageSweeper } from "./storage-sweep.ts";
import type { ShadowDeps } from "./shadow/runner.ts";
import type { TrackSink } from "./upload/receive.ts";

export type AppConfig = Pick<
  Config,
  "API_TOKEN" | "AUTH_DISABLED" | "HOST" | "MAX_TRACKS" | "MAX_TRACK_BYTES" | "API_RECONCILE_SECONDS" | "SSE_HEARTBEAT_SECONDS" | "STORAGE_SWEEP_SECONDS" | "STORAGE_SWEEP_UPLOAD_STALE_SECONDS"
>;

export interface RouteEntry {
  method: string;
  url: string;
  public: boolean;
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
  /** stops a recording's shadow run (DELETE); injected with startShadowRun */
  cancelShadowRun?: (deps: ShadowDeps, recordingId: string) => Promise<unknown>;
}

/** Connection-level Postgres failures (as opposed to a bad query). */
const isDatabaseDown = (err: unknown): boolean => {
  const code = String((err as { code?: string })?.code ?? "");
  return ["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "57P01", "57P03", "08000", "08001", "08003", "08006"].includes(code) ||
    /timeout exceeded when trying to connect|Connection terminated|connect ECONNREFUSED/i.test(String((err as Error)?.message));
};

export { tokenMatches } from "./auth/plugin.ts";

/** A client's x-request-id is kept for log correlation only when it is this plain. */
export const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/** Is `host` a loopback listen address (only this machine can connect)? */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h) || h === "::ffff:127.0.0.1";
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
    for (const method of [r.method].flat()) routeTable.push({ method, url: r.url, public: r.config?.public === true });
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
      if (err.statusCode >= 500) req.log.error({ err, cause: (err as { cause?: unknown }).cause }, err.message);
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
      const e = new DependencyError("postgres", "the database is unavailable; try again later");
      return reply.code(e.statusCode).send({ error: e.code, message: e.message });
    }
    req.log.error({ err }, "request failed");
    return reply.code(500).send({ error: "internal_error", message: "internal error (see the server log for the request id)" });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: "not_found", message: `no route ${req.method} ${req.url.split("?")[0]!.slice(0, 200)}` }));
  app.addHook("onSend", async (req, reply) => {
    reply.header("x-request-id", req.id);
  });

  // ---- auth: deny by default (server/auth/plugin.ts) ----------------------------------
  await app.register(authPlugin, {
    operatorToken: config.API_TOKEN,
    keys,
    disabled: config.AUTH_DISABLED,
    openWhenNoCredentials: isLoopbackHost(config.HOST),
  });

  // ---- metrics ------------------------------------------------------------------------
  app.addHook("onResponse", async (req, reply) => {
    const route = req.routeOptions.url ?? "unmatched";
    metrics.httpDuration.observe({ method: req.method, route, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });

  // ---- health -------------------------------------------------------------------------
  const open = { config: { public: true } } as const;
  app.get("/healthz", open, async () => ({ status: "ok" }));
  app.get("/readyz", open, async (req, reply) => {
    const probe = async (name: string, f: (signal: AbortSignal) => Promise<unknown>): Promise<[string, string | undefined]> => {
      try {
        await withTimeout(name, 3000, f);
        return [name, undefined];
      } catch (err) {
        // the reason goes to the log, never to the (unauthenticated) client
        req.log.warn({ err, dependency: name }, "readiness check failed");
        return [name, (err as Error).message || String(err)];
      }
    };
    const checks = await Promise.all([
      probe("postgres", () => repo.ping()),
      probe("s3", (signal) => (storage.ping ? storage.ping(signal) : storage.list("healthz/"))),
      probe("conductor", (signal) => workflows.ping(signal)),
    ]);
    const down = checks.filter(([, e]) => e !== undefined);
    const body = { checks: Object.fromEntries(checks.map(([n, e]) => [n, e === undefined ? "up" : "down"])) };
    if (down.length === 0) return { status: "ready", ...body };
    return reply.code(503).send({ status: "not_ready", error: "not_ready", message: `not ready: ${down.map(([n]) => n).join(", ")} ${down.length === 1 ? "is" : "are"} down`, ...body });
  });
  app.get("/metrics", open, async (_req, reply) => {
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
  // with shadow mode off the comparison routes still answer (404 "not shadowed", the summary empty)
  await app.register(shadowRoutes, { store: deps.shadow?.store ?? createShadowStore(pool), assertVisible: (id, who) => service.assertVisible(id, who) });

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
