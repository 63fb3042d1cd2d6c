/**
 * The web app's files beside the API (server/plugins/web.ts), with no services: `/` and
 * the SPA fallback answer index.html with no-cache and the page's CSP, hashed assets are
 * immutable for a year, and nothing changes for the API: /v1 paths (however spelled) and
 * requests that do not want a page still get 401 without a credential and 404 JSON with
 * one. Without a build, `/` says how to make one and the API still serves.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import pg from "pg";
import { pino } from "pino";
import { loadConfig } from "../../pipeline/config.ts";
import { build } from "../../server/app.ts";
import { isPageNavigation } from "../../server/plugins/web.ts";
import { createConductorGateway } from "../../adapters/conductor/gateway.ts";
import { createLocalStorage } from "../../adapters/storage/local.ts";

const TOKEN = "sekret-token-0123456";
const INDEX = `<!doctype html><title>trackscribe</title><script type="module" src="/assets/index-abc123.js"></script>`;
const html = { accept: "text/html,application/xhtml+xml,*/*;q=0.8" };
let dir: string;
const pools: pg.Pool[] = [];
const apps: FastifyInstance[] = [];

async function appWith(webRoot: string): Promise<FastifyInstance> {
  const log = pino({ level: "silent" });
  const pool = new pg.Pool({ connectionString: "postgres://postgres@127.0.0.1:1/none", connectionTimeoutMillis: 200 });
  pools.push(pool);
  const workflows = await createConductorGateway({ serverUrl: "http://127.0.0.1:1/api", log });
  const config = loadConfig({ API_TOKEN: TOKEN, API_RECONCILE_SECONDS: "0", STORAGE_SWEEP_SECONDS: "0" });
  const app = await build({ config, log, pool, storage: { ...createLocalStorage(path.join(dir, "storage")), ping: async () => undefined }, workflows, webRoot });
  apps.push(app);
  return app;
}

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "ts-web-"));
  await mkdir(path.join(dir, "dist", "assets"), { recursive: true });
  await writeFile(path.join(dir, "dist", "index.html"), INDEX);
  await writeFile(path.join(dir, "dist", "assets", "index-abc123.js"), "console.log('page')");
});
after(async () => {
  for (const a of apps) await a.close();
  for (const p of pools) await p.end();
  await rm(dir, { recursive: true, force: true });
});

describe("with a build", () => {
  let app: FastifyInstance;
  before(async () => {
    app = await appWith(path.join(dir, "dist"));
  });

  test("/ is index.html, never cached, with the page's CSP; public", async () => {
    const res = await app.inject({ method: "GET", url: "/" });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers["content-type"]), /^text\/html/);
    assert.equal(res.body, INDEX);
    assert.equal(res.headers["cache-control"], "no-cache");
    assert.match(String(res.headers["content-security-policy"]), /default-src 'self'/);
    assert.match(String(res.headers["content-security-policy"]), /media-src 'self' blob:/);
    assert.equal(res.headers["x-content-type-options"], "nosniff");
  });

  test("hashed assets are cached for a year, immutable; a missing one is 404 JSON", async () => {
    const res = await app.inject({ method: "GET", url: "/assets/index-abc123.js" });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers["content-type"]), /javascript/);
    assert.match(String(res.headers["cache-control"]), /max-age=31536000/);
    assert.match(String(res.headers["cache-control"]), /immutable/);
    const gone = await app.inject({ method: "GET", url: "/assets/nope.js" });
    assert.equal(gone.statusCode, 404);
    assert.equal(gone.json().error, "not_found");
    const outside = await app.inject({ method: "GET", url: "/assets/../index.html" });
    assert.notEqual(outside.body, INDEX);
  });

  test("SPA fallback: a page navigation outside /v1 gets index.html", async () => {
    for (const url of ["/recordings/6f1c", "/new", "/recordings/6f1c/shadow?x=1", "/shadow"]) {
      const res = await app.inject({ method: "GET", url, headers: html });
      assert.equal(res.statusCode, 200, url);
      assert.equal(res.body, INDEX, url);
      assert.equal(res.headers["cache-control"], "no-cache", url);
    }
  });

  test("the API is unchanged: not a page navigation, or under /v1 however spelled → 401 without a credential, 404 JSON with one", async () => {
    const cases: [string, Record<string, string>][] = [
      ["/recordings/6f1c", {}],
      ["/recordings/6f1c", { accept: "application/json" }],
      ["/v1/nope", html],
      ["/V1/nope", html],
      ["/%76%31/nope", html],
      ["/v1", html],
    ];
    for (const [url, headers] of cases) {
      const none = await app.inject({ method: "GET", url, headers });
      assert.equal(none.statusCode, 401, `${url} ${JSON.stringify(headers)}: ${none.body}`);
      assert.equal(none.json().error, "unauthorized");
      const own = await app.inject({ method: "GET", url, headers: { ...headers, authorization: `Bearer ${TOKEN}` } });
      assert.equal(own.statusCode, 404, `${url} with the token: ${own.body}`);
      assert.equal(own.json().error, "not_found");
    }
    // a protected route answers as before, whatever it accepts
    const list = await app.inject({ method: "GET", url: "/v1/recordings", headers: html });
    assert.equal(list.statusCode, 401);
    const post = await app.inject({ method: "POST", url: "/recordings/x", headers: html });
    assert.equal(post.statusCode, 401);
  });

  test("the web routes are public in the route table, and absent from /openapi.json", async () => {
    const pub = app.routeTable.filter((r) => r.public && r.method === "GET").map((r) => r.url);
    for (const u of ["/", "/*", "/assets/*"]) assert.ok(pub.includes(u), `${u} is public`);
    const spec = (await app.inject({ method: "GET", url: "/openapi.json" })).json() as { paths: Record<string, unknown> };
    assert.deepEqual(Object.keys(spec.paths).filter((p) => !p.startsWith("/v1/") && !["/healthz", "/readyz", "/metrics"].includes(p)), []);
  });
});

test("without a build: / says how to build the page, and the API still serves", async () => {
  const app = await appWith(path.join(dir, "no-dist"));
  const page = await app.inject({ method: "GET", url: "/" });
  assert.equal(page.statusCode, 200);
  assert.match(page.body, /npm run build:web/);
  const fallback = await app.inject({ method: "GET", url: "/recordings/x", headers: html });
  assert.match(fallback.body, /npm run build:web/);
  assert.equal((await app.inject({ method: "GET", url: "/assets/index-abc123.js" })).statusCode, 404);
  assert.equal((await app.inject({ method: "GET", url: "/healthz" })).statusCode, 200);
  assert.equal((await app.inject({ method: "GET", url: "/v1/recordings" })).statusCode, 401);
});

test("isPageNavigation: GET/HEAD, wants HTML, not under /v1", () => {
  const req = (method: string, url: string, accept?: string) => ({ method, url, headers: accept ? { accept } : {} });
  assert.equal(isPageNavigation(req("GET", "/recordings/1", "text/html")), true);
  assert.equal(isPageNavigation(req("HEAD", "/", "text/html")), true);
  assert.equal(isPageNavigation(req("POST", "/recordings/1", "text/html")), false);
  assert.equal(isPageNavigation(req("GET", "/recordings/1", "application/json")), false);
  assert.equal(isPageNavigation(req("GET", "/recordings/1")), false);
  for (const url of ["/v1", "/v1/", "/v1/x", "/V1/x", "//v1/x", "/%76%31/x", "/%2e%2e/v1", "/a/%zz", "/a/../v1"]) {
    assert.equal(isPageNavigation(req("GET", url, "text/html")), false, url);
  }
});
