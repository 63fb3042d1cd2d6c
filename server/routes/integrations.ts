/**
 * Integrations (a Fastify plugin the app registers):
 *   POST   /v1/webhooks                                   register a receiver (secret shown once)
 *   GET    /v1/webhooks, /v1/webhooks/:id                 list, show (never the secret)
 *   DELETE /v1/webhooks/:id                               remove it and its delivery log
 *   GET    /v1/webhooks/:id/deliveries                    the delivery log: attempts, status codes, next retry
 *   POST   /v1/webhooks/:id/deliveries/:delivery_id/redeliver   send an event again (a new delivery)
 *   PATCH  /v1/recordings/:id/participants                rename speakers
 *   GET    /v1/search?q=                                  full-text search over the caller's recordings
 * A key sees its own webhooks and recordings (any other is 404); the operator sees all.
 */
import type { FastifyPluginAsync } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod/v4";
import type { DeliveryRow, WebhookRow, WebhooksRepo } from "../../adapters/postgres/webhooks.ts";
import { newWebhookSecret } from "../../adapters/postgres/webhooks.ts";
import { BadSearchCursorError, UnknownSpeakerError, type SearchRepo } from "../../adapters/postgres/search.ts";
import { checkWebhookUrl, DestinationError } from "../../adapters/webhooks/destination.ts";
import { canSee, ownerOf, type Principal } from "../auth/plugin.ts";
import { badRequest, conflict, notFound } from "../errors.ts";
import {
  DeliveryList,
  DeliveryParams,
  DeliveryQuery,
  DeliveryView,
  errors,
  ParticipantsPatch,
  ParticipantsView,
  RecordingParams,
  SearchQuery,
  SearchResults,
  WebhookCreate,
  WebhookCreated,
  WebhookList,
  WebhookParams,
  WebhookView,
} from "../http/schemas.ts";
import type { RecordingService } from "../recordings.ts";

export interface IntegrationRoutesOptions {
  webhooks: WebhooksRepo;
  search: SearchRepo;
  service: RecordingService;
  allowPrivate: boolean;
  maxWebhooksPerOwner: number;
}

const iso = (d: Date | string | null): string | null => (d === null ? null : new Date(d).toISOString());
const webhookView = (w: WebhookRow): z.infer<typeof WebhookView> => ({ id: w.id, url: w.url, events: w.events, created_at: iso(w.created_at)! });
const deliveryView = (d: DeliveryRow): z.infer<typeof DeliveryView> => ({
  id: d.id,
  event: d.event,
  recording_id: d.recording_id,
  status: d.status,
  attempts: d.attempts,
  next_attempt_at: d.status === "pending" ? iso(d.next_attempt_at) : null,
  last_status_code: d.last_status_code,
  last_error: d.last_error,
  created_at: iso(d.created_at)!,
  delivered_at: iso(d.delivered_at),
  redelivery_of: d.redelivery_of,
  attempt_log: d.attempt_log.map((a) => ({ ...a, at: iso(a.at)! })),
});

export const integrationRoutes: FastifyPluginAsync<IntegrationRoutesOptions> = async (root, opts) => {
  const app = root.withTypeProvider<ZodTypeProvider>();
  const tags = ["webhooks"];

  /** The webhook if `who` may see it; another owner's is 404 (its existence is not confirmed). */
  async function visibleWebhook(id: string, who: Principal): Promise<WebhookRow> {
    const w = /^[A-Za-z0-9-]{1,64}$/.test(id) ? await opts.webhooks.get(id) : undefined;
    if (!w || !canSee(who, w.owner_key_id)) throw notFound(`no webhook '${id.slice(0, 80)}'`);
    return w;
  }

  app.post(
    "/v1/webhooks",
    {
      schema: {
        tags,
        summary: "register a webhook: signed POSTs for the events listed, about the caller's recordings (the operator's: every recording)",
        body: WebhookCreate,
        response: { 201: WebhookCreated, ...errors(400, 401, 409, 503) },
      },
    },
    async (req, reply) => {
      const { url, events, secret } = req.body;
      try {
        checkWebhookUrl(url, opts.allowPrivate);
      } catch (err) {
        if (err instanceof DestinationError) throw badRequest(err.code, err.message);
        throw err;
      }
      const key = secret ?? newWebhookSecret();
      const created = await opts.webhooks.create({ owner_key_id: ownerOf(req.principal), url, events: [...new Set(events)], secret: key }, opts.maxWebhooksPerOwner);
      if (!created) throw conflict("too_many_webhooks", `at most ${opts.maxWebhooksPerOwner} webhooks per API key; delete one first`);
      reply.header("location", `/v1/webhooks/${created.id}`);
      return reply.code(201).send({ ...webhookView(created), secret: key });
    },
  );

  app.get(
    "/v1/webhooks",
    { schema: { tags, summary: "the caller's webhooks (the operator: all)", response: { 200: WebhookList, ...errors(401, 503) } } },
    async (req) => ({ items: (await opts.webhooks.list(req.principal.kind === "key" ? req.principal.keyId : undefined)).map(webhookView) }),
  );

  app.get(
    "/v1/webhooks/:id",
    { schema: { tags, summary: "one webhook (never its secret)", params: WebhookParams, response: { 200: WebhookView, ...errors(400, 401, 404, 503) } } },
    async (req) => webhookView(await visibleWebhook(req.params.id, req.principal)),
  );

  app.delete(
    "/v1/webhooks/:id",
    { schema: { tags, summary: "remove a webhook and its delivery log (pending deliveries are not sent)", params: WebhookParams, response: { 204: z.null().describe("deleted"), ...errors(400, 401, 404, 503) } } },
    async (req, reply) => {
      const w = await visibleWebhook(req.params.id, req.principal);
      await opts.webhooks.delete(w.id);
      return reply.code(204).send(null);
    },
  );

  app.get(
    "/v1/webhooks/:id/deliveries",
    {
      schema: {
        tags,
        summary: "the webhook's deliveries, newest first: status, attempts (status code, error, ≤ 1 KB of the receiver's answer), next retry",
        params: WebhookParams,
        querystring: DeliveryQuery,
        response: { 200: DeliveryList, ...errors(400, 401, 404, 503) },
      },
    },
    async (req) => {
      const w = await visibleWebhook(req.params.id, req.principal);
      const page = await opts.webhooks.deliveries(w.id, { limit: req.query.limit, ...(req.query.cursor ? { cursor: req.query.cursor } : {}) });
      if (page === "bad_cursor") throw badRequest("bad_request", "cursor is not one this API returned");
      return { items: page.items.map(deliveryView), next_cursor: page.next_cursor };
    },
  );

  app.post(
    "/v1/webhooks/:id/deliveries/:delivery_id/redeliver",
    {
      schema: {
        tags,
        summary: "send a delivery's event again, now: a new delivery (new id) with the same event and data",
        params: DeliveryParams,
        response: { 202: DeliveryView, ...errors(400, 401, 404, 503) },
      },
    },
    async (req, reply) => {
      const w = await visibleWebhook(req.params.id, req.principal);
      const again = /^[A-Za-z0-9-]{1,64}$/.test(req.params.delivery_id) ? await opts.webhooks.redeliver(w.id, req.params.delivery_id) : undefined;
      if (!again) throw notFound(`no delivery '${req.params.delivery_id.slice(0, 80)}' of webhook ${w.id}`);
      return reply.code(202).send(deliveryView(again));
    },
  );

  // ---- speakers ------------------------------------------------------------------------
  app.patch(
    "/v1/recordings/:id/participants",
    {
      schema: {
        tags: ["recordings"],
        summary: "rename speakers of a completed recording (two speakers given one name are shown as one; words keep their track index)",
        params: RecordingParams,
        body: ParticipantsPatch,
        response: { 200: ParticipantsView, ...errors(400, 401, 404, 409, 503) },
      },
      // another owner's recording is 404 whatever the body: looked at before the body is validated
      preValidation: async (req) => {
        await opts.service.status(String((req.params as { id?: unknown }).id ?? ""), req.principal);
      },
    },
    async (req) => {
      const { id } = req.params;
      const rec = await opts.service.status(id, req.principal);
      if (rec.status !== "completed") throw conflict("not_completed", `recording ${id} is ${rec.status}; speakers can be renamed once it has completed`);
      let participants;
      try {
        participants = await opts.search.rename(id, req.body.participants);
      } catch (err) {
        if (err instanceof UnknownSpeakerError) throw badRequest("unknown_speaker", err.message);
        throw err;
      }
      if (!participants) throw conflict("not_completed", `recording ${id} has no result yet`);
      return { id, participants };
    },
  );

  // ---- search --------------------------------------------------------------------------
  app.get(
    "/v1/search",
    {
      schema: {
        tags: ["search"],
        summary: "full-text search over the titles, summaries and transcripts of the caller's completed recordings",
        querystring: SearchQuery,
        response: { 200: SearchResults, ...errors(400, 401, 503) },
      },
    },
    async (req) => {
      const { q, limit, cursor } = req.query;
      try {
        return await opts.search.search(q, { limit, ...(cursor ? { cursor } : {}), ...(req.principal.kind === "key" ? { owner: req.principal.keyId } : {}) });
      } catch (err) {
        if (err instanceof BadSearchCursorError) throw badRequest("bad_request", err.message);
        throw err;
      }
    },
  );
};

