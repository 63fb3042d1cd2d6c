/**
 * Shadow-mode routes (a Fastify plugin the app registers):
 *   GET /v1/recordings/:id/shadow   the full comparison of one recording (404 if it was not shadowed)
 *   GET /v1/shadow/summary          match rate, mismatches by step, p50/p95 step durations per engine
 */
import type { FastifyPluginAsync } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { errors, RecordingParams, ShadowSummary, ShadowView } from "../http/schemas.ts";
import { ApiError } from "../errors.ts";
import type { Principal } from "../auth/plugin.ts";
import type { ShadowStore } from "../shadow/store.ts";

export interface ShadowRoutesOptions {
  store: ShadowStore;
  /** 404 unless the caller may see the recording (its owner, or the operator) */
  assertVisible(id: string, who: Principal): Promise<void>;
}

const tags = ["shadow"];

export const shadowRoutes: FastifyPluginAsync<ShadowRoutesOptions> = async (root, opts) => {
  const app = root.withTypeProvider<ZodTypeProvider>();
  app.get(
    "/v1/recordings/:id/shadow",
    {
      schema: {
        tags,
        summary: "the Conductor vs BullMQ comparison of one recording (404 when it was not shadowed)",
        params: RecordingParams,
        response: { 200: ShadowView, ...errors(400, 401, 404, 503) },
      },
    },
    async (req, reply) => {
      const { id } = req.params;
      await opts.assertVisible(id, req.principal);
      const record = await opts.store.get(id);
      if (!record) {
        return reply.code(404).send({ error: "not_found", message: `recording ${id} has no shadow comparison (shadow mode off or not sampled)` });
      }
      return {
        recording_id: record.recording_id,
        status: record.status,
        bullmq_run_id: record.bullmq_run_id,
        conductor_workflow_id: record.conductor_workflow_id,
        counts: { matched: record.matched, mismatched: record.mismatched, ignored: record.ignored },
        error: record.error,
        started_at: new Date(record.started_at).toISOString(),
        compared_at: record.compared_at ? new Date(record.compared_at).toISOString() : null,
        report: record.report,
      };
    },
  );

  // across every recording: the operator's view of the two engines, not one key's
  app.get(
    "/v1/shadow/summary",
    { schema: { tags, summary: "match rate, mismatches by step, step durations per engine (the operator's)", response: { 200: ShadowSummary, ...errors(401, 403, 503) } } },
    async (req) => {
      if (req.principal.kind !== "operator") throw new ApiError(403, "forbidden", "the shadow summary spans every recording: it needs the operator's API_TOKEN");
      return opts.store.summary();
    },
  );
};

export default shadowRoutes;
