/**
 * Shadow-mode routes (a Fastify plugin the app registers):
 *   GET /v1/recordings/:id/shadow   the full comparison of one recording (404 if it was not shadowed)
 *   GET /v1/shadow/summary          match rate, mismatches by step, p50/p95 step durations per engine
 */
import type { FastifyPluginAsync } from "fastify";
import { z } from "zod/v4";
import { ApiError } from "../errors.ts";
import type { Principal } from "../auth/plugin.ts";
import type { ShadowStore } from "../shadow/store.ts";

export interface ShadowRoutesOptions {
  store: ShadowStore;
  /** 404 unless the caller may see the recording (its owner, or the operator) */
  assertVisible(id: string, who: Principal): Promise<void>;
}

const Params = z.object({ id: z.string().min(1).max(64) });

export const shadowRoutes: FastifyPluginAsync<ShadowRoutesOptions> = async (app, opts) => {
  app.get("/v1/recordings/:id/shadow", async (req, reply) => {
    const params = Params.safeParse(req.params);
    if (!params.success) return reply.code(400).send({ error: "bad_request", message: "recording id must be 1-64 characters" });
    await opts.assertVisible(params.data.id, req.principal);
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

  // across every recording: the operator's view of the two engines, not one key's
  app.get("/v1/shadow/summary", async (req) => {
    if (req.principal.kind !== "operator") throw new ApiError(403, "forbidden", "the shadow summary spans every recording: it needs the operator's API_TOKEN");
    return opts.store.summary();
  });
};

export default shadowRoutes;
