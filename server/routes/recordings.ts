/**
 * /v1/recordings routes. Inputs are parsed with zod; handlers are thin and call the
 * recording service. Errors are thrown as ApiError and answered by the app's error handler.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod/v4";
import type { Storage } from "../../pipeline/ports.ts";
import { StorageKeyNotFoundError } from "../../pipeline/ports.ts";
import type { EventHub } from "../db/notify.ts";
import type { RecordingsRepo } from "../db/recordings-repo.ts";
import { ApiError, badRequest, notFound } from "../errors.ts";
import { clientFailure } from "../../pipeline/failures.ts";
import type { ApiMetrics } from "../metrics.ts";
import type { RecordingService } from "../recordings.ts";
import { streamEvents } from "../sse.ts";
import { renderTranscript, TRANSCRIPT_CONTENT_TYPES, TRANSCRIPT_FORMATS } from "../transcript.ts";
import type { UploadPart } from "../upload/receive.ts";

export interface RecordingRoutesOptions {
  service: RecordingService;
  repo: RecordingsRepo;
  storage: Storage;
  hub?: EventHub;
  metrics: ApiMetrics;
  limits: { maxTracks: number; maxTrackBytes: number };
  heartbeatMs: number;
  shutdown: AbortSignal;
}

const Params = z.object({ id: z.string().min(1).max(200) });
const TranscriptQuery = z.object({ format: z.enum(TRANSCRIPT_FORMATS).default("json") });
const ListQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().min(1).max(200).optional(),
  status: z.enum(["queued", "processing", "completed", "failed"]).optional(),
});
const IdempotencyKey = z.string().regex(/^[\x21-\x7e]{1,200}$/, "Idempotency-Key must be 1-200 visible ASCII characters");

function parse<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (!r.success) throw badRequest("bad_request", `invalid ${what}: ${r.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ")}`);
  return r.data;
}

/** `bytes=a-b`, `bytes=a-`, `bytes=-n` → inclusive range, or "unsatisfiable"; undefined when absent or not a single byte range. */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | "unsatisfiable" | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return undefined;
  let start: number;
  let end: number;
  if (m[1] === "") {
    const n = Number(m[2]);
    if (n === 0) return "unsatisfiable";
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || start > end) return "unsatisfiable";
  return { start, end };
}

export const recordingRoutes: FastifyPluginAsync<RecordingRoutesOptions> = async (app, opts) => {
  const { service, storage } = opts;

  /** After an upload is refused, stop reading the rest of the body: answer and close. */
  const closeAfterReply = (req: FastifyRequest, reply: FastifyReply): void => {
    if (!req.raw.readableEnded) reply.header("connection", "close");
  };

  app.post("/v1/recordings", async (req, reply) => {
    const rawKey = req.headers["idempotency-key"];
    const idempotencyKey = rawKey === undefined ? undefined : parse(IdempotencyKey, rawKey, "Idempotency-Key header");
    let outcome;
    if (req.isMultipart()) {
      let gone = false;
      req.raw.once("close", () => {
        if (!req.raw.readableEnded) gone = true;
      });
      req.raw.once("aborted", () => {
        gone = true;
      });
      const parts = req.parts({
        // keep the client's name as sent so path-like names are refused, not silently stripped
        preservePath: true,
        limits: {
          fileSize: opts.limits.maxTrackBytes + 1, // the guard sees the byte too many and refuses
          files: opts.limits.maxTracks + 1, // one file too many is reported as a count mismatch
          fields: 4,
          fieldSize: 256 * 1024,
          parts: opts.limits.maxTracks + 5,
        },
      }) as AsyncIterable<UploadPart>;
      try {
        outcome = await service.createFromUpload(parts, { idempotencyKey, clientGone: () => gone, principal: req.principal });
      } catch (err) {
        closeAfterReply(req, reply);
        throw err;
      }
    } else {
      if (!req.body || typeof req.body !== "object") {
        throw new ApiError(415, "unsupported_media_type", "send multipart/form-data (manifest + track files) or application/json (tracks already in the bucket)");
      }
      outcome = await service.createFromKeys(req.body, { idempotencyKey, principal: req.principal });
    }
    if (outcome.replayed) reply.header("idempotent-replayed", "true");
    reply.header("location", `/v1/recordings/${outcome.recording.id}`);
    return reply.code(202).send({ id: outcome.recording.id, status: outcome.recording.status });
  });

  app.get("/v1/recordings", async (req) => {
    const q = parse(ListQuery, req.query, "query");
    let page;
    try {
      // an API key lists its own recordings; the operator lists all
      page = await opts.repo.list({ ...q, ...(req.principal.kind === "key" ? { owner: req.principal.keyId } : {}) });
    } catch (err) {
      if ((err as Error).name === "InvalidCursorError") throw badRequest("bad_request", (err as Error).message);
      throw err;
    }
    return {
      items: page.items.map((r) => ({
        id: r.id,
        status: r.status,
        language: r.language,
        tracks: r.track_count,
        created_at: r.created_at.toISOString(),
        updated_at: r.updated_at.toISOString(),
        error: clientFailure(r.error, "pipeline_failed")?.message ?? null,
      })),
      next_cursor: page.next_cursor,
    };
  });

  app.get("/v1/recordings/:id", async (req) => {
    const { id } = parse(Params, req.params, "path");
    return service.get(id, req.principal);
  });

  app.get("/v1/recordings/:id/transcript", async (req, reply) => {
    const { id } = parse(Params, req.params, "path");
    const { format } = parse(TranscriptQuery, req.query, "query");
    const { result } = await service.result(id, req.principal);
    reply.header("content-type", TRANSCRIPT_CONTENT_TYPES[format]);
    if (format !== "json") reply.header("content-disposition", `inline; filename="${id}.${format === "text" ? "txt" : format}"`);
    return reply.send(renderTranscript(result, format));
  });

  app.get("/v1/recordings/:id/audio", async (req, reply) => {
    const { id } = parse(Params, req.params, "path");
    const { audio_key } = await service.result(id, req.principal);
    if (!audio_key) throw notFound(`recording ${id} has no mixdown audio`);
    const size = await storage.size(audio_key);
    if (size === undefined) throw notFound(`the mixdown of recording ${id} is missing from storage`);
    const range = parseRange(req.headers.range, size);
    reply.header("accept-ranges", "bytes");
    if (range === "unsatisfiable") {
      return reply.code(416).header("content-range", `bytes */${size}`).send({ error: "range_not_satisfiable", message: `the audio is ${size} bytes` });
    }
    reply.header("content-type", "audio/mpeg").header("cache-control", "private, max-age=3600");
    try {
      if (range) {
        const body = await storage.stream(audio_key, range);
        return reply
          .code(206)
          .header("content-range", `bytes ${range.start}-${range.end}/${size}`)
          .header("content-length", range.end - range.start + 1)
          .send(body);
      }
      return reply.header("content-length", size).send(await storage.stream(audio_key));
    } catch (err) {
      if (err instanceof StorageKeyNotFoundError) throw notFound(`the mixdown of recording ${id} is missing from storage`);
      throw err;
    }
  });

  app.get("/v1/recordings/:id/events", async (req, reply) => {
    const { id } = parse(Params, req.params, "path");
    const rec = await service.status(id, req.principal);
    const tracks = await opts.repo.tracks(id);
    const lastEventId = Number(req.headers["last-event-id"] ?? 0);
    reply.hijack();
    opts.metrics.sseClients.inc();
    try {
      await streamEvents(reply.raw, rec, tracks.length, Number.isFinite(lastEventId) && lastEventId > 0 ? lastEventId : 0, {
        repo: opts.repo,
        ...(opts.hub ? { hub: opts.hub } : {}),
        reconcile: (r) => service.reconcile(r),
        heartbeatMs: opts.heartbeatMs,
        shutdown: opts.shutdown,
      });
    } catch (err) {
      req.log.warn({ err, recording_id: id }, "event stream failed");
      if (!reply.raw.writableEnded) reply.raw.end();
    } finally {
      opts.metrics.sseClients.dec();
    }
  });

  app.post("/v1/recordings/:id/retry", async (req, reply) => {
    const { id } = parse(Params, req.params, "path");
    const rec = await service.retry(id, req.principal);
    return reply.code(202).send({ id: rec.id, status: rec.status });
  });

  app.delete("/v1/recordings/:id", async (req, reply) => {
    const { id } = parse(Params, req.params, "path");
    await service.remove(id, req.principal);
    return reply.code(204).send();
  });
};
