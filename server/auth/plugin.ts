/**
 * Authentication, deny by default. One root `onRequest` hook decides on the route the
 * router matched (never on the URL string): every route needs a bearer credential unless
 * it was registered with `config: { public: true }`; a request that matched no route needs
 * one too. The credential is the operator's API_TOKEN (sees every recording) or an API key
 * (sees the recordings it created). Request targets that are not a plain path
 * (absolute-form `GET http://host/…`, `OPTIONS *`) are refused with 400 before anything else.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyInstance, FastifyRequest } from "fastify";
import fp from "fastify-plugin";
import { ApiError, UnauthorizedError } from "../errors.ts";
import type { ApiKeys } from "./keys.ts";

/** Who is asking: the operator (API_TOKEN, or auth disabled) or one API key. */
export type Principal = { kind: "operator" } | { kind: "key"; keyId: string; name: string };

/** The owner a new recording gets: null for the operator, else the key's id. */
export const ownerOf = (p: Principal): string | null => (p.kind === "key" ? p.keyId : null);

/** May `p` see a recording owned by `owner`? (Another owner's recording is answered 404.) */
export const canSee = (p: Principal, owner: string | null): boolean => p.kind === "operator" || owner === p.keyId;

declare module "fastify" {
  interface FastifyRequest {
    principal: Principal;
  }
  interface FastifyContextConfig {
    /** a route anyone may call (health, metrics, the web page's static files) */
    public?: boolean;
  }
}

export interface AuthOptions {
  /** the operator's token (API_TOKEN) */
  operatorToken?: string | undefined;
  keys: ApiKeys;
  /** AUTH_DISABLED=true: every request is the operator */
  disabled: boolean;
  /**
   * With no API_TOKEN and no live key, may an unauthenticated request act as the operator?
   * Only when the API listens on loopback (a developer's machine): `serve` refuses to start
   * on any other address in that state.
   */
  openWhenNoCredentials: boolean;
}

const sha256 = (s: string): Buffer => createHash("sha256").update(s).digest();

/** Constant-time bearer token check. */
export function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  if (!m) return false;
  return timingSafeEqual(sha256(m[1]!), sha256(token));
}

const bearer = (header: string | undefined): string | undefined => /^Bearer\s+(\S+)\s*$/i.exec(header ?? "")?.[1];

const OPERATOR: Principal = { kind: "operator" };

async function authPlugin(app: FastifyInstance, opts: AuthOptions): Promise<void> {
  // set by the hook below on every request that reaches a handler (the cast: Fastify types a decorator by its initial value)
  app.decorateRequest("principal", undefined as unknown as { getter(): Principal });

  async function resolve(req: FastifyRequest): Promise<Principal | undefined> {
    if (opts.disabled) return OPERATOR;
    const header = req.headers.authorization;
    if (header !== undefined) {
      if (opts.operatorToken && tokenMatches(header, opts.operatorToken)) return OPERATOR;
      const token = bearer(header);
      const key = token ? await opts.keys.verify(token) : undefined;
      if (!key) return undefined;
      opts.keys.touch(key.id).catch((err: unknown) => req.log.warn({ err }, "could not record an API key's last use"));
      return { kind: "key", keyId: key.id, name: key.name };
    }
    if (opts.openWhenNoCredentials && !opts.operatorToken && (await opts.keys.liveCount()) === 0) return OPERATOR;
    return undefined;
  }

  app.addHook("onRequest", async (req, reply) => {
    // origin-form only: the router would otherwise match a path cut out of a full URL
    if (!req.raw.url?.startsWith("/")) {
      reply.header("connection", "close");
      throw new ApiError(400, "bad_request_target", "the request target must be a path such as /v1/recordings");
    }
    if (req.routeOptions.config?.public === true) return;
    const principal = await resolve(req);
    if (!principal) {
      // do not read an upload the client is not allowed to send
      if (req.headers["content-length"] !== "0" && (req.headers["content-length"] || req.headers["transfer-encoding"])) reply.header("connection", "close");
      throw new UnauthorizedError(req.headers.authorization ? "the bearer credential is not a valid API key or token" : "missing Authorization: Bearer <API key>");
    }
    req.principal = principal;
  });
}

export default fp(authPlugin, { name: "trackscribe-auth", fastify: "5.x" });
