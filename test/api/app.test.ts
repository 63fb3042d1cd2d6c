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
import { createConductorGateway } from "../../server/conductor.ts";
import { createLocalStorage } from "../../server/storage/local.ts";

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
