/**
 * Two Conductor servers on one Postgres database (scripts/conductor.ts `postgres`:
 * executions, queues, index and workflow locks in Postgres), started fresh for this file
 * on a database of its own that is dropped at the end:
 *  - definitions registered through server A are server B's too;
 *  - the API's reconciler reads either server: a workflow terminated through B fails its
 *    recording when the API on B looks, a workflow removed through A fails its recording
 *    (started through B) when the API on A looks, a recording is found by correlation id
 *    through the server that did not start it, and the API on A retries what B saw fail;
 *  - recordings of the test fixture started (or retried) through the API on A, with the
 *    Conductor workers polling B only, all complete with the same Result rows, and B's
 *    search index lists them;
 *  - removing workflows with many tasks through one server while the other takes new work
 *    leaves both answering (the pool deadlock SQLite had with 10 connections).
 * Nothing else in the test run uses a Postgres-backed Conductor.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { after, before, test } from "node:test";
import type { FastifyInstance } from "fastify";
import { Result } from "../../pipeline/contracts/index.ts";
import { build } from "../../server/app.ts";
import { createConductorGateway, WORKFLOW_NAME, type WorkflowGateway } from "../../adapters/conductor/gateway.ts";
import { createConductorApi, type ConductorApi } from "../../adapters/conductor/client.ts";
import { startConductor, type ConductorHandle } from "../../scripts/conductor.ts";
import { dropDatabase, ensureDatabase } from "../../scripts/lib.ts";
import { buildFixtures, defaultFixtureDir } from "../../scripts/build-fixtures.ts";
import { multipartBody, startApiServices, startInProcessWorkers, type ApiServices } from "../api/harness.ts";

const TOKEN = "shared-db-token-0123456789";
const auth = { authorization: `Bearer ${TOKEN}` };
const database = `conductor_test_${process.pid}_${randomBytes(3).toString("hex")}`;
const pgUrl = `postgres://postgres@127.0.0.1:5432/${database}`;
const stateRoot = path.resolve(process.env.WORK_DIR ?? ".work", "conductor-shared-db");
const log = (s: string): void => void process.stderr.write(`${s}\n`);

let serverA: ConductorHandle | undefined;
let serverB: ConductorHandle | undefined;
let svc: ApiServices | undefined;
let appA: FastifyInstance | undefined;
let appB: FastifyInstance | undefined;
let restA: ConductorApi;
let restB: ConductorApi;
let gatewayB: WorkflowGateway;
let stopWorkers: (() => Promise<unknown>) | undefined;
let fixture: { manifest: unknown; participants: string[]; files: { name: string; data: Buffer }[] };

before(async () => {
  await ensureDatabase(database);
  const started = await Promise.allSettled(
    // two JVMs starting at once on a small machine: twice the usual wait
    ["a", "b"].map((n) => startConductor({ stateDir: path.join(stateRoot, n), fresh: true, postgres: { url: pgUrl }, log, timeoutMs: 360_000 })),
  );
  [serverA, serverB] = started.map((s) => (s.status === "fulfilled" ? s.value : undefined));
  for (const s of started) if (s.status === "rejected") throw s.reason;
  assert.notEqual(serverA!.url, serverB!.url);
  restA = createConductorApi(serverA!.url);
  restB = createConductorApi(serverB!.url);

  // definitions go to A only (the harness registers them there)
  svc = await startApiServices({ API_TOKEN: TOKEN, MAX_TRACK_BYTES: String(10 * 1024 * 1024) }, { conductorUrl: serverA!.url });
  const gatewayA = await createConductorGateway({ serverUrl: serverA!.url, log: svc.log });
  gatewayB = await createConductorGateway({ serverUrl: serverB!.url, log: svc.log });
  const app = (workflows: WorkflowGateway): Promise<FastifyInstance> =>
    build({
      config: svc!.config,
      log: svc!.log,
      pool: svc!.pool,
      storage: svc!.storage,
      trackSink: async (key, body, ct) => void (await svc!.storage.s3!.upload(key, body, { contentType: ct })),
      workflows,
    });
  appA = await app(gatewayA);
  appB = await app(gatewayB);

  const dir = path.dirname((await buildFixtures(defaultFixtureDir())).manifestPath);
  const m = JSON.parse(await readFile(path.join(dir, "manifest.json"), "utf8")) as { language: string; tracks: { path: string; participant: string; offset_seconds: number }[] };
  fixture = {
    manifest: { language: m.language, tracks: m.tracks.map(({ participant, offset_seconds }) => ({ participant, offset_seconds })) },
    participants: m.tracks.map((t) => t.participant),
    files: await Promise.all(m.tracks.map(async (t) => ({ name: t.path, data: await readFile(path.join(dir, t.path)) }))),
  };
});

after(async () => {
  await stopWorkers?.();
  await appA?.close();
  await appB?.close();
  await svc?.close();
  await Promise.all([serverA?.stop(), serverB?.stop()]);
  await dropDatabase(database);
});

async function upload(app: FastifyInstance): Promise<{ id: string; workflowId: string }> {
  const { body, contentType } = await multipartBody(fixture.manifest, fixture.files);
  const res = await app.inject({ method: "POST", url: "/v1/recordings", payload: body, headers: { ...auth, "content-type": contentType } });
  assert.equal(res.statusCode, 202, res.body);
  const { id } = res.json<{ id: string }>();
  const row = await svc!.pool.query<{ workflow_id: string }>("SELECT workflow_id FROM recordings WHERE id = $1", [id]);
  assert.ok(row.rows[0]?.workflow_id, "the upload started its workflow");
  return { id, workflowId: row.rows[0].workflow_id };
}

/** GET the recording through `app` (each GET lets its reconciler look, at most every 2 s) until `done`. */
async function waitForStatus(app: FastifyInstance, id: string, done: (status: string) => boolean, timeoutMs = 90_000): Promise<{ status: string; result?: unknown }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await app.inject({ method: "GET", url: `/v1/recordings/${id}`, headers: auth });
    assert.equal(res.statusCode, 200, res.body);
    const view = res.json<{ status: string; result?: unknown }>();
    if (done(view.status)) return view;
    if (Date.now() > deadline) throw new Error(`recording ${id} still ${view.status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const storedError = async (id: string): Promise<string> =>
  (await svc!.pool.query<{ error: string | null }>("SELECT error FROM recordings WHERE id = $1", [id])).rows[0]?.error ?? "";

let retried: string;

test("one database: what A registers and starts, B knows; the API's reconciler works through either server", async () => {
  // metadata registered through A is read through B
  const def = await restB.getWorkflowDef(WORKFLOW_NAME, 1);
  assert.equal(def?.name, WORKFLOW_NAME);

  // no workers yet: a recording's workflow waits at its first task
  const viaA = await upload(appA!);
  const onB = await restB.getWorkflow(viaA.workflowId, true);
  assert.equal(onB.status, "RUNNING");
  assert.equal(onB.correlationId, viaA.id);
  // found by correlation id through the server that did not start it
  assert.equal(await gatewayB.findByCorrelation(viaA.id), viaA.workflowId);

  // terminated through B: the API on B fails the recording with Conductor's reason
  await restB.terminate(viaA.workflowId, "stopped through server B");
  assert.equal((await waitForStatus(appB!, viaA.id, (s) => s === "failed")).status, "failed");
  assert.match(await storedError(viaA.id), /stopped through server B/);

  // started through B, removed through A: the API on A finds no workflow and fails the recording
  const viaB = await upload(appB!);
  assert.equal((await restA.getWorkflow(viaB.workflowId, false)).status, "RUNNING");
  await restA.terminate(viaB.workflowId, "removed through server A");
  await restA.remove(viaB.workflowId);
  assert.equal((await waitForStatus(appA!, viaB.id, (s) => s === "failed")).status, "failed");
  assert.match(await storedError(viaB.id), new RegExp(`Conductor has no workflow ${viaB.workflowId} any more`));

  // the API on A retries the recording that failed through B; it completes once workers run (next test)
  const res = await appA!.inject({ method: "POST", url: `/v1/recordings/${viaA.id}/retry`, headers: auth });
  assert.equal(res.statusCode, 202, res.body);
  assert.equal((await restB.getWorkflow(viaA.workflowId, false)).status, "RUNNING");
  retried = viaA.id;
});

test("workflows started through server A, workers polling server B: all complete with their Result rows", async () => {
  assert.ok(retried, "the first test left a retried recording");
  // the workers know only B. One decoder: beside two JVMs a second one only adds to the
  // contention on a small machine, where a segment's decode can pass the recognizer's stall limit
  stopWorkers = await startInProcessWorkers({ ...svc!, config: { ...svc!.config, CONDUCTOR_SERVER_URL: serverB!.url, ASR_CONCURRENCY: 1 } });
  // with the one retried through A: two workflows A started, one of them twice
  const started = [await upload(appA!)];
  const ids = [retried, ...started.map((s) => s.id)];

  const views = await Promise.all(ids.map((id) => waitForStatus(appA!, id, (s) => s === "completed" || s === "failed", 300_000)));
  const outcome = await svc!.pool.query<{ id: string; status: string; error: string | null; failed_step: string | null }>(
    "SELECT id, status, error, failed_step FROM recordings WHERE id = ANY($1)",
    [ids],
  );
  assert.deepEqual(views.map((v) => v.status), ["completed", "completed"], JSON.stringify(outcome.rows));

  const rows = await svc!.pool.query<{ recording_id: string; engine: string; result: unknown }>(
    "SELECT recording_id, engine, result FROM results WHERE recording_id = ANY($1) ORDER BY recording_id",
    [ids],
  );
  assert.deepEqual(rows.rows.map((r) => [r.recording_id, r.engine]), [...ids].sort().map((id) => [id, "conductor"]));
  const results = new Map(rows.rows.map((r) => [r.recording_id, Result.parse(r.result)]));
  const first = results.get(started[0]!.id)!;
  assert.deepEqual(first.participants.map((p) => p.name).sort(), [...fixture.participants].sort());
  assert.deepEqual([...new Set(first.words.map((w) => w.speaker))].sort(), [0, 1, 2]);
  assert.ok(first.words.length > 0);
  // the same recording gives the same transcript, whichever server started or retried it
  for (const id of ids) assert.deepEqual(results.get(id)!.words.map((w) => [w.text, w.speaker, w.start]), first.words.map((w) => [w.text, w.speaker, w.start]), id);

  for (const s of started) {
    // one workflow each (no duplicate start), COMPLETED as both servers see it
    assert.deepEqual((await restA.correlated(WORKFLOW_NAME, s.id)).map((w) => w.workflowId), [s.workflowId]);
    assert.equal((await restB.getWorkflow(s.workflowId, false)).status, "COMPLETED");
  }
  // the workflow index is in Postgres too: B's search lists what A started. The Postgres
  // index is written by an async executor after the status change, so under load (CI read
  // [] right after completion) it trails the execution rows by a moment: ask until it shows
  const searchUrl = `${serverB!.url}/workflow/search?query=${encodeURIComponent(`correlationId='${started[0]!.id}'`)}`;
  let hits: { workflowId: string; status: string }[] = [];
  for (const deadline = Date.now() + 60_000; ; ) {
    const search = await fetch(searchUrl);
    assert.equal(search.status, 200);
    hits = ((await search.json()) as { results: { workflowId: string; status: string }[] }).results;
    if (hits.some((h) => h.status === "COMPLETED") || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  assert.deepEqual(hits.map((h) => [h.workflowId, h.status]), [[started[0]!.workflowId, "COMPLETED"]]);
});

test("removing workflows with many tasks through A while B takes new work: both keep answering (CONDUCTOR_PG_POOL_SIZE)", async () => {
  // as test/conductor/server.int.test.ts does on SQLite, whose pool of 10 deadlocked on removal;
  // a client timeout under Hikari's 30 s connection timeout, which a starved pool makes every call wait
  const a = createConductorApi(serverA!.url, { timeoutMs: 25_000 });
  const b = createConductorApi(serverB!.url, { timeoutMs: 25_000 });
  const name = `trackscribe_test_many_tasks_${process.pid}`;
  const tasks = 25;
  // SET_VARIABLE runs in the decider: a started workflow completes at once with `tasks` tasks
  await a.registerWorkflow({
    name,
    version: 1,
    schemaVersion: 2,
    ownerEmail: "tests@trackscribe.local",
    timeoutPolicy: "TIME_OUT_WF",
    timeoutSeconds: 60,
    tasks: Array.from({ length: tasks }, (_, i) => ({ name: "set_variable", taskReferenceName: `v${i}`, type: "SET_VARIABLE", inputParameters: { [`v${i}`]: i } })),
  });
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) ids.push(await b.startWorkflow(name, 1, {}));
  for (const id of ids) assert.equal((await a.getWorkflow(id)).tasks.length, tasks);

  const removals = ids.map((id) => a.remove(id));
  const others = Array.from({ length: 3 }, async () => {
    const id = await b.startWorkflow(name, 1, {});
    const wf = await a.getWorkflow(id);
    await b.remove(id);
    return wf.status;
  });
  const settled = await Promise.allSettled([...removals, ...others]);
  const failed = settled.flatMap((s) => (s.status === "rejected" ? [String((s.reason as Error).message)] : []));
  assert.deepEqual(failed, [], `calls failed while workflows were being removed: ${failed.join("; ")}`);
  for (const s of settled.slice(removals.length)) assert.equal((s as PromiseFulfilledResult<string>).value, "COMPLETED");
  for (const id of ids) {
    for (const server of [serverA!, serverB!]) {
      const res = await fetch(`${server.url}/workflow/${id}?includeTasks=false`, { signal: AbortSignal.timeout(10_000) });
      assert.equal(res.status, 404, `workflow ${id} is gone on ${server.url}`);
    }
  }
});
