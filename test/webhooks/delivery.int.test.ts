/**
 * The outbox and its dispatcher against Postgres and real HTTP receivers on 127.0.0.1
 * (WEBHOOK_ALLOW_PRIVATE): a delivery enqueued with a recording's final status is sent
 * signed; 500 then 200 is retried and delivered; 500, 500, 200 is delivered once with three
 * attempts in the log; 400 and 410 are not retried; a slow receiver times
 * out (retried); a redirect is not followed; only 1 KB of an answer is kept; Retry-After is
 * honoured; a loopback receiver is refused without WEBHOOK_ALLOW_PRIVATE; two dispatchers on
 * one table send each delivery once; a finalize that runs twice announces one completion.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHmac, randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import { createWebhooksRepo, enqueueWebhookDeliveries, type WebhookEvent, type WebhooksRepo } from "../../adapters/postgres/webhooks.ts";
import { createRecordingsRepo } from "../../adapters/postgres/recordings-repo.ts";
import { createPgResultSink } from "../../adapters/postgres/sinks.ts";
import { createPool } from "../../adapters/postgres/pool.ts";
import { createWebhookDispatcher, type DispatcherOptions } from "../../server/webhooks/dispatcher.ts";
import { migratedSchema, type TestSchema } from "../bullmq/db.ts";

const log = pino({ level: "silent" });
const SECRET = "whsec_delivery_test_secret";
let db: TestSchema;
let repo: WebhooksRepo;
let receiver: http.Server;
let base = "";

interface Received {
  path: string;
  deliveryId: string;
  event: string;
  signatureOk: boolean;
  body: { id: string; event: string; created_at: string; data: Record<string, unknown> };
}
const received: Received[] = [];
const hits = new Map<string, number>();

function verify(header: string, raw: string): boolean {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
  if (!m) return false;
  return createHmac("sha256", SECRET).update(`${m[1]}.${raw}`).digest("hex") === m[2];
}

before(async () => {
  db = await migratedSchema("webhooks");
  repo = createWebhooksRepo(db.pool);
  receiver = http.createServer((req, res) => {
    let raw = "";
    req.on("data", (c) => (raw += c));
    req.on("end", () => {
      const path = req.url ?? "/";
      const n = (hits.get(path) ?? 0) + 1;
      hits.set(path, n);
      const body = JSON.parse(raw);
      received.push({
        path,
        deliveryId: String(req.headers["trackscribe-delivery"]),
        event: String(req.headers["trackscribe-event"]),
        signatureOk: verify(String(req.headers["trackscribe-signature"]), raw),
        body,
      });
      if (path === "/flaky") return res.writeHead(n === 1 ? 500 : 200).end(n === 1 ? "oops" : "ok");
      if (path === "/flaky2") return res.writeHead(n <= 2 ? 500 : 200).end(n <= 2 ? `oops ${n}` : "ok");
      if (path === "/bad") return res.writeHead(400).end("malformed");
      if (path === "/gone") return res.writeHead(410).end("gone for good");
      if (path === "/slow") return void setTimeout(() => res.writeHead(200).end("late"), 3000);
      if (path === "/redirect") return res.writeHead(302, { location: `${base}/ok` }).end();
      if (path === "/big") return res.writeHead(200).end("x".repeat(5000));
      if (path === "/busy") return res.writeHead(429, { "retry-after": "3600" }).end("slow down");
      if (path === "/count") return void setTimeout(() => res.writeHead(204).end(), 15);
      res.writeHead(200).end("ok");
    });
  });
  await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
});
after(async () => {
  receiver?.closeAllConnections();
  await new Promise((r) => receiver?.close(r));
  await db?.drop();
});

const dispatcherOpts = (over: Partial<DispatcherOptions> = {}): DispatcherOptions => ({
  repo,
  log,
  timeoutMs: 500,
  maxAttempts: 3,
  retryBaseMs: 1,
  retryMaxMs: 5,
  allowPrivate: true,
  ...over,
});

async function recording(owner: string | null = null): Promise<string> {
  const id = randomUUID();
  await db.pool.query(`INSERT INTO recordings (id, status, language, source, owner_key_id) VALUES ($1, 'processing', 'en', 'upload', $2)`, [id, owner]);
  return id;
}

async function hook(path: string, events: WebhookEvent[] = ["recording.completed", "recording.failed"], owner: string | null = null): Promise<string> {
  const w = await repo.create({ owner_key_id: owner, url: `${base}${path}`, events, secret: SECRET }, 1000);
  return w!.id;
}

async function deliver(recordingId: string, event: WebhookEvent = "recording.completed"): Promise<void> {
  await enqueueWebhookDeliveries(db.pool, { event, dedupeKey: `${event}:${recordingId}`, data: { recording_id: recordingId, status: event === "recording.completed" ? "completed" : "failed" } });
}

/** Run the dispatcher until the webhook's deliveries are no longer pending (or `rounds` rounds). */
async function settle(d: ReturnType<typeof createWebhookDispatcher>, webhookId: string, rounds = 50) {
  for (let i = 0; i < rounds; i++) {
    await d.runOnce();
    const page = await repo.deliveries(webhookId, { limit: 100 });
    assert.notEqual(page, "bad_cursor");
    if (page !== "bad_cursor" && page.items.every((x) => x.status !== "pending")) return page.items;
    await new Promise((r) => setTimeout(r, 10));
  }
  const page = await repo.deliveries(webhookId, { limit: 100 });
  return page === "bad_cursor" ? [] : page.items;
}

describe("one delivery per outcome", () => {
  test("delivered signed, with the documented headers and body", async () => {
    const w = await hook("/ok");
    const rec = await recording();
    await deliver(rec);
    const [d] = await settle(createWebhookDispatcher(dispatcherOpts({ publicUrl: "https://api.example.com" })), w);
    assert.equal(d!.status, "delivered");
    assert.equal(d!.attempts, 1);
    assert.equal(d!.attempt_log[0]!.status_code, 200);
    const got = received.filter((r) => r.path === "/ok" && r.body.data.recording_id === rec);
    assert.equal(got.length, 1);
    assert.equal(got[0]!.signatureOk, true);
    assert.equal(got[0]!.deliveryId, d!.id);
    assert.equal(got[0]!.body.id, d!.id);
    assert.equal(got[0]!.event, "recording.completed");
    assert.deepEqual(Object.keys(got[0]!.body).sort(), ["created_at", "data", "event", "id"]);
    assert.equal((got[0]!.body.data.links as Record<string, string>).transcript, `https://api.example.com/v1/recordings/${rec}/transcript`);
    await repo.delete(w);
  });

  test("500 then 200: retried and delivered on the second attempt", async () => {
    const w = await hook("/flaky");
    await deliver(await recording());
    const [d] = await settle(createWebhookDispatcher(dispatcherOpts()), w);
    assert.equal(d!.status, "delivered");
    assert.deepEqual(d!.attempt_log.map((a) => a.status_code), [500, 200]);
    assert.equal(d!.attempt_log[0]!.response_body, "oops");
    await repo.delete(w);
  });

  test("500, 500, 200: one successful delivery, three attempts in the log, the same delivery id each time", async () => {
    const w = await hook("/flaky2");
    const rec = await recording();
    await deliver(rec);
    const items = await settle(createWebhookDispatcher(dispatcherOpts({ maxAttempts: 5 })), w);
    assert.equal(items.length, 1, "one delivery");
    const d = items[0]!;
    assert.equal(d.status, "delivered");
    assert.equal(d.attempts, 3);
    assert.equal(d.last_status_code, 200);
    assert.deepEqual(
      d.attempt_log.map((a) => [a.attempt, a.status_code, a.response_body]),
      [
        [1, 500, "oops 1"],
        [2, 500, "oops 2"],
        [3, 200, "ok"],
      ],
    );
    const got = received.filter((r) => r.path === "/flaky2");
    assert.equal(got.length, 3, "three requests in all");
    assert.ok(got.every((r) => r.deliveryId === d.id && r.signatureOk && r.body.data.recording_id === rec), "each attempt is the same delivery, signed");
    // more rounds: a delivered delivery is not sent again
    await createWebhookDispatcher(dispatcherOpts({ maxAttempts: 5 })).runOnce();
    assert.equal(hits.get("/flaky2"), 3);
    await repo.delete(w);
  });

  test("400: failed at once, never retried", async () => {
    const w = await hook("/bad");
    await deliver(await recording());
    const items = await settle(createWebhookDispatcher(dispatcherOpts({ maxAttempts: 5 })), w);
    assert.equal(items.length, 1);
    const d = items[0]!;
    assert.equal(d.status, "failed");
    assert.equal(d.attempts, 1);
    assert.equal(d.last_status_code, 400);
    assert.deepEqual(d.attempt_log.map((a) => [a.status_code, a.response_body]), [[400, "malformed"]]);
    await createWebhookDispatcher(dispatcherOpts({ maxAttempts: 5 })).runOnce();
    assert.equal(hits.get("/bad"), 1, "one request in all");
    await repo.delete(w);
  });

  test("410: failed at once, never retried", async () => {
    const w = await hook("/gone");
    await deliver(await recording());
    const [d] = await settle(createWebhookDispatcher(dispatcherOpts({ maxAttempts: 5 })), w);
    assert.equal(d!.status, "failed");
    assert.equal(d!.attempts, 1);
    assert.equal(d!.last_status_code, 410);
    assert.equal(hits.get("/gone"), 1);
    await repo.delete(w);
  });

  test("a slow receiver times out; the timeout is retried until the attempts are used up", async () => {
    const w = await hook("/slow");
    await deliver(await recording());
    const [d] = await settle(createWebhookDispatcher(dispatcherOpts({ timeoutMs: 100, maxAttempts: 2 })), w);
    assert.equal(d!.status, "failed");
    assert.equal(d!.attempts, 2);
    assert.deepEqual(d!.attempt_log.map((a) => [a.status_code, a.error]), [
      [null, "timeout"],
      [null, "timeout"],
    ]);
    await repo.delete(w);
  });

  test("a redirect is not followed (and not retried)", async () => {
    const w = await hook("/redirect");
    const okBefore = hits.get("/ok") ?? 0;
    await deliver(await recording());
    const [d] = await settle(createWebhookDispatcher(dispatcherOpts()), w);
    assert.equal(d!.status, "failed");
    assert.equal(d!.last_status_code, 302);
    assert.equal(d!.last_error, "redirect_not_followed");
    assert.equal(hits.get("/ok") ?? 0, okBefore, "the redirect's target was never called");
    await repo.delete(w);
  });

  test("at most 1 KB of the receiver's answer is kept", async () => {
    const w = await hook("/big");
    await deliver(await recording());
    const [d] = await settle(createWebhookDispatcher(dispatcherOpts()), w);
    assert.equal(d!.status, "delivered");
    assert.equal(d!.attempt_log[0]!.response_body, "x".repeat(1024));
    await repo.delete(w);
  });

  test("429 with Retry-After: the next attempt is not before it", async () => {
    const w = await hook("/busy");
    await deliver(await recording());
    await createWebhookDispatcher(dispatcherOpts({ retryMaxMs: 24 * 3600_000 })).runOnce();
    const page = await repo.deliveries(w, { limit: 10 });
    assert.notEqual(page, "bad_cursor");
    const d = page !== "bad_cursor" ? page.items[0]! : undefined;
    assert.equal(d!.status, "pending");
    assert.equal(d!.last_status_code, 429);
    const waitS = (new Date(d!.next_attempt_at!).getTime() - new Date(d!.attempt_log[0]!.at).getTime()) / 1000;
    assert.ok(waitS >= 3590, `next attempt ${waitS} s after the 429`);
    await repo.delete(w);
  });

  test("without WEBHOOK_ALLOW_PRIVATE a loopback receiver is refused, not called", async () => {
    const w = await hook("/private");
    await deliver(await recording());
    const [d] = await settle(createWebhookDispatcher(dispatcherOpts({ allowPrivate: false })), w);
    assert.equal(d!.status, "failed");
    assert.equal(d!.last_error, "forbidden_destination");
    assert.equal(hits.get("/private"), undefined);
    await repo.delete(w);
  });
});

describe("the outbox", () => {
  test("two dispatchers (two pools) on one table send each delivery exactly once", async () => {
    const w = await hook("/count");
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) {
      const rec = await recording();
      ids.push(rec);
      await deliver(rec);
    }
    const pool2 = createPool({ DATABASE_URL: db.env.DATABASE_URL, DATABASE_SCHEMA: db.schema, DATABASE_POOL_MAX: 4 });
    try {
      const a = createWebhookDispatcher(dispatcherOpts({ batch: 4 }));
      const b = createWebhookDispatcher(dispatcherOpts({ repo: createWebhooksRepo(pool2), batch: 4 }));
      await Promise.all([a.runOnce(), b.runOnce(), a.runOnce(), b.runOnce()]);
      const items = await settle(a, w);
      assert.equal(items.length, 40);
      assert.ok(items.every((d) => d.status === "delivered" && d.attempts === 1));
    } finally {
      await pool2.end();
    }
    const got = received.filter((r) => r.path === "/count");
    assert.equal(got.length, 40, "40 requests for 40 deliveries");
    assert.equal(new Set(got.map((r) => r.deliveryId)).size, 40, "no delivery sent twice");
    assert.deepEqual(new Set(got.map((r) => r.body.data.recording_id)), new Set(ids));
    await repo.delete(w);
  });

  test("finalize's transaction writes one delivery per matching webhook, once however often it runs; markFailed writes one per failure; other owners' webhooks hear nothing", async () => {
    await db.pool.query(`INSERT INTO api_keys (id, name, prefix, key_hash) VALUES ('k1', 'alice', 'tsk_aaaaaaaa', $1), ('k2', 'bob', 'tsk_bbbbbbbb', $1)`, ["0".repeat(64)]);
    const mine = await hook("/ok", ["recording.completed", "recording.failed"], "k1");
    const theirs = await hook("/ok", ["recording.completed", "recording.failed"], "k2");
    const operators = await hook("/ok", ["recording.failed"], null);
    const rec = await recording("k1");
    const sink = createPgResultSink(db.pool, { log });
    const result = { duration: 3, participants: [{ speaker: 0, name: "Alice" }], words: [{ text: "hello", start: 0, end: 0.5, speaker: 0 }], topics: [], title: "Hello", short_summary: "", long_summary: "", action_items: [] };
    await sink.saveResult(rec, "conductor", result);
    await sink.saveResult(rec, "conductor", result); // a retried finalize
    await sink.saveResult(rec, "bullmq", result); // a shadow engine's result is no completion
    const rows = async (w: string) => (await db.pool.query(`SELECT event, data FROM webhook_deliveries WHERE webhook_id = $1 AND recording_id = $2`, [w, rec])).rows;
    assert.deepEqual((await rows(mine)).map((r) => [r.event, r.data.title, r.data.duration]), [["recording.completed", "Hello", 3]]);
    assert.deepEqual(await rows(theirs), []);
    assert.deepEqual(await rows(operators), [], "the operator's webhook listens to failures only");

    const failing = await recording("k1");
    const recordings = createRecordingsRepo(db.pool);
    assert.equal(await recordings.markFailed(failing, "[asr_unavailable] the speech server at http://10.0.0.5:9000 did not answer", "transcribe_track"), true);
    assert.equal(await recordings.markFailed(failing, "again", null), false, "already failed: no second status, no second delivery");
    const failed = (await db.pool.query(`SELECT webhook_id, event, data FROM webhook_deliveries WHERE recording_id = $1 ORDER BY webhook_id`, [failing])).rows;
    assert.deepEqual(failed.map((r) => r.webhook_id).sort(), [mine, operators].sort());
    for (const r of failed) {
      assert.equal(r.event, "recording.failed");
      assert.equal(r.data.error_code, "asr_unavailable");
      assert.doesNotMatch(r.data.error, /10\.0\.0\.5|http:/, "no internal address in the body");
    }
    // a status that did not commit announces nothing: the failure's transaction rolled back
    const rolledBack = await recording("k1");
    const client = await db.pool.connect();
    try {
      await client.query("BEGIN");
      await client.query(`UPDATE recordings SET status = 'failed' WHERE id = $1`, [rolledBack]);
      await enqueueWebhookDeliveries(client, { event: "recording.failed", dedupeKey: `x:${rolledBack}`, data: { recording_id: rolledBack, status: "failed" } });
      await client.query("ROLLBACK");
    } finally {
      client.release();
    }
    assert.equal((await db.pool.query(`SELECT count(*)::int AS n FROM webhook_deliveries WHERE recording_id = $1`, [rolledBack])).rows[0].n, 0);
  });
});
