/**
 * The web app's static files (web/, built by `npm run build:web` into web/dist), served at
 * `/` beside the API. Every route here is public, and says so: the files are the same for
 * everyone and hold no data (the page asks the API for data with the person's key).
 *
 *   GET /            index.html, `Cache-Control: no-cache` (it names the current hashed assets)
 *   GET /assets/*    Vite's content-hashed files: cached for a year, immutable
 *   GET /*           the SPA fallback: index.html for a browser's page navigation (a GET that
 *                    accepts text/html) to a path outside /v1, so a reload of
 *                    /recordings/… shows the page
 *
 * The fallback is a route constrained on "is this a page navigation?" (a find-my-way
 * constraint strategy), not a not-found handler: a request that is not one (anything under
 * /v1, a fetch that wants JSON) matches no route and is answered exactly as before, 401
 * without a credential and 404 JSON with one. When web/dist is missing the API still serves;
 * `/` and the fallback then say how to build the page.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";

export interface WebOptions {
  /** the built web app (web/dist); when it has no index.html the page says how to build it */
  root: string;
}

const PAGE_CONSTRAINT = "webPage";

/**
 * Is this a browser asking for a page of the app? GET or HEAD, accepting text/html, and a
 * path whose first segment (percent-decoded, any case) is not `v1`; a path that does not
 * decode or has dot segments is not one either.
 */
export function isPageNavigation(req: { method?: string | undefined; url?: string | undefined; headers: Record<string, string | string[] | undefined> }): boolean {
  if (req.method !== "GET" && req.method !== "HEAD") return false;
  const accept = req.headers.accept;
  if (typeof accept !== "string" || !/\btext\/html\b/i.test(accept)) return false;
  const rawPath = (req.url ?? "").split(/[?#]/, 1)[0]!;
  if (!rawPath.startsWith("/")) return false;
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPath);
  } catch {
    return false;
  }
  const segments = decoded.split(/[/\\]/).filter((s) => s !== "");
  if (segments.some((s) => s === "." || s === ".." || /[\u0000-\u001f;]/.test(s))) return false;
  return segments[0]?.toLowerCase() !== "v1";
}

/** The security headers of the page itself: it loads only its own files and talks only to this API. */
const PAGE_HEADERS: Record<string, string> = {
  "cache-control": "no-cache",
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

const NOT_BUILT = `<!doctype html><html lang="en"><meta charset="utf-8"><title>trackscribe</title>
<body style="font-family:system-ui;max-width:40rem;margin:3rem auto;padding:0 1rem">
<h1>trackscribe</h1>
<p>The web app is not built. Build it with <code>npm run build:web</code> (it writes <code>web/dist</code>), then reload this page.</p>
<p>The API works without it: it is under <code>/v1</code>, described at <a href="/docs">/docs</a>.</p>
</body></html>
`;

export async function webPlugin(app: FastifyInstance, opts: WebOptions): Promise<void> {
  // every route of this plugin is a public static file (registered in this context only),
  // and none is part of the API's description
  app.addHook("onRoute", (r) => {
    r.config = { ...(r.config ?? {}), public: true };
    r.schema = { ...(r.schema ?? {}), hide: true };
  });
  if (!app.hasConstraintStrategy(PAGE_CONSTRAINT)) {
    app.addConstraintStrategy({
      name: PAGE_CONSTRAINT,
      storage() {
        const handlers = new Map<string, unknown>();
        return {
          get: (value: string) => (handlers.get(value) ?? null) as never,
          set: (value: string, store: unknown) => void handlers.set(value, store),
        };
      },
      deriveConstraint: (req: FastifyRequest["raw"]) => (isPageNavigation(req) ? "yes" : "no"),
      mustMatchWhenDerived: false,
    });
  }

  const built = existsSync(path.join(opts.root, "index.html"));
  const sendPage = async (_req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    reply.headers(PAGE_HEADERS);
    if (!built) return reply.type("text/html; charset=utf-8").send(NOT_BUILT);
    return reply.type("text/html; charset=utf-8").sendFile("index.html", opts.root, { cacheControl: false });
  };

  if (built) {
    await app.register(fastifyStatic, {
      root: path.join(opts.root, "assets"),
      prefix: "/assets/",
      // the page's own files only: index.html is answered below with its own headers
      index: false,
      wildcard: true,
      dotfiles: "deny",
      cacheControl: true,
      maxAge: "365d",
      immutable: true,
    });
  } else {
    app.get("/assets/*", async (req, reply) => reply.code(404).send({ error: "not_found", message: "the web app is not built (npm run build:web)" }));
  }
  app.get("/", sendPage);
  app.get("/*", { constraints: { [PAGE_CONSTRAINT]: "yes" } }, sendPage);
}
