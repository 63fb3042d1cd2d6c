/**
 * Found by `npm run chaos`: a client following a recording live missed the last step's
 * success. finalize stores the Result, which completes the recording; the worker reports
 * `finalize succeeded` only after the step returns, so the stream, seeing `completed`, had
 * already ended, and a later replay carried one event more than the live stream had shown.
 * Now a final recording's stream waits (bounded) while a step of it is still `started`.
 * Against a fresh Postgres schema, with the real stream over HTTP.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { appendEvent } from "../../adapters/postgres/events.ts";
import { createRecordingsRepo } from "../../adapters/postgres/recordings-repo.ts";
import type { ProgressEvent } from "../../pipeline/contracts/index.ts";
import { streamEvents } from "../../server/sse.ts";
import { startApiServices, type ApiServices } from "./harness.ts";

let svc: ApiServices;
let server: Server;
let url = "";
before(async () => {
  svc = await startApiServices();
  const repo = createRecordingsRepo(svc.pool);
  const shutdown = new AbortController();
  server = createServer((req, res) => {
    const id = req.url!.slice(1);
    void repo.get(id).then((rec) => streamEvents(res, rec!, 1, 0, { repo, reconcile: async (r) => r, heartbeatMs: 10_000, pollMs: 50, shutdown: shutdown.signal }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  await svc?.close();
});

const ev = (recording_id: string, step: ProgressEvent["step"], status: ProgressEvent["status"]): ProgressEvent => ({ recording_id, engine: "conductor", step, status, at: new Date().toISOString() });

async function follow(id: string): Promise<string[]> {
  const text = await (await fetch(`${url}/${id}`, { signal: AbortSignal.timeout(20_000) })).text();
  return text
    .split("\n\n")
    .filter((b) => b.includes("data: "))
    .map((b) => {
      const lines = b.split("\n");
      const data = JSON.parse(lines.find((l) => l.startsWith("data: "))!.slice(6)) as { step?: string; status?: string };
      return `${lines.find((l) => l.startsWith("event: "))?.slice(7)}:${data.step ?? ""}:${data.status}`;
    });
}

test("the live stream carries a step's success reported just after the recording completed, before its end", async () => {
  const id = "rec-sse-settle";
  await svc.pool.query(`INSERT INTO recordings (id, status, language, source) VALUES ($1, 'processing', 'en', 'upload')`, [id]);
  await appendEvent(svc.pool, ev(id, "finalize", "started"));
  const seen = follow(id);
  await new Promise((r) => setTimeout(r, 300));
  // the Result completes the recording; the worker's report of finalize comes a moment later
  await appendEvent(svc.pool, ev(id, "pipeline", "completed"));
  await new Promise((r) => setTimeout(r, 400));
  await appendEvent(svc.pool, ev(id, "finalize", "succeeded"));
  const live = await seen;
  assert.deepEqual(live.slice(-3), ["progress:pipeline:completed", "progress:finalize:succeeded", "end::completed"]);
  // a replay afterwards shows exactly what the live stream showed (after the opening status line, which is the current one)
  const replay = await follow(id);
  assert.equal(replay[0], "status::completed");
  assert.deepEqual(replay.slice(1), live.slice(1));
});

test("a final recording whose step never reports ends anyway (bounded wait)", async () => {
  const id = "rec-sse-settle-bounded";
  await svc.pool.query(`INSERT INTO recordings (id, status, language, source) VALUES ($1, 'processing', 'en', 'upload')`, [id]);
  await appendEvent(svc.pool, ev(id, "mixdown", "started"));
  await appendEvent(svc.pool, { ...ev(id, "pipeline", "failed"), message: "the worker died" });
  const live = await follow(id);
  assert.equal(live.at(-1), "end::failed");
});

test("a step that reports after its recording failed is not added after the final event; a retry's events are", async () => {
  const id = "rec-sse-late-after-failed";
  await svc.pool.query(`INSERT INTO recordings (id, status, language, source) VALUES ($1, 'processing', 'en', 'upload')`, [id]);
  await appendEvent(svc.pool, ev(id, "transcribe_track", "started"));
  await appendEvent(svc.pool, { ...ev(id, "mixdown", "failed"), message: "bad" });
  await appendEvent(svc.pool, { ...ev(id, "pipeline", "failed"), message: "mixdown failed" });
  // a sibling cancelled with its workflow finishes its last write afterwards (found by npm run chaos)
  assert.equal(await appendEvent(svc.pool, ev(id, "transcribe_track", "succeeded")), undefined, "dropped");
  const replay = await follow(id);
  assert.deepEqual(replay.slice(-2), ["progress:pipeline:failed", "end::failed"]);
  assert.ok(!replay.includes("progress:transcribe_track:succeeded"));
  const stored = await svc.pool.query(`SELECT step, status FROM events WHERE recording_id = $1 ORDER BY id`, [id]);
  assert.deepEqual(
    stored.rows.map((r: { step: string; status: string }) => `${r.step}:${r.status}`),
    ["transcribe_track:started", "mixdown:failed", "pipeline:failed"],
  );
  // a shadow engine's events are its own story: still written
  assert.ok(await appendEvent(svc.pool, { ...ev(id, "transcribe_track", "succeeded"), engine: "bullmq" }));
  // after a retry the recording runs again and its steps report as usual
  await svc.pool.query(`UPDATE recordings SET status = 'processing' WHERE id = $1`, [id]);
  assert.ok(await appendEvent(svc.pool, { ...ev(id, "pipeline", "retrying"), at: new Date(Date.now() + 1).toISOString() }));
  assert.ok(await appendEvent(svc.pool, { ...ev(id, "mixdown", "started"), at: new Date(Date.now() + 2).toISOString() }));
});

test("a late result of a step the recording already has (a paused worker waking after the retry) is not added after completion", async () => {
  const id = "rec-sse-late-after-completed";
  await svc.pool.query(`INSERT INTO recordings (id, status, language, source) VALUES ($1, 'processing', 'en', 'upload')`, [id]);
  const at = (ms: number) => new Date(Date.now() + ms).toISOString();
  await appendEvent(svc.pool, { ...ev(id, "transcribe_track", "started"), track_index: 0, at: at(1) });
  await appendEvent(svc.pool, { ...ev(id, "transcribe_track", "succeeded"), track_index: 0, at: at(2) });
  await appendEvent(svc.pool, { ...ev(id, "finalize", "started"), at: at(3) });
  await appendEvent(svc.pool, { ...ev(id, "pipeline", "completed"), at: at(4) });
  // found by npm run chaos: the paused worker's copy of transcribe_track reports 7 s after completion
  assert.equal(await appendEvent(svc.pool, { ...ev(id, "transcribe_track", "succeeded"), track_index: 0, worker_id: "vm/1/1", at: at(5) }), undefined, "dropped");
  // finalize was running at completion: its own success is still news
  assert.ok(await appendEvent(svc.pool, { ...ev(id, "finalize", "succeeded"), at: at(6) }));
  const stored = await svc.pool.query(`SELECT step, status FROM events WHERE recording_id = $1 ORDER BY id`, [id]);
  assert.deepEqual(
    stored.rows.map((r: { step: string; status: string }) => `${r.step}:${r.status}`),
    ["transcribe_track:started", "transcribe_track:succeeded", "finalize:started", "pipeline:completed", "finalize:succeeded"],
  );
  const replay = await follow(id);
  assert.equal(replay.filter((e) => e === "progress:transcribe_track:succeeded").length, 1);
  assert.equal(replay.at(-1), "end::completed");
});
