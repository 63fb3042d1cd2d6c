/**
 * /v1/recordings routes. Inputs are parsed with zod; handlers are thin and call the
 * recording service. Errors are thrown as ApiError and answered by the app's error handler.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod/v4";
import type { Storage } from "../../pipeline/ports.ts";
import { StorageKeyNotFoundError } from "../../pipeline/ports.ts";
import type { EventHub } from "../../adapters/postgres/notify.ts";
import type { RecordingsRepo } from "../../adapters/postgres/recordings-repo.ts";
import { ApiError, badRequest, notFound } from "../errors.ts";
import { clientFailure } from "../../pipeline/failures.ts";
import type { ApiMetrics } from "../metrics.ts";
import type { RecordingService } from "../recordings.ts";
import { streamEvents } from "../sse.ts";
import { renderTranscript, TRANSCRIPT_CONTENT_TYPES } from "../transcript.ts";
import { streamArchive } from "../export.ts";
import { Result } from "../../pipeline/contracts/index.ts";
import { Accepted, errors, IdempotencyKey, ListQuery, RecordingList, RecordingParams, RecordingView, TranscriptQuery, Waveform } from "../http/schemas.ts";
import type { UploadPart } from "../upload/receive.ts";
import type { UploadLimits } from "../upload/limits.ts";
import rateLimit from "@fastify/rate-limit";
import { BusyError, createGate } from "../admission.ts";

export interface RecordingRoutesOptions {
  service: RecordingService;
  repo: RecordingsRepo;
  storage: Storage;
  hub?: EventHub;
  metrics: ApiMetrics;
  limits: UploadLimits;
  heartbeatMs: number;
  shutdown: AbortSignal;
  admission: { uploads: number; createsPerMinute: number; sseStreams: number; ssePerRecording: number; uploadIdleMs: number };
}

const tags = ["recordings"];
/** a body that is not JSON (audio, an event stream): described, not serialized */
const binary = (description: string) => z.unknown().describe(description);

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

export const recordingRoutes: FastifyPluginAsync<RecordingRoutesOptions> = async (root, opts) => {
  const app = root.withTypeProvider<ZodTypeProvider>();
  const uploads = createGate(opts.admission.uploads);
  const streams = createGate(opts.admission.sseStreams, opts.admission.ssePerRecording);
  // creates per minute, per API key (or the operator); the answer is 429 with Retry-After
  await root.register(rateLimit, { global: false });
  const createLimit = {
    max: opts.admission.createsPerMinute,
    timeWindow: 60_000,
    keyGenerator: (req: FastifyRequest) => (req.principal?.kind === "key" ? `key:${req.principal.keyId}` : "operator"),
    errorResponseBuilder: (_req: FastifyRequest, ctx: { after: string; max: number }) =>
      new ApiError(429, "rate_limited", `at most ${ctx.max} recordings a minute may be created with one key; try again in ${ctx.after}`),
  };
  const { service, storage } = opts;

  /** After an upload is refused, stop reading the rest of the body: answer and close. */
  const closeAfterReply = (req: FastifyRequest, reply: FastifyReply): void => {
    if (!req.raw.readableEnded) reply.header("connection", "close");
  };

  app.post(
    "/v1/recordings",
    {
      schema: {
        tags,
        summary: "upload a recording",
        description:
          "multipart/form-data: a `manifest` field (JSON: language, tracks [{participant, offset_seconds}]) and one `track` file part per manifest entry, in order; " +
          "or application/json naming tracks already in the bucket (KeyManifest). Optional `Idempotency-Key` header (per owner). The body is parsed by the handler " +
          "(streamed to storage), so each refusal has its own error code.",
        headers: z.object({ "idempotency-key": z.string().optional() }).passthrough(),
        response: { 202: Accepted, ...errors(400, 401, 403, 409, 413, 415, 422, 429, 503) },
      },
      config: { rateLimit: createLimit },
    },
    async (req, reply) => {
    const rawKey = req.headers["idempotency-key"];
    const idempotencyKey = rawKey === undefined ? undefined : parse(IdempotencyKey, rawKey, "Idempotency-Key header");
    let outcome;
    if (req.isMultipart()) {
      const release = uploads.tryEnter();
      if (!release) {
        closeAfterReply(req, reply);
        throw new BusyError("too_many_uploads", `${opts.admission.uploads} uploads are streaming already; try again shortly`, 5);
      }
      reply.raw.once("close", release);
      let gone = false;
      req.raw.once("close", () => {
        if (!req.raw.readableEnded) gone = true;
      });
      req.raw.once("aborted", () => {
        gone = true;
      });
      // a client that stops sending (while we are ready for more) is cut off: the upload then
      // fails as a client that went away, and everything it wrote is removed. Watched from the
      // socket's byte count, without a listener on the body (that would start it flowing)
      const idleMs = opts.admission.uploadIdleMs;
      let lastBytes = -1;
      let lastChange = Date.now();
      const idle = setInterval(() => {
        if (req.raw.readableEnded) return clearInterval(idle); // the whole body is here
        const n = req.raw.socket?.bytesRead ?? 0;
        // paused: we are the slow side (storage), not the client
        if (n !== lastBytes || req.raw.isPaused()) {
          lastBytes = n;
          lastChange = Date.now();
          return;
        }
        if (Date.now() - lastChange < idleMs) return;
        clearInterval(idle);
        gone = true;
        req.log.info({ idle_ms: idleMs }, "upload idle: cutting the client off");
        req.raw.destroy(new Error("the client sent nothing for too long"));
      }, Math.max(50, Math.min(1000, idleMs / 4)));
      idle.unref();
      reply.raw.once("close", () => clearInterval(idle));
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
    },
  );

  app.get(
    "/v1/recordings",
    { schema: { tags, summary: "list recordings, newest first (a key sees its own)", querystring: ListQuery, response: { 200: RecordingList, ...errors(400, 401, 503) } } },
    async (req) => {
    const q = req.query;
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
        participants: r.participants,
        title: r.title,
        duration: r.duration,
        created_at: r.created_at.toISOString(),
        updated_at: r.updated_at.toISOString(),
        error: clientFailure(r.error, "pipeline_failed")?.message ?? null,
        warnings: r.warnings ?? [],
      })),
      next_cursor: page.next_cursor,
    };
    },
  );

  app.get(
    "/v1/recordings/:id",
    { schema: { tags, summary: "status, per-step progress, error and (once completed) the Result", params: RecordingParams, response: { 200: RecordingView, ...errors(400, 401, 404, 503) } } },
    async (req) => service.get(req.params.id, req.principal),
  );

  app.get(
    "/v1/recordings/:id/transcript",
    {
      schema: {
        tags,
        summary: "the transcript: json (the Result), text, vtt, srt or md (Markdown: title, summary, topics, action items, turns); zip: an archive of mixdown, per-track audio, the Result and every transcript",
        params: RecordingParams,
        querystring: TranscriptQuery,
        response: { 200: z.union([Result, z.string(), binary("application/zip (format=zip), streamed")]), ...errors(400, 401, 404, 409, 503) },
      },
    },
    async (req, reply) => {
    const { id } = req.params;
    const { format } = req.query;
    const { result, audio_key } = await service.result(id, req.principal);
    reply.header("content-type", TRANSCRIPT_CONTENT_TYPES[format]);
    if (format === "zip") {
      // streamed from storage into the response (server/export.ts)
      reply.header("content-disposition", `attachment; filename="${id}.zip"`);
      const tracks = await opts.repo.tracks(id);
      return reply.send(streamArchive({ result, tracks, audioKey: audio_key, storage, onError: (err) => req.log.warn({ err, recording_id: id }, "archive stream failed") }));
    }
    if (format !== "json") reply.header("content-disposition", `inline; filename="${id}.${format === "text" ? "txt" : format}"`);
    return reply.send(renderTranscript(result, format));
    },
  );

  app.get(
    "/v1/recordings/:id/audio",
    {
      schema: {
        tags,
        summary: "the mixdown (MP3); single byte ranges answered 206",
        params: RecordingParams,
        headers: z.object({ range: z.string().optional() }).passthrough(),
        response: { 200: binary("audio/mpeg"), 206: binary("audio/mpeg, the requested range"), ...errors(400, 401, 404, 409, 416, 503) },
      },
    },
    async (req, reply) => {
    const { id } = req.params;
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
    },
  );

  app.get(
    "/v1/recordings/:id/waveform",
    {
      schema: {
        tags,
        summary: "the mixdown's waveform: peak levels for drawing it (from the mixdown step)",
        params: RecordingParams,
        response: { 200: Waveform, ...errors(400, 401, 404, 409, 503) },
      },
    },
    async (req, reply) => {
      const { id } = req.params;
      const { result, waveform } = await service.result(id, req.principal);
      if (!waveform) throw notFound(`recording ${id} has no waveform`);
      reply.header("cache-control", "private, max-age=3600");
      return { duration: result.duration, peaks: waveform };
    },
  );

  app.get(
    "/v1/recordings/:id/events",
    {
      schema: {
        tags,
        summary: "live progress as Server-Sent Events (stored events replayed, then live; Last-Event-ID resumes)",
        params: RecordingParams,
        response: { 200: binary("text/event-stream: `status`, progress and `end` events, JSON on one line each"), ...errors(400, 401, 404, 503) },
      },
    },
    async (req, reply) => {
    const { id } = req.params;
    const rec = await service.status(id, req.principal);
    const tracks = await opts.repo.tracks(id);
    const lastEventId = Number(req.headers["last-event-id"] ?? 0);
    const release = streams.tryEnter(id);
    if (!release) throw new BusyError("too_many_streams", "too many event streams are open (in total or on this recording); try again shortly", 10);
    reply.raw.once("close", release);
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
    },
  );

  app.post(
    "/v1/recordings/:id/retry",
    { schema: { tags, summary: "retry a failed recording from its failed step", params: RecordingParams, response: { 202: Accepted, ...errors(400, 401, 404, 409, 503) } } },
    async (req, reply) => {
      const rec = await service.retry(req.params.id, req.principal);
      return reply.code(202).send({ id: rec.id, status: rec.status });
    },
  );

  app.delete(
    "/v1/recordings/:id",
    {
      schema: {
        tags,
        summary: "delete a recording: its workflow, rows and objects",
        params: RecordingParams,
        response: { 204: z.null().describe("deleted"), ...errors(400, 401, 404, 503) },
      },
    },
    async (req, reply) => {
      await service.remove(req.params.id, req.principal);
      return reply.code(204).send(null);
    },
  );
};
