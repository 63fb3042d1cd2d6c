/**
 * Public probes: /healthz (the process runs), /readyz (Postgres, S3 and Conductor answer:
 * `up` or `down`, the reason only in the log) and /metrics (Prometheus text, plus the HTTP
 * duration histogram fed from every response).
 */
import type { FastifyInstance } from "fastify";
import fp from "fastify-plugin";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod/v4";
import type { ApiMetrics } from "../metrics.ts";
import { Health, Readiness } from "../http/schemas.ts";

export interface HealthOptions {
  metrics: ApiMetrics;
  /** name → a probe that resolves when the dependency answers (given an abort signal) */
  probes: Record<string, (signal: AbortSignal) => Promise<unknown>>;
  probeTimeoutMs?: number;
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

async function healthPlugin(root: FastifyInstance, opts: HealthOptions): Promise<void> {
  const app = root.withTypeProvider<ZodTypeProvider>();
  const { metrics } = opts;
  app.addHook("onResponse", async (req, reply) => {
    const route = req.routeOptions.url ?? "unmatched";
    metrics.httpDuration.observe({ method: req.method, route, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });

  const open = { public: true } as const;
  app.get("/healthz", { config: open, schema: { tags: ["health"], summary: "the process runs", response: { 200: Health } } }, async () => ({ status: "ok" as const }));

  app.get(
    "/readyz",
    { config: open, schema: { tags: ["health"], summary: "every dependency answers", response: { 200: Readiness, 503: Readiness } } },
    async (req, reply) => {
      const checks = await Promise.all(
        Object.entries(opts.probes).map(async ([name, probe]): Promise<[string, boolean]> => {
          try {
            await withTimeout(name, opts.probeTimeoutMs ?? 3000, probe);
            return [name, true];
          } catch (err) {
            // the reason goes to the log, never to the (unauthenticated) client
            req.log.warn({ err, dependency: name }, "readiness check failed");
            return [name, false];
          }
        }),
      );
      const down = checks.filter(([, up]) => !up).map(([n]) => n);
      const body = { checks: Object.fromEntries(checks.map(([n, up]) => [n, up ? ("up" as const) : ("down" as const)])) };
      if (down.length === 0) return { status: "ready" as const, ...body };
      return reply.code(503).send({ status: "not_ready", error: "not_ready", message: `not ready: ${down.join(", ")} ${down.length === 1 ? "is" : "are"} down`, ...body });
    },
  );

  app.get(
    "/metrics",
    { config: open, schema: { tags: ["health"], summary: "Prometheus metrics (text exposition format)", response: { 200: z.string() } } },
    async (_req, reply) => {
      reply.header("content-type", metrics.registry.contentType);
      return metrics.registry.metrics();
    },
  );
}

export default fp(healthPlugin, { name: "trackscribe-health", fastify: "5.x" });
