/**
 * Shadow-mode routes (a Fastify plugin the app registers):
 *   GET /v1/recordings/:id/shadow   the full comparison of one recording (404 if it was not shadowed)
 *   GET /v1/shadow/summary          match rate, mismatches by step, p50/p95 step durations per engine
 */
import type { FastifyPluginAsync } from "fastify";
import { z } from "zod/v4";
import type { ShadowStore } from "../shadow/store.ts";

export interface ShadowRoutesOptions {
  store: ShadowStore;
}

const Params = z.object({ id: z.string().min(1).max(64) });

export const shadowRoutes: FastifyPluginAsync<ShadowRoutesOptions> = async (app, opts) => {
  app.get("/v1/recordings/:id/shadow", async (req, reply) => {
    const params = Params.safeParse(req.params);
    if (!params.success) return reply.code(400).send({ error: "bad_request", message: "recording id must be 1-64 characters" });
    const record = await opts.store.get(params.data.id);
    if (!record) {
      return reply.code(404).send({ error: "not_found", message: `recording ${params.data.id} has no shadow comparison (shadow mode off or not sampled)` });
    }
    return {
      recording_id: record.recording_id,
      status: record.status,
      bullmq_run_id: record.bullmq_run_id,
      conductor_workflow_id: record.conductor_workflow_id,
      counts: { matched: record.matched, mismatched: record.mismatched, ignored: record.ignored },
      error: record.error,
      started_at: record.started_at,
      compared_at: record.compared_at,
      report: record.report,
    };
  });

  app.get("/v1/shadow/summary", async () => opts.store.summary());
};

export default shadowRoutes;
