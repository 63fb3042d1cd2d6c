/**
 * What a client reads when an upstream fails, against the real stack (API over HTTP,
 * Postgres, s3rver, Conductor, the Conductor worker host in this process) and a chat server
 * on loopback that answers every request with HTTP 500 and a body full of internals: the
 * recording fails with a stable code and a human message, and neither the HTTP answers nor
 * the SSE stream carry the upstream's address or body. And a workflow started by hand with a
 * recording id that would leave its storage prefix fails as invalid input, writing nothing.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { openAsBlob } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { createConductorTaskEventHandler, createPgResultSink } from "../../adapters/postgres/sinks.ts";
import { startServer, type RunningServer } from "../../server/server.ts";
import { followEvents as followStream, startApiServices, type ApiServices } from "./harness.ts";

const TOKEN = "redaction-token-0123456789";
const auth = { authorization: `Bearer ${TOKEN}` };
const SECRET = "UPSTREAM-SECRET-BODY db-password=hunter2 at internal-db.prod:5432";
let upstream: http.Server;
let upstreamUrl = "";
let requests = 0;
let svc: ApiServices;
let server: RunningServer;
let stopRuntime: (() => Promise<unknown>) | undefined;

before(async () => {
  upstream = http.createServer((req, res) => {
    requests++;
    req.resume();
    res.writeHead(500, { "content-type": "text/plain" }).end(SECRET);
  });
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  svc = await startApiServices({ API_TOKEN: TOKEN, TEXT_ENGINE: "openai", LLM_URL: upstreamUrl, LLM_MAX_ATTEMPTS: "1", API_RECONCILE_SECONDS: "1", SSE_HEARTBEAT_SECONDS: "1" });
  server = await startServer(svc.config, { log: svc.log });
  const { startConductorRuntime } = await import("../../workers/conductor/runtime.ts");
  const { createStepPorts } = await import("../../workers/step-ports.ts");
  const config = { ...svc.config, WORKER_CONCURRENCY: 2, RECONCILER_ENABLED: false, HEAVY_STEPS_IN_CHILD: false };
  const noRetries = { retryCount: 0 };
  const runtime = await startConductorRuntime(config, {
    storage: svc.storage,
    stepDeps: createStepPorts(config, { storage: svc.storage, log: svc.log, results: createPgResultSink(svc.pool, { log: svc.log }) }),
    log: svc.log,
    onTaskEvent: createConductorTaskEventHandler(svc.pool, { log: svc.log }),
    // the chat server fails every time: no retries, so the test does not wait for them
    taskOverrides: { detect_topics: noRetries, generate_title: noRetries, generate_summary: noRetries, extract_action_items: noRetries, prepare_track: noRetries },
    reconciler: false,
  });
  stopRuntime = () => runtime.stop(10_000);
});
after(async () => {
  await stopRuntime?.();
  await server?.close();
  await svc?.close();
  await new Promise((r) => upstream?.close(r));
});

test("an upstream chat server's 500 reaches the client as a code and a message, never its address or body", async () => {
  const { buildFixtures, defaultFixtureDir } = await import("../../scripts/build-fixtures.ts");
  const dir = path.dirname((await buildFixtures(defaultFixtureDir())).manifestPath);
  const manifest = JSON.parse(await readFile(path.join(dir, "manifest.json"), "utf8")) as { tracks: { path: string; participant: string; offset_seconds: number }[] };
  const first = manifest.tracks[0]!;
  const form = new FormData();
  form.append("manifest", JSON.stringify({ language: "en", tracks: [{ participant: first.participant, offset_seconds: 0 }] }));
  form.append("track", await openAsBlob(path.join(dir, first.path)), first.path);
  const up = await fetch(`${server.url}/v1/recordings`, { method: "POST", body: form, headers: auth });
  assert.equal(up.status, 202, await up.clone().text());
  const { id } = (await up.json()) as { id: string };

  const events = await followStream(server.url, id, auth, 300_000);
  const end = events.at(-1)!;
  assert.equal(end.event, "end", JSON.stringify(events.slice(-3).map((e) => e.data)));
  assert.equal(end.data.status, "failed");
  assert.ok(requests > 0, "the chat server was asked");
  assert.equal(end.data.error_code, "text_model_unavailable", JSON.stringify(end.data));
  assert.match(String(end.data.error), /text model/);
  const failedStep = events.find((e) => e.data.status === "failed" && e.data.step !== "pipeline");
  assert.ok(failedStep, "a step's failure is on the stream");
  assert.equal(failedStep.data.code, "text_model_unavailable");

  const view = await (await fetch(`${server.url}/v1/recordings/${id}`, { headers: auth })).text();
  const list = await (await fetch(`${server.url}/v1/recordings`, { headers: auth })).text();
  assert.equal(JSON.parse(view).error_code, "text_model_unavailable");
  const port = new URL(upstreamUrl).port;
  for (const [what, body] of [["SSE", events.map((e) => e.raw).join("\n")], ["GET recording", view], ["list", list]] as const) {
    assert.doesNotMatch(body, /UPSTREAM-SECRET|hunter2|internal-db/, `${what} carries the upstream's body`);
    assert.ok(!body.includes(`127.0.0.1:${port}`) && !body.includes(upstreamUrl), `${what} carries the upstream's address`);
  }
  // the detail is kept where operators look: the step's stored message in Postgres
  const stored = await svc.pool.query(`SELECT message FROM step_runs WHERE recording_id = $1 AND status = 'failed'`, [id]);
  assert.ok(stored.rows.length > 0);
});

test("a workflow started by hand with recording_id '../x' fails as invalid input and writes nothing", async () => {
  const before = await svc.storage.list("");
  const start = await svc.conductor("/workflow/multitrack_diarization", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ recording_id: "../x", language: "en", namespace: "conductor", tracks: [{ track_index: 0, participant: "A", offset_seconds: 0, source_key: "incoming/a.wav" }] }),
  });
  assert.equal(start.status, 200, await start.clone().text());
  const wfId = (await start.text()).replace(/"/g, "");
  let wf: { status: string; reasonForIncompletion?: string; tasks: { status: string; reasonForIncompletion?: string; retryCount?: number }[] } | undefined;
  for (let i = 0; i < 240; i++) {
    wf = (await (await svc.conductor(`/workflow/${wfId}?includeTasks=true`)).json()) as typeof wf;
    if (wf && !["RUNNING", "PAUSED"].includes(wf.status)) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.equal(wf?.status, "FAILED", JSON.stringify(wf?.tasks.map((t) => [t.status, t.reasonForIncompletion])));
  const failed = wf!.tasks.filter((t) => t.status.startsWith("FAILED"));
  assert.ok(failed.length >= 1);
  assert.equal(failed.length, 1, "invalid input is not retried");
  assert.match(String(failed[0]!.reasonForIncompletion), /^\[invalid_input\]/);
  assert.equal(failed[0]!.status, "FAILED_WITH_TERMINAL_ERROR");
  assert.deepEqual(await svc.storage.list(""), before, "no object written");
  assert.equal(Number((await svc.pool.query(`SELECT count(*) FROM events WHERE recording_id = '../x'`)).rows[0].count), 0);
});
