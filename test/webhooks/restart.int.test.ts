/**
 * Webhook deliveries survive the API's death, with the API as its own process (`trackscribe
 * serve`, as test/api/crash-safe.int.test.ts spawns it) against Postgres, s3rver, the real
 * Conductor and a real receiver on 127.0.0.1 (WEBHOOK_ALLOW_PRIVATE=true):
 *   - the final status commits while no API process is alive (the workers' own code:
 *     createPgResultSink(pool).saveResult, which writes the outbox row in the status's
 *     transaction): a freshly started API delivers it, exactly once, signed;
 *   - the API is SIGKILLed while the receiver holds the delivery's request open: the restarted
 *     API sends it again once the attempt's lease (2 × WEBHOOK_TIMEOUT_SECONDS rounded up,
 *     + 30 s) has run out, with the same Trackscribe-Delivery id (at least once, as
 *     docs/api.md says: receivers deduplicate on it).
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { createHmac, timingSafeEqual } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { createPgResultSink } from "../../adapters/postgres/sinks.ts";
import type { Result } from "../../pipeline/contracts/index.ts";
import { multipartBody, spawnServe, startApiServices, wavBytes, type ApiServices, type ServeProcess } from "../api/harness.ts";

const TOKEN = "webhook-restart-token-0123";
const SECRET = "whsec_restart_test_secret_0001";
const auth = { authorization: `Bearer ${TOKEN}` };
/** WEBHOOK_TIMEOUT_SECONDS for the spawned APIs: the lease of an attempt is ceil(2) × 2 + 30 s */
const TIMEOUT_SECONDS = 2;
const LEASE_MS = (Math.ceil(TIMEOUT_SECONDS) * 2 + 30) * 1000;

let svc: ApiServices;
let receiver: http.Server;
let hookBase = "";
const children: ChildProcess[] = [];
const workflows: string[] = [];

interface Got {
  at: number;
  path: string;
  delivery: string;
  event: string;
  signatureOk: boolean;
  body: { id: string; event: string; data: { recording_id: string; status: string; title?: string } };
}
const got: Got[] = [];
/** called when a request to /hold arrives, before it is answered (the first one is never answered) */
let onHold: ((g: Got) => void) | undefined;

function signatureOk(header: string | undefined, raw: string): boolean {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header ?? "");
  if (!m) return false;
  const expected = createHmac("sha256", SECRET).update(`${m[1]}.${raw}`).digest();
  return timingSafeEqual(Buffer.from(m[2]!, "hex"), expected) && Math.abs(Date.now() / 1000 - Number(m[1])) < 300;
}

before(async () => {
  receiver = http.createServer((req, res) => {
    let raw = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => (raw += c));
    req.on("end", () => {
      const g: Got = {
        at: Date.now(),
        path: req.url ?? "",
        delivery: String(req.headers["trackscribe-delivery"]),
        event: String(req.headers["trackscribe-event"]),
        signatureOk: signatureOk(req.headers["trackscribe-signature"] as string | undefined, raw),
        body: JSON.parse(raw),
      };
      got.push(g);
      if (req.url === "/hold" && got.filter((x) => x.path === "/hold").length === 1) {
        onHold?.(g); // held open: the API is killed while it waits for this answer
        return;
      }
      res.writeHead(200).end("thanks");
    });
  });
  await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
  hookBase = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  svc = await startApiServices({ API_TOKEN: TOKEN, WEBHOOK_ALLOW_PRIVATE: "true" });
});
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  for (const wf of workflows) await svc?.conductor(`/workflow/${wf}?reason=test-cleanup`, { method: "DELETE" }).catch(() => undefined);
  await svc?.close();
  receiver?.closeAllConnections();
  await new Promise((r) => receiver?.close(r));
});

type Api = ServeProcess;

/** `trackscribe serve` with fast webhook timings; collected for cleanup. */
async function serve(): Promise<Api> {
  const api = await spawnServe(svc, TOKEN, {
    WEBHOOK_ALLOW_PRIVATE: "true",
    WEBHOOK_POLL_SECONDS: "0.2",
    WEBHOOK_TIMEOUT_SECONDS: String(TIMEOUT_SECONDS),
    WEBHOOK_RETRY_BASE_SECONDS: "0.2",
    WEBHOOK_RETRY_MAX_SECONDS: "1",
  });
  children.push(api.child);
  return api;
}

async function kill(api: Api): Promise<void> {
  api.child.kill("SIGKILL");
  assert.deepEqual(await api.exited, { code: null, signal: "SIGKILL" });
}

async function until<T>(what: string, f: () => T | undefined | Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function register(api: Api, p: string): Promise<string> {
  const res = await fetch(`${api.url}/v1/webhooks`, {
    method: "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({ url: `${hookBase}${p}`, events: ["recording.completed"], secret: SECRET }),
  });
  assert.equal(res.status, 201, await res.clone().text());
  return ((await res.json()) as { id: string }).id;
}

async function createRecording(api: Api): Promise<string> {
  const { body, contentType } = await multipartBody({ language: "en", tracks: [{ participant: "Solo", offset_seconds: 0 }] }, [{ name: "a.wav", data: wavBytes(1) }]);
  const res = await fetch(`${api.url}/v1/recordings`, { method: "POST", body, headers: { ...auth, "content-type": contentType } });
  assert.equal(res.status, 202, await res.clone().text());
  const { id } = (await res.json()) as { id: string };
  const wf = (await svc.pool.query(`SELECT workflow_id FROM recordings WHERE id = $1`, [id])).rows[0]?.workflow_id as string | null;
  if (wf) workflows.push(wf);
  return id;
}

/** The final status, committed the way finalize commits it (the outbox row in the same transaction). */
async function complete(id: string, title: string): Promise<void> {
  const result: Result = {
    duration: 1,
    participants: [{ speaker: 0, name: "Solo" }],
    words: [{ text: "hello", start: 0.1, end: 0.5, speaker: 0, confidence: 0.9 }],
    topics: [],
    title,
    short_summary: "",
    long_summary: "",
    action_items: [],
  };
  await createPgResultSink(svc.pool).saveResult(id, "conductor", result);
  const row = (await svc.pool.query(`SELECT status FROM recordings WHERE id = $1`, [id])).rows[0];
  assert.equal(row.status, "completed");
}

async function deliveryLog(api: Api, webhookId: string) {
  const res = await fetch(`${api.url}/v1/webhooks/${webhookId}/deliveries`, { headers: auth });
  assert.equal(res.status, 200);
  return ((await res.json()) as { items: { id: string; recording_id: string; status: string; attempts: number; attempt_log: { attempt: number; status_code: number | null }[] }[] }).items;
}

test("the final status commits while the API is dead (SIGKILL): the restarted API delivers it once, signed", async () => {
  const first = await serve();
  const hook = await register(first, "/ok");
  const id = await createRecording(first);
  await kill(first);

  // no API process is alive: the workers' finalize commits the status and its outbox row
  await complete(id, "Committed while the API was down");
  const pending = (await svc.pool.query(`SELECT status, attempts FROM webhook_deliveries WHERE webhook_id = $1 AND recording_id = $2`, [hook, id])).rows;
  assert.deepEqual(pending, [{ status: "pending", attempts: 0 }], "the outbox holds it, unsent");
  assert.equal(got.filter((g) => g.body.data.recording_id === id).length, 0);

  const second = await serve();
  try {
    const g = await until("the delivery after the restart", () => got.find((x) => x.path === "/ok" && x.body.data.recording_id === id), 30_000);
    assert.equal(g.signatureOk, true, "signed with the webhook's secret");
    assert.equal(g.event, "recording.completed");
    assert.equal(g.body.event, "recording.completed");
    assert.equal(g.delivery, g.body.id);
    assert.equal(g.body.data.status, "completed");
    assert.equal(g.body.data.title, "Committed while the API was down");
    // several more dispatcher rounds (every 0.2 s): still one request
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(got.filter((x) => x.body.data.recording_id === id).length, 1, "delivered exactly once");
    const log = (await deliveryLog(second, hook)).filter((d) => d.recording_id === id);
    assert.deepEqual(
      log.map((d) => [d.id, d.status, d.attempts, d.attempt_log.map((a) => a.status_code)]),
      [[g.delivery, "delivered", 1, [200]]],
    );
    assert.equal((await fetch(`${second.url}/v1/webhooks/${hook}`, { method: "DELETE", headers: auth })).status, 204);
  } finally {
    await kill(second);
  }
});

test("the API is killed while the receiver holds the delivery open: after the lease the restarted API sends it again, same Trackscribe-Delivery id", async () => {
  const first = await serve();
  let api: Api | undefined = first;
  try {
    const hook = await register(first, "/hold");
    const id = await createRecording(first);
    const held = new Promise<Got>((resolve) => (onHold = resolve));
    await complete(id, "Interrupted delivery");
    const g1 = await Promise.race([held, new Promise<never>((_, reject) => setTimeout(() => reject(new Error("no delivery reached the receiver")), 30_000).unref())]);
    assert.equal(g1.body.data.recording_id, id);
    await kill(first); // mid-attempt: the receiver has the request, the API never hears an answer
    api = undefined;
    const claimed = (await svc.pool.query(`SELECT status, attempts, claimed_until FROM webhook_deliveries WHERE id = $1`, [g1.delivery])).rows[0];
    assert.equal(claimed.status, "pending");
    assert.equal(claimed.attempts, 1);
    assert.ok(new Date(claimed.claimed_until).getTime() > Date.now(), "still leased to the dead process");

    api = await serve();
    const g2 = await until("the delivery sent again", () => got.find((x) => x.path === "/hold" && x !== g1), LEASE_MS + 30_000);
    assert.equal(g2.delivery, g1.delivery, "the same Trackscribe-Delivery id: receivers deduplicate on it");
    assert.equal(g2.body.id, g1.body.id);
    assert.deepEqual(g2.body.data, g1.body.data, "the same event data");
    assert.equal(g2.signatureOk, true);
    assert.ok(g2.at - g1.at >= LEASE_MS - 1000, `not before the lease ran out (${g2.at - g1.at} ms after the first request, lease ${LEASE_MS} ms)`);
    const log = await until(
      "the delivery log to show it delivered",
      async () => {
        const items = (await deliveryLog(api!, hook)).filter((d) => d.recording_id === id);
        return items.length === 1 && items[0]!.status === "delivered" ? items : undefined;
      },
      10_000,
    );
    // the killed attempt was never recorded (its process died before the answer); the second was
    assert.deepEqual(log.map((d) => [d.id, d.attempts, d.attempt_log.map((a) => [a.attempt, a.status_code])]), [[g1.delivery, 2, [[2, 200]]]]);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(got.filter((x) => x.path === "/hold").length, 2, "sent twice in all: once cut off, once answered");
  } finally {
    onHold = undefined;
    if (api) await kill(api);
  }
});
