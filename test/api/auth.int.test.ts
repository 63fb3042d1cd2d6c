/**
 * Deny by default, against the real server over HTTP with Postgres, s3rver and Conductor:
 *   - every registered route (read from the app's route table, so a new route is covered
 *     without touching this file): no credential → 401, a wrong one → 401, another owner's
 *     key → 404 for a recording (never 403), its own key → neither;
 *   - request targets crafted to slip past a check on the URL string (%76, double slashes,
 *     dot segments, absolute-form, a trailing ?) never reach a protected route without one;
 *   - keys made with the CLI: only the hash is stored, `list` never shows the key, a revoked
 *     key is refused from the next request on;
 *   - `serve` refuses to listen beyond loopback with no credentials, unless AUTH_DISABLED.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyInstance } from "fastify";
import { build } from "../../server/app.ts";
import { createConductorGateway, type WorkflowGateway } from "../../adapters/conductor/gateway.ts";
import { createShadowStore } from "../../server/shadow/store.ts";
import { multipartBody, startApiServices, wavBytes, type ApiServices } from "./harness.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const cli = path.join(root, "bin", "trackscribe.mjs");
const TOKEN = "operator-token-0123456789";

let svc: ApiServices;
let app: FastifyInstance;
let workflows: WorkflowGateway;
let port: number;
let keyA: string;
let keyB: string;
let recA: string;
let hookA: string;
let deliveryA: string;
const started: string[] = [];

function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], {
      cwd: root,
      env: { ...process.env, NODE_ENV: "test", LOG_LEVEL: "warn", DATABASE_URL: svc.config.DATABASE_URL!, DATABASE_SCHEMA: svc.config.DATABASE_SCHEMA!, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * One request with the exact request line given (no client normalizes it); resolves at the
 * response head (an SSE stream is not read to its end) with the status and what body came.
 */
function rawRequest(requestLine: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    let data = "";
    const timer = setTimeout(() => finish(), 3000);
    const finish = (): void => {
      clearTimeout(timer);
      socket.destroy();
      const m = /^HTTP\/1\.1 (\d{3})/.exec(data);
      if (!m) return reject(new Error(`no HTTP answer to '${requestLine}': ${JSON.stringify(data.slice(0, 200))}`));
      resolve({ status: Number(m[1]), body: data.slice(data.indexOf("\r\n\r\n") + 4) });
    };
    socket.on("connect", () => {
      const head = [`${requestLine} HTTP/1.1`, `host: 127.0.0.1:${port}`, "connection: close", ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
      socket.write(`${head.join("\r\n")}\r\n\r\n`);
    });
    socket.on("data", (d) => {
      data += d.toString("latin1");
      // a head and either a complete body or an event stream's first bytes are enough
      const end = data.indexOf("\r\n\r\n");
      if (end < 0) return;
      const len = /\r\ncontent-length: (\d+)/i.exec(data.slice(0, end));
      if (/text\/event-stream/i.test(data.slice(0, end)) || (len && data.length >= end + 4 + Number(len[1]))) finish();
    });
    socket.on("end", finish);
    socket.on("error", (err) => {
      if (data) finish();
      else reject(err);
    });
  });
}

const bearer = (k: string): Record<string, string> => ({ authorization: `Bearer ${k}` });

async function createRecording(key: string): Promise<string> {
  const { body, contentType } = await multipartBody({ language: "en", tracks: [{ participant: "Alice", offset_seconds: 0 }] }, [{ name: "a.wav", data: wavBytes(0.3) }]);
  const res = await app.inject({ method: "POST", url: "/v1/recordings", payload: body, headers: { ...bearer(key), "content-type": contentType } });
  assert.equal(res.statusCode, 202, res.body);
  const id = res.json().id as string;
  started.push(id);
  return id;
}

before(async () => {
  svc = await startApiServices({ API_TOKEN: TOKEN, HOST: "0.0.0.0" });
  workflows = await createConductorGateway({ serverUrl: svc.conductorUrl, log: svc.log });
  app = await build({ config: svc.config, log: svc.log, pool: svc.pool, storage: svc.storage, workflows });
  await app.listen({ port: 0, host: "127.0.0.1" });
  port = (app.server.address() as net.AddressInfo).port;
  const a = await runCli(["keys", "create", "--name", "alice", "--json"]);
  assert.equal(a.code, 0, a.stderr);
  keyA = JSON.parse(a.stdout).key;
  const b = await runCli(["keys", "create", "--name", "bob", "--json"]);
  assert.equal(b.code, 0, b.stderr);
  keyB = JSON.parse(b.stdout).key;
  recA = await createRecording(keyA);
  // a shadow comparison under way for it, so its shadow route has something to show its owner
  await createShadowStore(svc.pool).begin(recA);
  // a webhook of A's with one delivery, for the webhook routes' :id and :delivery_id
  const hook = await app.inject({ method: "POST", url: "/v1/webhooks", headers: bearer(keyA), payload: { url: "https://hooks.example.com/a", events: ["recording.completed"] } });
  assert.equal(hook.statusCode, 201, hook.body);
  hookA = hook.json().id;
  deliveryA = "00000000-0000-4000-8000-000000000001";
  await svc.pool.query(
    `INSERT INTO webhook_deliveries (id, webhook_id, event, recording_id, data, dedupe_key, status, next_attempt_at) VALUES ($1, $2, 'recording.completed', $3, '{}', 'x', 'failed', NULL)`,
    [deliveryA, hookA, recA],
  );
});
after(async () => {
  for (const id of started) {
    const wf = (await svc.pool.query(`SELECT workflow_id FROM recordings WHERE id = $1`, [id]).catch(() => ({ rows: [] }))).rows[0]?.workflow_id;
    if (wf) await workflows.remove(wf, "test over").catch(() => undefined);
  }
  await app?.close();
  await svc?.close();
});

describe("every registered route", () => {
  test("no credential or a wrong one: 401; another owner's key: 404; its own key: neither", async () => {
    const routes = app.routeTable.filter((r) => r.method !== "HEAD");
    // the table is what the app registered: it holds the recording routes, shadow and health
    for (const expected of ["GET /v1/recordings", "POST /v1/recordings", "GET /v1/recordings/:id", "GET /v1/recordings/:id/events", "GET /v1/recordings/:id/transcript", "GET /v1/recordings/:id/audio", "POST /v1/recordings/:id/retry", "DELETE /v1/recordings/:id", "GET /v1/recordings/:id/shadow", "GET /v1/shadow/summary", "GET /healthz", "POST /v1/webhooks", "GET /v1/webhooks/:id", "DELETE /v1/webhooks/:id", "GET /v1/webhooks/:id/deliveries", "POST /v1/webhooks/:id/deliveries/:delivery_id/redeliver", "PATCH /v1/recordings/:id/participants", "GET /v1/search"]) {
      assert.ok(routes.some((r) => `${r.method} ${r.url}` === expected), `${expected} is in the route table`);
    }
    // public routes are exactly these (the probes, the API's description and the web app's
    // static files: index.html, hashed assets, the SPA fallback); everything else is protected
    const publicRoutes = routes.filter((r) => r.public).map((r) => r.url);
    assert.deepEqual([...new Set(publicRoutes.filter((u) => !u.startsWith("/docs")))].sort(), ["/", "/*", "/assets/*", "/healthz", "/metrics", "/openapi.json", "/readyz"]);
    assert.ok(publicRoutes.some((u) => u.startsWith("/docs")), "the rendered docs");
    // DELETE last: it removes the recording the others read
    const ordered = [...routes.filter((r) => r.method !== "DELETE"), ...routes.filter((r) => r.method === "DELETE")];
    for (const r of ordered) {
      // path parameters: A's recording, A's webhook and its delivery
      const target = r.url.replace(":delivery_id", deliveryA).replace(":id", r.url.startsWith("/v1/webhooks/") ? hookA : recA);
      const line = `${r.method} ${target}`;
      const none = await rawRequest(line, { "content-length": "0" });
      const wrong = await rawRequest(line, { ...bearer("tsk_" + "x".repeat(43)), "content-length": "0" });
      const wrongToken = await rawRequest(line, { ...bearer(TOKEN + "x"), "content-length": "0" });
      if (r.public) {
        // the SPA fallback answers a page navigation only (it is constrained on Accept: text/html)
        const page = await rawRequest(line, { accept: "text/html", "content-length": "0" });
        assert.notEqual(page.status, 401, `${line} is public`);
        assert.ok(!page.body.includes(recA), `${line}: no recording data in a public answer`);
        continue;
      }
      for (const [what, res] of [["none", none], ["unknown key", wrong], ["wrong token", wrongToken]] as const) {
        assert.equal(res.status, 401, `${line} with ${what}: ${res.body}`);
        assert.equal(JSON.parse(res.body).error, "unauthorized");
      }
      const other = await rawRequest(line, { ...bearer(keyB), "content-length": "0" });
      const own = await rawRequest(line, { ...bearer(keyA), "content-length": "0" });
      assert.ok(![401, 404].includes(own.status), `${line} with its owner's key: ${own.status} ${own.body}`);
      if (r.url.includes(":id")) {
        assert.equal(other.status, 404, `${line} with another owner's key: ${other.status} ${other.body}`);
        assert.equal(JSON.parse(other.body).error, "not_found");
      } else {
        assert.notEqual(other.status, 401, `${line} with another key`);
        assert.ok(!other.body.includes(recA), `${line}: another owner's recording is not listed`);
      }
    }
    // the DELETE with the owner's key went through
    assert.equal((await svc.pool.query(`SELECT 1 FROM recordings WHERE id = $1`, [recA])).rowCount, 0);
  });
});

describe("request targets crafted to dodge a check on the URL string", () => {
  test("none reaches a protected route without a credential; absolute-form and '*' are 400", async () => {
    const rec = await createRecording(keyA);
    const crafted = [
      "/%761/recordings",
      "/v%31/recordings",
      `/%76%31/recordings/${rec}`,
      "//v1/recordings",
      "/v1//recordings",
      "/x/../v1/recordings",
      "/v1/./recordings",
      "/v1/recordings/../recordings",
      `/v1/recordings/${rec}/%2e%2e/${rec}`,
      "/v1/recordings?",
      `/v1/recordings/${rec}?`,
      "/v1/recordings/?",
      "/V1/recordings",
      "/v1/recordings;x",
      "/v1/recordings%3F",
      `/%76%31/recordings/${rec}/transcript?format=json`,
    ];
    for (const target of crafted) {
      const res = await rawRequest(`GET ${target}`);
      assert.ok([401, 404, 400].includes(res.status), `GET ${target} without a credential: ${res.status} ${res.body.slice(0, 200)}`);
      assert.ok(!res.body.includes(rec), `GET ${target}: nothing of the recording shows`);
      // asking for a page does not make a /v1 path the web app's public fallback
      const page = await rawRequest(`GET ${target}`, { accept: "text/html" });
      assert.ok([401, 404, 400].includes(page.status), `GET ${target} as a page without a credential: ${page.status} ${page.body.slice(0, 200)}`);
      assert.ok(!page.body.includes(rec), `GET ${target} as a page: nothing of the recording shows`);
    }
    for (const target of ["http://x/v1/recordings", `http://127.0.0.1:${port}/v1/recordings/${rec}`, "https://x/v1/recordings?"]) {
      for (const headers of [{}, bearer(keyA)]) {
        const res = await rawRequest(`GET ${target}`, headers);
        assert.equal(res.status, 400, `absolute-form ${target}: ${res.body}`);
        assert.equal(JSON.parse(res.body).error, "bad_request_target");
      }
    }
    const star = await rawRequest("OPTIONS *");
    assert.equal(star.status, 400);
    // with its owner's key the encoded form is the same route, still scoped to the owner
    const own = await rawRequest(`GET /%76%31/recordings/${rec}`, bearer(keyA));
    assert.equal(own.status, 200);
    const other = await rawRequest(`GET /%76%31/recordings/${rec}`, bearer(keyB));
    assert.equal(other.status, 404);
  });
});

describe("owners", () => {
  test("the list shows a key its own recordings, the operator all; idempotency keys are scoped per owner", async () => {
    const recB = await createRecording(keyB);
    const listed = async (k: string): Promise<string[]> => (await app.inject({ method: "GET", url: "/v1/recordings?limit=100", headers: bearer(k) })).json().items.map((i: { id: string }) => i.id);
    const asB = await listed(keyB);
    assert.ok(asB.includes(recB));
    assert.ok(asB.every((id) => id === recB), `B sees only its own: ${asB}`);
    const asOperator = await listed(TOKEN);
    assert.ok(asOperator.includes(recB) && asOperator.some((id) => id !== recB));
    // the operator sees (and could manage) B's recording
    assert.equal((await app.inject({ method: "GET", url: `/v1/recordings/${recB}`, headers: bearer(TOKEN) })).statusCode, 200);

    // the same Idempotency-Key text from two owners: two recordings; again from one owner: a replay
    const { body, contentType } = await multipartBody({ language: "en", tracks: [{ participant: "Alice", offset_seconds: 0 }] }, [{ name: "a.wav", data: wavBytes(0.3) }]);
    const post = (k: string) =>
      app.inject({ method: "POST", url: "/v1/recordings", payload: body, headers: { ...bearer(k), "content-type": contentType, "idempotency-key": "meeting-1" } });
    const a1 = await post(keyA);
    const b1 = await post(keyB);
    const a2 = await post(keyA);
    assert.equal(a1.statusCode, 202);
    assert.equal(b1.statusCode, 202);
    started.push(a1.json().id, b1.json().id);
    assert.notEqual(a1.json().id, b1.json().id);
    assert.equal(a2.json().id, a1.json().id);
    assert.equal(a2.headers["idempotent-replayed"], "true");
    const owners = await svc.pool.query(`SELECT r.id, k.name FROM recordings r JOIN api_keys k ON k.id = r.owner_key_id WHERE r.id = ANY($1)`, [[a1.json().id, b1.json().id]]);
    assert.deepEqual(Object.fromEntries(owners.rows.map((r) => [r.id, r.name])), { [a1.json().id]: "alice", [b1.json().id]: "bob" });
  });

  test("a key may reference bucket objects only under incoming/<its name>/; the operator anywhere under incoming/", async () => {
    await svc.storage.put("incoming/alice/a.wav", wavBytes(0.3));
    await svc.storage.put("incoming/bob/b.wav", wavBytes(0.3));
    const post = (k: string, key: string) => app.inject({ method: "POST", url: "/v1/recordings", headers: bearer(k), payload: { tracks: [{ key, participant: "A" }] } });
    const before = Number((await svc.pool.query(`SELECT count(*) FROM recordings`)).rows[0].count);
    for (const [k, key] of [[keyA, "incoming/bob/b.wav"], [keyA, "incoming/a.wav"], [keyA, "recordings/x/tracks/0.wav"], [keyB, "incoming/alice/a.wav"], [TOKEN, "elsewhere/a.wav"]] as const) {
      const res = await post(k, key);
      assert.equal(res.statusCode, 403, `${key}: ${res.body}`);
      assert.equal(res.json().error, "key_not_allowed");
    }
    assert.equal(Number((await svc.pool.query(`SELECT count(*) FROM recordings`)).rows[0].count), before, "nothing written for a refused reference");
    const own = await post(keyA, "incoming/alice/a.wav");
    assert.equal(own.statusCode, 202, own.body);
    const op = await post(TOKEN, "incoming/bob/b.wav");
    assert.equal(op.statusCode, 202, op.body);
    started.push(own.json().id, op.json().id);
    await svc.storage.deletePrefix("incoming/");
  });

  test("the shadow summary spans every recording: the operator's, not a key's", async () => {
    assert.equal((await app.inject({ method: "GET", url: "/v1/shadow/summary", headers: bearer(keyA) })).statusCode, 403);
    assert.equal((await app.inject({ method: "GET", url: "/v1/shadow/summary", headers: bearer(TOKEN) })).statusCode, 200);
  });
});

describe("keys through the CLI", () => {
  test("only the hash is stored; list never shows a key; a revoked key is refused at once", async () => {
    const made = await runCli(["keys", "create", "--name", "carol"]);
    assert.equal(made.code, 0, made.stderr);
    const key = made.stdout.trim();
    assert.match(key, /^tsk_[A-Za-z0-9_-]{43}$/);
    assert.match(made.stderr, /shown this once/);
    const { rows } = await svc.pool.query(`SELECT * FROM api_keys WHERE name = 'carol'`);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].key_hash, createHash("sha256").update(key).digest("hex"));
    assert.equal(rows[0].prefix, key.slice(0, 12));
    assert.ok(!JSON.stringify(rows[0]).includes(key), "the key itself is in no column");

    assert.equal((await app.inject({ method: "GET", url: "/v1/recordings", headers: bearer(key) })).statusCode, 200);
    const used = await svc.pool.query(`SELECT last_used_at FROM api_keys WHERE name = 'carol'`);
    for (let i = 0; i < 50 && !used.rows[0].last_used_at; i++) {
      await new Promise((r) => setTimeout(r, 20));
      used.rows = (await svc.pool.query(`SELECT last_used_at FROM api_keys WHERE name = 'carol'`)).rows;
    }
    assert.ok(used.rows[0].last_used_at, "last use recorded");

    const list = await runCli(["keys", "list"]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^NAME\s+PREFIX\s+CREATED\s+LAST USED\s+REVOKED/m);
    assert.match(list.stdout, new RegExp(`^carol\\s+${key.slice(0, 12).replace(/[-]/g, "\\-")}\\s+\\d{4}-`, "m"));
    assert.ok(!list.stdout.includes(key) && !list.stdout.includes(keyA));

    const dup = await runCli(["keys", "create", "--name", "carol"]);
    assert.notEqual(dup.code, 0);
    assert.match(dup.stderr, /already named 'carol'/);
    const bad = await runCli(["keys", "create", "--name", "no spaces please"]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /key name/);

    const revoked = await runCli(["keys", "revoke", "carol"]);
    assert.equal(revoked.code, 0, revoked.stderr);
    const after = await app.inject({ method: "GET", url: "/v1/recordings", headers: bearer(key) });
    assert.equal(after.statusCode, 401);
    const again = await runCli(["keys", "revoke", "carol"]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /no live key named 'carol'/);
    const listed = JSON.parse((await runCli(["keys", "list", "--json"])).stdout) as { name: string; revoked_at: string | null }[];
    assert.ok(listed.find((k) => k.name === "carol")?.revoked_at);
  });
});

describe("serve fails closed", () => {
  async function serve(env: Record<string, string>): Promise<{ code: number | null; stderr: string; child: ChildProcess; listening: boolean }> {
    const child = spawn(process.execPath, [cli, "serve"], {
      cwd: root,
      env: {
        ...process.env,
        NODE_ENV: "test",
        LOG_LEVEL: "info",
        DATABASE_URL: svc.config.DATABASE_URL!,
        // a schema of its own: no keys in it
        DATABASE_SCHEMA: `${svc.config.DATABASE_SCHEMA}_empty`,
        STORAGE_DRIVER: "local",
        LOCAL_STORAGE_DIR: path.join(svc.config.WORK_DIR, "serve-storage"),
        WORK_DIR: path.join(svc.config.WORK_DIR, "serve"),
        CONDUCTOR_SERVER_URL: svc.conductorUrl,
        PORT: "0",
        API_RECONCILE_SECONDS: "0",
        STORAGE_SWEEP_SECONDS: "0",
        API_TOKEN: "",
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout!.on("data", (d) => (out += d));
    child.stderr!.on("data", (d) => (out += d));
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve({ code: null, stderr: out, child, listening: false }), 60_000);
      child.stdout!.on("data", () => {
        if (/API listening/.test(out)) {
          clearTimeout(timer);
          resolve({ code: null, stderr: out, child, listening: true });
        }
      });
      child.on("close", (code) => {
        clearTimeout(timer);
        resolve({ code, stderr: out, child, listening: false });
      });
    });
  }

  test("HOST=0.0.0.0 with no token and no key: exits non-zero saying what to do; AUTH_DISABLED=true starts with a warning", async () => {
    try {
      const refused = await serve({ HOST: "0.0.0.0" });
      assert.equal(refused.listening, false);
      assert.equal(refused.code, 78, refused.stderr);
      assert.match(refused.stderr, /refusing to listen on 0\.0\.0\.0 with no credentials/);
      assert.match(refused.stderr, /API_TOKEN/);
      assert.match(refused.stderr, /trackscribe keys create/);

      const open = await serve({ HOST: "0.0.0.0", AUTH_DISABLED: "true" });
      try {
        assert.equal(open.listening, true, open.stderr);
        assert.match(open.stderr, /AUTH_DISABLED=true/);
      } finally {
        open.child.kill("SIGTERM");
        await new Promise((r) => open.child.once("close", r));
      }

      // on loopback it starts (only this machine can connect)
      const local = await serve({ HOST: "127.0.0.1" });
      try {
        assert.equal(local.listening, true, local.stderr);
      } finally {
        local.child.kill("SIGTERM");
        await new Promise((r) => local.child.once("close", r));
      }
    } finally {
      await svc.pool.query(`DROP SCHEMA IF EXISTS ${svc.config.DATABASE_SCHEMA}_empty CASCADE`);
    }
  });
});
