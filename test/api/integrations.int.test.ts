/**
 * Integrations over real HTTP (`startServer`) with Postgres, s3rver, the real Conductor and
 * its worker host in this process, and a real webhook receiver on 127.0.0.1
 * (WEBHOOK_ALLOW_PRIVATE=true):
 *   - webhook routes: bounded input, secret shown once, another owner's webhook is 404;
 *   - the fixture meeting through the whole pipeline: its completion arrives once, signed;
 *     the delivery log shows it; a redelivery arrives with a new id;
 *   - search finds its words for its owner only; speakers renamed (two merged) show in the
 *     Result, the transcripts, search, the SSE replay and a webhook; Markdown and the zip;
 *     another key's rename, search and both exports of it find nothing (404 / no hits);
 *   - a workflow that dies without a worker noticing is failed by the API's reconcile path,
 *     and that failure is announced too.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync, openAsBlob } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Result } from "../../pipeline/contracts/index.ts";
import { createApiKeys } from "../../server/auth/keys.ts";
import { archiveEntries } from "../../server/export.ts";
import { startServer, type RunningServer } from "../../server/server.ts";
import { followEvents, multipartBody, startApiServices, startInProcessWorkers, wavBytes, type ApiServices } from "./harness.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const TOKEN = "integrations-token-0123";
const SECRET = "whsec_integration_test_0001";
let svc: ApiServices;
let server: RunningServer;
let receiver: http.Server;
let hookUrl = "";
let keyA = "";
let keyB = "";
let stopRuntime: (() => Promise<unknown>) | undefined;
const A = () => ({ authorization: `Bearer ${keyA}` });
const B = () => ({ authorization: `Bearer ${keyB}` });

interface Got {
  path: string;
  event: string;
  delivery: string;
  signatureOk: boolean;
  body: { id: string; event: string; created_at: string; data: Record<string, unknown> };
}
const got: Got[] = [];

before(async () => {
  receiver = http.createServer((req, res) => {
    let raw = "";
    req.on("data", (c) => (raw += c));
    req.on("end", () => {
      const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(req.headers["trackscribe-signature"]));
      const secret = req.url === "/b" ? "whsec_bob_receiver_000001" : SECRET;
      got.push({
        path: req.url ?? "",
        event: String(req.headers["trackscribe-event"]),
        delivery: String(req.headers["trackscribe-delivery"]),
        signatureOk: !!m && createHmac("sha256", secret).update(`${m[1]}.${raw}`).digest("hex") === m[2],
        body: JSON.parse(raw),
      });
      res.writeHead(200).end("thanks");
    });
  });
  await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
  hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;

  svc = await startApiServices({
    API_TOKEN: TOKEN,
    API_RECONCILE_SECONDS: "1",
    WEBHOOK_ALLOW_PRIVATE: "true",
    WEBHOOK_POLL_SECONDS: "0.2",
    WEBHOOK_MAX_PER_OWNER: "3",
    PUBLIC_URL: "https://meetings.example.com",
    MAX_TRACK_BYTES: String(10 * 1024 * 1024),
  });
  server = await startServer(svc.config, { log: svc.log });
  const keys = createApiKeys(svc.pool);
  keyA = (await keys.create("alice")).key;
  keyB = (await keys.create("bob")).key;

  stopRuntime = await startInProcessWorkers(svc);
});
after(async () => {
  await stopRuntime?.();
  await server?.close();
  await svc?.close();
  receiver?.closeAllConnections();
  await new Promise((r) => receiver?.close(r));
});

const api = (p: string, init: RequestInit & { headers?: Record<string, string> } = {}) => fetch(`${server.url}${p}`, init);
const json = (body: unknown, headers: Record<string, string>) => ({ method: "POST", body: JSON.stringify(body), headers: { ...headers, "content-type": "application/json" } });

async function waitFor<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, timeoutMs = 240_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe("webhook routes", () => {
  test("bounded input, the secret shown once, a key sees only its own webhooks, a cap per owner", async () => {
    const count = async () => Number((await svc.pool.query(`SELECT count(*) FROM webhooks`)).rows[0].count);
    const before = await count();
    for (const [body, what] of [
      [{ url: "ftp://x.example/", events: ["recording.completed"] }, "scheme"],
      [{ url: `https://x.example/${"a".repeat(2100)}`, events: ["recording.completed"] }, "url length"],
      [{ url: "https://x.example/", events: [] }, "no events"],
      [{ url: "https://x.example/", events: ["recording.exploded"] }, "unknown event"],
      [{ url: "https://x.example/", events: ["recording.completed"], secret: "short" }, "short secret"],
      [{ url: "https://x.example/", events: ["recording.completed"], extra: 1 }, "unknown field"],
      [{ url: "https://u:p@x.example/", events: ["recording.completed"] }, "credentials"],
    ] as const) {
      const res = await api("/v1/webhooks", json(body, A()));
      assert.equal(res.status, 400, `${what}: ${res.status}`);
      const e = (await res.json()) as { error: string; message: string };
      assert.ok(e.error && e.message, what);
    }
    assert.equal(await count(), before, "nothing written for refused input");

    const made = await api("/v1/webhooks", json({ url: "https://hooks.example.com/x", events: ["recording.failed"] }, A()));
    assert.equal(made.status, 201);
    const w = (await made.json()) as { id: string; secret: string; url: string; events: string[] };
    assert.match(w.secret, /^whsec_[A-Za-z0-9_-]{43}$/);
    assert.equal(made.headers.get("location"), `/v1/webhooks/${w.id}`);
    const shown = await (await api(`/v1/webhooks/${w.id}`, { headers: A() })).json();
    assert.deepEqual(Object.keys(shown as object).sort(), ["created_at", "events", "id", "url"], "the secret is never shown again");
    for (const [method, p] of [
      ["GET", `/v1/webhooks/${w.id}`],
      ["GET", `/v1/webhooks/${w.id}/deliveries`],
      ["DELETE", `/v1/webhooks/${w.id}`],
      ["POST", `/v1/webhooks/${w.id}/deliveries/00000000-0000-4000-8000-000000000000/redeliver`],
    ] as const) {
      const res = await api(p, { method, headers: B() });
      assert.equal(res.status, 404, `${method} ${p} as another key`);
    }
    assert.equal(((await (await api("/v1/webhooks", { headers: B() })).json()) as { items: unknown[] }).items.length, 0);
    assert.ok(((await (await api("/v1/webhooks", { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { items: { id: string }[] }).items.some((x) => x.id === w.id), "the operator sees all");
    // the cap: 3 per owner
    const extra: string[] = [];
    for (let i = 0; i < 2; i++) extra.push(((await (await api("/v1/webhooks", json({ url: `https://hooks.example.com/${i}`, events: ["recording.failed"] }, A()))).json()) as { id: string }).id);
    const over = await api("/v1/webhooks", json({ url: "https://hooks.example.com/9", events: ["recording.failed"] }, A()));
    assert.equal(over.status, 409);
    assert.equal(((await over.json()) as { error: string }).error, "too_many_webhooks");
    for (const id of [w.id, ...extra]) assert.equal((await api(`/v1/webhooks/${id}`, { method: "DELETE", headers: A() })).status, 204);
    assert.equal((await api(`/v1/webhooks/${w.id}`, { headers: A() })).status, 404);
  });
});

const haveWorkers = existsSync(path.join(root, "workers", "conductor", "runtime.ts"));

describe("a meeting through the whole pipeline", { skip: haveWorkers ? false : "no Conductor worker host in this build" }, () => {
  test("completion announced once and signed; search, speaker renames, Markdown and the archive", async () => {
    const mine = (await (await api("/v1/webhooks", json({ url: `${hookUrl}/a`, events: ["recording.completed", "recording.participants_updated"], secret: SECRET }, A()))).json()) as { id: string };
    const theirs = (await (await api("/v1/webhooks", json({ url: `${hookUrl}/b`, events: ["recording.completed"], secret: "whsec_bob_receiver_000001" }, B()))).json()) as { id: string };

    const { buildFixtures, defaultFixtureDir } = await import("../../scripts/build-fixtures.ts");
    const dir = path.dirname((await buildFixtures(defaultFixtureDir())).manifestPath);
    const manifest = JSON.parse(await readFile(path.join(dir, "manifest.json"), "utf8")) as { language: string; tracks: { path: string; participant: string; offset_seconds: number }[] };
    const form = new FormData();
    form.append("manifest", JSON.stringify({ language: manifest.language, tracks: manifest.tracks.map(({ participant, offset_seconds }) => ({ participant, offset_seconds })) }));
    for (const t of manifest.tracks) form.append("track", await openAsBlob(path.join(dir, t.path)), t.path);
    const up = await api("/v1/recordings", { method: "POST", body: form, headers: A() });
    assert.equal(up.status, 202, await up.clone().text());
    const { id } = (await up.json()) as { id: string };

    const completed = await waitFor("the completion webhook", () => got.find((g) => g.event === "recording.completed" && g.body.data.recording_id === id));
    const rec = (await (await api(`/v1/recordings/${id}`, { headers: A() })).json()) as { status: string; result: Result };
    assert.equal(rec.status, "completed");
    const result = Result.parse(rec.result);
    assert.equal(completed.path, "/a");
    assert.equal(completed.signatureOk, true);
    assert.equal(completed.delivery, completed.body.id);
    assert.equal(completed.body.event, "recording.completed");
    assert.deepEqual(
      { ...completed.body.data, links: undefined },
      { recording_id: id, status: "completed", title: result.title, duration: result.duration, links: undefined },
      "no transcript inline",
    );
    assert.equal((completed.body.data.links as Record<string, string>).transcript, `https://meetings.example.com/v1/recordings/${id}/transcript`);
    // more dispatcher rounds pass: still once; B's webhook heard nothing of A's recording
    const deliveries = await waitFor("the delivery log", async () => {
      const page = (await (await api(`/v1/webhooks/${mine.id}/deliveries`, { headers: A() })).json()) as { items: { id: string; status: string; attempts: number; attempt_log: { status_code: number; response_body: string }[] }[] };
      return page.items.length && page.items.every((d) => d.status === "delivered") ? page.items : undefined;
    });
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(got.filter((g) => g.event === "recording.completed" && g.body.data.recording_id === id).length, 1, "delivered once");
    assert.equal(got.filter((g) => g.path === "/b").length, 0);
    assert.deepEqual(deliveries.map((d) => [d.status, d.attempts, d.attempt_log[0]!.status_code, d.attempt_log[0]!.response_body]), [["delivered", 1, 200, "thanks"]]);

    const again = await api(`/v1/webhooks/${mine.id}/deliveries/${deliveries[0]!.id}/redeliver`, { method: "POST", headers: A() });
    assert.equal(again.status, 202);
    const redelivery = (await again.json()) as { id: string; redelivery_of: string };
    assert.equal(redelivery.redelivery_of, deliveries[0]!.id);
    const second = await waitFor("the redelivery", () => got.find((g) => g.delivery === redelivery.id));
    assert.equal(second.signatureOk, true);
    assert.deepEqual(second.body.data, completed.body.data);

    // ---- search: the owner finds it, another key does not
    const word = result.words.map((w) => w.text).find((t) => /^[a-z]{5,}$/.test(t))!;
    const search = async (q: string, h: Record<string, string>) =>
      (await (await api(`/v1/search?q=${encodeURIComponent(q)}&limit=100`, { headers: h })).json()) as { items: { recording_id: string; title: string; speaker: number | null; name: string | null; start: number | null; text: string }[] };
    const hits = await search(word, A());
    const ours = hits.items.filter((h) => h.recording_id === id);
    assert.ok(ours.length > 0, `'${word}' is found`);
    for (const h of ours) {
      assert.match(h.text.toLowerCase(), new RegExp(`\\b${word}\\b`));
      assert.equal(h.title, result.title);
      if (h.speaker !== null) assert.equal(h.name, result.participants.find((p) => p.speaker === h.speaker)!.name);
    }
    assert.equal((await search(word, B())).items.length, 0, "another key's search shows nothing of it");
    // page by page (limit 2, following next_cursor) gives the same hits in the same order
    const paged: unknown[] = [];
    for (let cursor: string | null = null, n = 0; n < 200; n++) {
      const page = (await (await api(`/v1/search?q=${encodeURIComponent(word)}&limit=2${cursor ? `&cursor=${cursor}` : ""}`, { headers: A() })).json()) as { items: unknown[]; next_cursor: string | null };
      paged.push(...page.items);
      cursor = page.next_cursor;
      if (!cursor) break;
    }
    assert.deepEqual(paged, hits.items);
    assert.equal((await api(`/v1/search?q=x&cursor=bm9wZQ`, { headers: A() })).status, 400);
    assert.equal((await api(`/v1/search?q=${"a".repeat(501)}`, { headers: A() })).status, 400);
    assert.equal((await api(`/v1/search?q=x&limit=1000`, { headers: A() })).status, 400);

    // ---- speakers: Bob's track renamed to Alice's name: one voice for display
    const patch = (body: unknown, h = A()) => api(`/v1/recordings/${id}/participants`, { method: "PATCH", body: JSON.stringify(body), headers: { ...h, "content-type": "application/json" } });
    for (const [body, code] of [
      [{ participants: [{ speaker: 9, name: "X" }] }, "unknown_speaker"],
      [{ participants: [{ speaker: 0, name: "x".repeat(201) }] }, "bad_request"],
      [{ participants: [{ speaker: 0, name: "A" }, { speaker: 0, name: "B" }] }, "bad_request"],
      [{ participants: [] }, "bad_request"],
      [{ participants: [{ speaker: 0, name: "<b>" }] }, "bad_request"],
    ] as const) {
      const res = await patch(body);
      assert.equal(res.status, 400, JSON.stringify(body).slice(0, 80));
      assert.equal(((await res.json()) as { error: string }).error, code);
    }
    assert.equal((await patch({ participants: [{ speaker: 0, name: "Z" }] }, B())).status, 404);
    const ok = await patch({ participants: [{ speaker: 0, name: "Alicia Jones" }, { speaker: 1, name: "Alicia Jones" }] });
    assert.equal(ok.status, 200);
    const after = (await (await api(`/v1/recordings/${id}`, { headers: A() })).json()) as { result: Result };
    assert.deepEqual(after.result.participants.map((p) => p.name), ["Alicia Jones", "Alicia Jones", result.participants[2]!.name]);
    assert.deepEqual(after.result.words.map((w) => w.speaker), result.words.map((w) => w.speaker), "words keep their track index");
    const tj = (await (await api(`/v1/recordings/${id}/transcript`, { headers: A() })).json()) as { segments: { speaker: number; name: string }[] };
    assert.ok(tj.segments.every((s) => s.speaker !== 1), "speaker 1's turns are shown under speaker 0");
    assert.ok(tj.segments.some((s) => s.name === "Alicia Jones"));
    const text = await (await api(`/v1/recordings/${id}/transcript?format=text`, { headers: A() })).text();
    assert.doesNotMatch(text, /\] (Alice|Bob): /);
    assert.match(text, /\] Alicia Jones: /);
    const renamedHits = (await search(word, A())).items.filter((h) => h.recording_id === id && h.speaker !== null && h.speaker <= 1);
    for (const h of renamedHits) assert.equal(h.name, "Alicia Jones", "search shows the new names");
    const events = await followEvents(server.url, id, A(), 30_000);
    const renamed = events.filter((e) => e.event === "participants");
    assert.equal(renamed.length, 1);
    assert.deepEqual((renamed[0]!.data.participants as { name: string }[]).map((p) => p.name), after.result.participants.map((p) => p.name));
    const hookRename = await waitFor("the participants webhook", () => got.find((g) => g.event === "recording.participants_updated" && g.body.data.recording_id === id));
    assert.equal(hookRename.signatureOk, true);

    // ---- exports
    const md = await api(`/v1/recordings/${id}/transcript?format=md`, { headers: A() });
    assert.match(md.headers.get("content-type") ?? "", /^text\/markdown/);
    const mdText = await md.text();
    assert.ok(mdText.startsWith(`# `), mdText.slice(0, 80));
    assert.match(mdText, /\n## Transcript\n\n\*\*Alicia Jones\*\* \[\d\d:\d\d\.\d\]: /);
    if (result.short_summary) assert.match(mdText, /\n## Summary\n/);
    if (result.topics.length) assert.match(mdText, /\n## Topics\n/);

    // another key: neither export of A's recording exists for it (404 with the error body, no bytes of it)
    for (const format of ["md", "zip"] as const) {
      const theirs = await api(`/v1/recordings/${id}/transcript?format=${format}`, { headers: B() });
      assert.equal(theirs.status, 404, `format=${format} as another key`);
      const e = (await theirs.json()) as { error: string; message: string };
      assert.equal(e.error, "not_found");
      assert.ok(e.message, "a message");
    }
    assert.equal((await api(`/v1/recordings/${id}/transcript?format=md`, { headers: A() })).status, 200, "still there for its owner");

    const zip = await api(`/v1/recordings/${id}/transcript?format=zip`, { headers: A() });
    assert.equal(zip.status, 200);
    assert.equal(zip.headers.get("content-type"), "application/zip");
    assert.equal(zip.headers.get("content-length"), null, "streamed, not built first");
    const tmp = await mkdtemp(path.join(os.tmpdir(), "ts-zip-"));
    try {
      const file = path.join(tmp, "r.zip");
      await writeFile(file, Buffer.from(await zip.arrayBuffer()));
      const listing = execFileSync("zipinfo", ["-1", file], { encoding: "utf8" }).trim().split("\n").sort();
      const tracks = manifest.tracks.map((t, i) => ({ track_index: i, participant: t.participant, filename: t.path, format: null }));
      assert.deepEqual(listing, archiveEntries(after.result, tracks as never, true).sort());
      assert.equal(listing.filter((n) => n.startsWith("audio/tracks/")).length, manifest.tracks.length);
      execFileSync("unzip", ["-tq", file]); // every entry's CRC checks
      const inZip = JSON.parse(execFileSync("unzip", ["-p", file, "result.json"], { encoding: "utf8" })) as Result;
      assert.deepEqual(inZip.participants, after.result.participants);
      const mp3 = execFileSync("unzip", ["-p", file, "audio/mixdown.mp3"], { maxBuffer: 64 * 1024 * 1024 });
      assert.deepEqual(mp3, Buffer.from(await (await api(`/v1/recordings/${id}/audio`, { headers: A() })).arrayBuffer()));
      const track0 = execFileSync("unzip", ["-p", file, listing.find((n) => n.startsWith("audio/tracks/0-"))!], { maxBuffer: 64 * 1024 * 1024 });
      assert.deepEqual(track0, await readFile(path.join(dir, manifest.tracks[0]!.path)));
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
    await api(`/v1/webhooks/${theirs.id}`, { method: "DELETE", headers: B() });
  });

  test("a workflow terminated behind the workers' back: the API's reconcile path fails it and announces it once", async () => {
    const hook = (await (await api("/v1/webhooks", json({ url: `${hookUrl}/a`, events: ["recording.failed"], secret: SECRET }, A()))).json()) as { id: string };
    const { body, contentType } = await multipartBody({ language: "en", tracks: [{ participant: "Solo", offset_seconds: 0 }] }, [{ name: "a.wav", data: wavBytes(30) }]);
    const up = await api("/v1/recordings", { method: "POST", body, headers: { ...A(), "content-type": contentType } });
    assert.equal(up.status, 202);
    const { id } = (await up.json()) as { id: string };
    const wf = (await svc.pool.query(`SELECT workflow_id FROM recordings WHERE id = $1`, [id])).rows[0].workflow_id as string;
    const term = await svc.conductor(`/workflow/${wf}?reason=${encodeURIComponent("operator stopped it")}`, { method: "DELETE" });
    assert.ok(term.ok, `terminate: ${term.status}`);
    const failed = await waitFor("the failure webhook", () => got.find((g) => g.event === "recording.failed" && g.body.data.recording_id === id), 60_000);
    assert.equal(failed.signatureOk, true);
    assert.equal(failed.body.data.status, "failed");
    assert.equal(typeof failed.body.data.error, "string");
    const status = ((await (await api(`/v1/recordings/${id}`, { headers: A() })).json()) as { status: string }).status;
    assert.equal(status, "failed");
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(got.filter((g) => g.event === "recording.failed" && g.body.data.recording_id === id).length, 1);
    await api(`/v1/webhooks/${hook.id}`, { method: "DELETE", headers: A() });
  });
});
