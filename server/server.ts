/**
 * The API process's one wiring point: config → logger → Postgres (migrations) → storage →
 * Conductor gateway → event hub → (shadow engine) → app → listen. Everything opened here
 * is closed here, in reverse order, when the process is asked to stop.
 */
import { pino, type Logger } from "pino";
import { configSection, type Config } from "../pipeline/config.ts";
import { build, isLoopbackHost } from "./app.ts";
import { createApiKeys } from "./auth/keys.ts";
import { createConductorGateway, type WorkflowGateway } from "../adapters/conductor/gateway.ts";
import { migrate } from "../adapters/postgres/migrate.ts";
import { createEventHub } from "../adapters/postgres/notify.ts";
import { createPool } from "../adapters/postgres/pool.ts";
import { createPgResultSink } from "../adapters/postgres/sinks.ts";
import { collectStartupGarbage } from "../adapters/memory.ts";
import { createStorage } from "../adapters/storage/index.ts";

/** `serve` would expose recordings to anyone: it refuses to start (the CLI prints the message). */
export class InsecureStartError extends Error {
  override readonly name = "InsecureStartError";
}

/**
 * Fail closed: listening beyond loopback with no operator token and no API key would let
 * anyone who can reach the port read and delete every meeting.
 */
export async function checkAuthSetup(
  config: Pick<Config, "HOST" | "API_TOKEN" | "AUTH_DISABLED">,
  liveKeys: () => Promise<number>,
  log: Logger,
): Promise<void> {
  if (config.AUTH_DISABLED) {
    log.warn({ host: config.HOST }, "AUTH_DISABLED=true: every request acts as the operator; only run this behind a proxy that authenticates");
    return;
  }
  if (config.API_TOKEN || isLoopbackHost(config.HOST)) return;
  if ((await liveKeys()) > 0) return;
  throw new InsecureStartError(
    `refusing to listen on ${config.HOST} with no credentials: anyone reaching this port could read and delete every recording. ` +
      "Set API_TOKEN (at least 16 characters, e.g. `openssl rand -hex 32`) or create an API key with `trackscribe keys create --name NAME`; " +
      "or listen on loopback only (HOST=127.0.0.1); or, behind a proxy that authenticates, set AUTH_DISABLED=true.",
  );
}

export interface RunningServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

export interface StartServerOptions {
  log?: Logger;
  /** replace the Conductor gateway (tests that exercise a failing Conductor) */
  workflows?: WorkflowGateway;
}

export async function startServer(config: Config, opts: StartServerOptions = {}): Promise<RunningServer> {
  const log = opts.log ?? pino({ level: config.LOG_LEVEL, base: { svc: "api" } });
  if (!config.DATABASE_URL) throw new Error("DATABASE_URL is required by `trackscribe serve`");
  const closers: (() => Promise<void>)[] = [];
  const closeAll = async (): Promise<void> => {
    for (const c of closers.reverse()) await c().catch((err: unknown) => log.warn({ err }, "shutdown step failed"));
    closers.length = 0;
  };
  try {
    if (config.MIGRATE_ON_START) {
      const applied = await withBackoff(() => migrate(config, { log: (l) => log.debug(l) }), log, "Postgres", 60_000);
      if (applied.length) log.info({ applied }, "database migrated");
    }
    // each adapter is handed its own section of the configuration, nothing else
    const pool = createPool(configSection(config, "database"), { onError: (err) => log.warn({ err }, "idle Postgres client error") });
    closers.push(() => pool.end());
    await checkAuthSetup(config, () => createApiKeys(pool).liveCount(), log);

    const storage = createStorage(configSection(config, "storage"));
    closers.push(() => storage.close());

    const workflows = opts.workflows ?? (await createConductorGateway({ serverUrl: config.CONDUCTOR_SERVER_URL, log }));
    // the API starts without Conductor (it is slow to start): /readyz says so and uploads answer 503 until it is back
    workflows.ping().catch((err: unknown) => log.warn({ err: (err as Error).message, conductor: config.CONDUCTOR_SERVER_URL }, "Conductor is not reachable yet"));

    const hub = createEventHub(
      { connectionString: config.DATABASE_URL, ...(config.DATABASE_SCHEMA ? { options: `-c search_path=${config.DATABASE_SCHEMA}` } : {}) },
      log,
    );
    closers.push(() => hub.close());

    let shadow;
    let startShadowRun;
    let cancelShadowRun;
    if (config.SHADOW_MODE === "bullmq") {
      const mod = await import("./shadow/runner.ts");
      shadow = await mod.createShadowDeps(config, { storage, pool, log, results: createPgResultSink(pool, { log }) });
      startShadowRun = mod.startShadowRun;
      cancelShadowRun = mod.cancelShadowRun;
      if (shadow) {
        const s = shadow;
        closers.push(() => s.close());
      }
    }

    const app = await build({
      config,
      log,
      pool,
      storage,
      ...(storage.s3 ? { trackSink: async (key: string, body: import("node:stream").Readable, contentType: string) => void (await storage.s3!.upload(key, body, { contentType })) } : {}),
      workflows,
      hub,
      // the crash test's hook: honoured only in a test environment
      ...(config.NODE_ENV === "test" && config.TEST_CRASH_AT
        ? {
            crashPoint: (point: string) => {
              if (point !== config.TEST_CRASH_AT) return;
              log.warn({ point }, "TEST_CRASH_AT: killing the API here");
              process.kill(process.pid, "SIGKILL");
            },
          }
        : {}),
      ...(shadow && startShadowRun && cancelShadowRun ? { shadow, startShadowRun, cancelShadowRun } : {}),
    });
    closers.push(() => app.close());
    const address = await app.listen({ port: config.PORT, host: config.HOST });
    const port = app.server.address() && typeof app.server.address() === "object" ? (app.server.address() as { port: number }).port : config.PORT;
    collectStartupGarbage();
    log.info({ address, storage: storage.describe, conductor: config.CONDUCTOR_SERVER_URL, shadow: config.SHADOW_MODE }, "trackscribe API listening");
    return { url: `http://127.0.0.1:${port}`, port, close: closeAll };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

const isConnectionError = (err: unknown): boolean =>
  /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|the database system is starting up|Connection terminated/i.test(String((err as Error)?.message ?? err)) ||
  ["ECONNREFUSED", "57P03"].includes(String((err as { code?: string })?.code));

/** Retry `f` while its dependency is not reachable yet, with back-off up to `timeoutMs`. */
async function withBackoff<T>(f: () => Promise<T>, log: Logger, what: string, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let delay = 250;
  for (;;) {
    try {
      return await f();
    } catch (err) {
      if (!isConnectionError(err) || Date.now() + delay > deadline) throw err;
      log.warn({ err: (err as Error).message, retry_in_ms: delay }, `waiting for ${what}`);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 5000);
    }
  }
}

/** Run until SIGINT/SIGTERM (what `trackscribe serve` does). */
export async function serveUntilSignalled(config: Config, log: Logger): Promise<void> {
  const server = await startServer(config, { log });
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      log.info({ signal }, "shutting down");
      resolve();
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
  });
  await server.close();
  log.info("stopped");
}
