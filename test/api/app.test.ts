/**
 * `build()` + `app.inject` with no services running: health, metrics, auth, JSON errors, and
 * /readyz naming exactly the dependency that is down.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import pg from "pg";
import { pino } from "pino";
import { loadConfig } from "../../pipeline/config.ts";
import { build } from "../../server/app.ts";
import { createConductorGateway } from "../../adapters/conductor/gateway.ts";
import { createLocalStorage } from "../../adapters/storage/local.ts";

let dir: string;
let app: FastifyInstance;
let pool: pg.Pool;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "ts-app-"));
  const config = loadConfig({ API_TOKEN: "sekret-token-0123456", API_RECONCILE_SECONDS: "0" });
  const log = pino({ level: "silent" });
  // nothing listens on port 1: Postgres and Conductor are "down"
  pool = new pg.Pool({ connectionString: "postgres://postgres@127.0.0.1:1/none", connectionTimeoutMillis: 500 });
  const storage = createLocalStorage(path.join(dir, "storage"));
  const workflows = await createConductorGateway({ serverUrl: "http://127.0.0.1:1/api", log });
  app = await build({ config, log, pool, storage: { ...storage, ping: async () => undefined }, workflows });
});
after(async () => {
  await app?.close();
  await pool?.end();
  await rm(dir, { recursive: true, force: true });
});

test("/healthz answers without a token and without any dependency", async () => {
  const res = await app.inject({ method: "GET", url: "/healthz" });
  assert.equal(res.statusCode, 200);
  assert.deepEqual(res.json(), { status: "ok" });
});

test("/readyz names each dependency that is down, without the error text (it could carry internal addresses)", async () => {
  const res = await app.inject({ method: "GET", url: "/readyz" });
  assert.equal(res.statusCode, 503);
  const body = res.json();
  assert.equal(body.status, "not_ready");
  assert.equal(body.error, "not_ready");
  assert.match(body.message, /postgres, conductor are down/);
  assert.deepEqual(body.checks, { postgres: "down", s3: "up", conductor: "down" });
  assert.doesNotMatch(res.body, /127\.0\.0\.1|ECONNREFUSED|:1\b/);
});

test("every /v1 route wants the bearer token: 401 JSON with WWW-Authenticate", async () => {
  for (const [method, url] of [
    ["GET", "/v1/recordings"],
    ["GET", "/v1/recordings/abc"],
    ["GET", "/v1/recordings/abc/events"],
    ["GET", "/v1/recordings/abc/transcript?format=vtt"],
    ["GET", "/v1/recordings/abc/audio"],
    ["POST", "/v1/recordings"],
    ["POST", "/v1/recordings/abc/retry"],
    ["DELETE", "/v1/recordings/abc"],
  ] as const) {
    for (const authorization of [undefined, "Bearer wrong-token", "sekret-token-0123456"]) {
      const res = await app.inject({ method, url, headers: authorization ? { authorization } : {} });
      assert.equal(res.statusCode, 401, `${method} ${url} with ${authorization}`);
      assert.equal(res.json().error, "unauthorized");
      assert.equal(typeof res.json().message, "string");
      assert.match(String(res.headers["www-authenticate"]), /^Bearer/);
    }
  }
});

test("a refused upload is not read: the connection is closed after the 401", async () => {
  const res = await app.inject({ method: "POST", url: "/v1/recordings", headers: { "content-type": "multipart/form-data; boundary=x" }, payload: Buffer.alloc(10_000) });
  assert.equal(res.statusCode, 401);
  assert.equal(res.headers.connection, "close");
});

test("with the token, a database outage is a 503 JSON error naming Postgres, not a hang", async () => {
  const res = await app.inject({ method: "GET", url: "/v1/recordings/abc", headers: { authorization: "Bearer sekret-token-0123456" } });
  assert.equal(res.statusCode, 503);
  assert.equal(res.json().error, "postgres_unavailable");
  assert.doesNotMatch(res.json().message, /127\.0\.0\.1|ECONNREFUSED|timeout exceeded/);
});

test("a plain x-request-id is kept for correlation; anything else is replaced", async () => {
  const kept = await app.inject({ method: "GET", url: "/healthz", headers: { "x-request-id": "req-42.a:b" } });
  assert.equal(kept.headers["x-request-id"], "req-42.a:b");
  for (const sent of ["<script>", "a".repeat(65), "id with spaces", "x\u00e9"]) {
    const res = await app.inject({ method: "GET", url: "/healthz", headers: { "x-request-id": sent } });
    assert.notEqual(res.headers["x-request-id"], sent);
    assert.match(String(res.headers["x-request-id"]), /^[0-9a-f-]{36}$/);
  }
});

test("unknown routes are 401 without a credential (deny by default) and 404 JSON with one; /metrics is Prometheus text", async () => {
  const anon = await app.inject({ method: "GET", url: "/nope" });
  assert.equal(anon.statusCode, 401);
  const res = await app.inject({ method: "GET", url: "/nope", headers: { authorization: "Bearer sekret-token-0123456" } });
  assert.equal(res.statusCode, 404);
  assert.equal(res.json().error, "not_found");
  const m = await app.inject({ method: "GET", url: "/metrics" });
  assert.equal(m.statusCode, 200);
  assert.match(String(m.headers["content-type"]), /^text\/plain/);
  assert.match(m.body, /trackscribe_http_request_duration_seconds_count\{method="GET",route="\/healthz",status="200"\} \d+/);
  assert.match(m.body, /trackscribe_api_process_resident_memory_bytes/);
});

test("/openapi.json (public) lists every route with its parameters and response schemas; /docs renders it", async () => {
  const res = await app.inject({ method: "GET", url: "/openapi.json" });
  assert.equal(res.statusCode, 200);
  const spec = res.json() as { openapi: string; paths: Record<string, Record<string, { parameters?: { name: string; in: string }[]; responses: Record<string, { content?: Record<string, { schema: unknown }> }>; security?: unknown[] }>> };
  assert.match(spec.openapi, /^3\.1/);
  // the web app's static files (server/plugins/web.ts) are not part of the API's description
  const webFiles = ["/", "/*", "/assets/*"];
  const routes = app.routeTable.filter((r) => r.method !== "HEAD" && !r.url.startsWith("/docs") && r.url !== "/openapi.json" && !webFiles.includes(r.url));
  for (const u of webFiles) assert.ok(!(u in spec.paths), `${u} is not in /openapi.json`);
  assert.ok(routes.length >= 12, `routes: ${routes.length}`);
  for (const r of routes) {
    const p = r.url.replace(/:([A-Za-z_]+)/g, "{$1}");
    const op = spec.paths[p]?.[r.method.toLowerCase()];
    assert.ok(op, `${r.method} ${r.url} is in /openapi.json`);
    const statuses = Object.keys(op.responses);
    assert.ok(statuses.some((s) => /^2/.test(s)), `${r.method} ${r.url}: a success response is described (${statuses})`);
    if (!r.public) {
      assert.ok(statuses.includes("401"), `${r.method} ${r.url}: 401 is described`);
      const err = op.responses["401"]!.content!["application/json"]!.schema as { properties: Record<string, unknown>; required: string[] };
      assert.deepEqual(Object.keys(err.properties).sort(), ["error", "message"]);
    }
    if (r.url.includes(":id")) assert.ok(op.parameters?.some((x) => x.name === "id" && x.in === "path"), `${r.method} ${r.url}: path parameter id`);
  }
  // the Result's shape comes from the pipeline's contract
  const view = spec.paths["/v1/recordings/{id}"]!.get!.responses["200"]!.content!["application/json"]!.schema as { properties: Record<string, { properties?: Record<string, unknown> }> };
  assert.ok(view.properties.result?.properties?.words, "the Result (with words) is described");
  const list = spec.paths["/v1/recordings"]!.get!;
  assert.deepEqual(list.parameters!.filter((x) => x.in === "query").map((x) => x.name).sort(), ["cursor", "limit", "status"]);

  const docs = await app.inject({ method: "GET", url: "/docs" });
  assert.ok([200, 302].includes(docs.statusCode), `/docs: ${docs.statusCode}`);
  const page = await app.inject({ method: "GET", url: "/docs/" });
  assert.equal(page.statusCode, 200);
  assert.match(page.body, /swagger/i);
});

test("a query that breaks its schema is a 400 JSON error naming the field", async () => {
  const res = await app.inject({ method: "GET", url: "/v1/recordings?limit=1000", headers: { authorization: "Bearer sekret-token-0123456" } });
  assert.equal(res.statusCode, 400);
  assert.equal(res.json().error, "bad_request");
  assert.match(res.json().message, /querystring/);
  assert.match(res.json().message, /limit/);
});
