/**
 * Every error as JSON `{error, message}` with its status, and every answer with its
 * `x-request-id`. 5xx causes (a driver's message, an upstream's body) go to the log under
 * the request id; the client reads a code and a sentence.
 */
import type { FastifyError, FastifyInstance } from "fastify";
import fp from "fastify-plugin";
import { ApiError, DependencyError, UnauthorizedError } from "../errors.ts";
import { BusyError } from "../admission.ts";

/** Connection-level Postgres failures (as opposed to a bad query). */
export const isDatabaseDown = (err: unknown): boolean => {
  const code = String((err as { code?: string })?.code ?? "");
  return ["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "57P01", "57P03", "08000", "08001", "08003", "08006"].includes(code) ||
    /timeout exceeded when trying to connect|Connection terminated|connect ECONNREFUSED/i.test(String((err as Error)?.message));
};

async function errorsPlugin(app: FastifyInstance): Promise<void> {
  app.setErrorHandler((err: FastifyError | ApiError | Error, req, reply) => {
    if (err instanceof ApiError) {
      // a full gate is the API working as meant, not a fault
      if (err instanceof BusyError) req.log.info({ code: err.code }, err.message);
      else if (err.statusCode >= 500) req.log.error({ err, cause: (err as { cause?: unknown }).cause }, err.message);
      if (err instanceof UnauthorizedError) reply.header("www-authenticate", 'Bearer realm="trackscribe"');
      if (err instanceof BusyError) reply.header("retry-after", String(err.retryAfterSeconds));
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
    if (fe.validation) return reply.code(400).send({ error: "bad_request", message: `invalid ${fe.validationContext ?? "request"}: ${fe.message}` });
    if (status >= 400 && status < 500) {
      return reply.code(status).send({ error: (fe.code ?? "bad_request").toLowerCase().replace(/^fst_(err_)?/, ""), message: fe.message });
    }
    if (isDatabaseDown(err)) {
      req.log.error({ err }, "Postgres unavailable");
      const e = new DependencyError("postgres", "the database is unavailable; try again later");
      return reply.code(e.statusCode).send({ error: e.code, message: e.message });
    }
    req.log.error({ err }, "request failed");
    return reply.code(500).send({ error: "internal_error", message: `internal error (the server's log has it under request id ${req.id})` });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: "not_found", message: `no route ${req.method} ${req.url.split("?")[0]!.slice(0, 200)}` }));
  app.addHook("onSend", async (req, reply) => {
    reply.header("x-request-id", req.id);
  });
}

export default fp(errorsPlugin, { name: "trackscribe-errors", fastify: "5.x" });
