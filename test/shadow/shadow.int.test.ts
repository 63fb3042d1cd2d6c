/**
 * Shadow mode on real Redis, Postgres and Conductor: a recording runs on Conductor
 * (authoritative) while the BullMQ engine runs the same input in namespace `bullmq`; the
 * comparison is stored. The fixture meeting uploaded through the API ends matched; with
 * SHADOW_TEST_PERTURB on one transcription the comparison is mismatched, naming the
 * step, the track and the words.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { existsSync, openAsBlob, readFileSync } from "node:fs";
import path from "node:path";
import { pino } from "pino";
import { compareCommand } from "../../bin/commands/compare.ts";
import { FileManifest, type PipelineInput } from "../../pipeline/contracts/index.ts";
import type { PipelineEngine } from "../../pipeline/runner/engine.ts";
import { createConductorTaskEventHandler, createPgResultSink } from "../../adapters/postgres/sinks.ts";
import { startServer } from "../../server/server.ts";
import type { ShadowReport } from "../../server/shadow/compare.ts";
import { conductorHttpLookup, startShadowRun, type ShadowDeps } from "../../server/shadow/runner.ts";
import { createShadowStore } from "../../server/shadow/store.ts";
import { defaultStateDir } from "../../scripts/conductor.ts";
import { buildFixtures, defaultFixtureDir } from "../../scripts/build-fixtures.ts";
import { createBullmqRedis } from "../../workers/bullmq/engine.ts";
import { dropPrefix } from "../../workers/bullmq/queues.ts";
import { createConductorEngine } from "../../workers/conductor/engine.ts";
import { startConductorRuntime } from "../../workers/conductor/runtime.ts";
import { createStepPorts } from "../../workers/step-ports.ts";
import { startApiServices } from "../api/harness.ts";
import { stageSpokenRecording, THREE_SPEAKERS } from "../bullmq/fixture.ts";
import { bullmqHarness, uid, type Harness } from "../bullmq/harness.ts";

/** CONDUCTOR_SERVER_URL (set by `npm test`), else the server of `npm run conductor:start`. */
function conductorUrl(): string {
  if (process.env.CONDUCTOR_SERVER_URL) return process.env.CONDUCTOR_SERVER_URL;
  const state = path.join(defaultStateDir(), "server.json");
  if (existsSync(state)) return (JSON.parse(readFileSync(state, "utf8")) as { url: string }).url;
  throw new Error("no Conductor: set CONDUCTOR_SERVER_URL or run `npm run conductor:start`");
}

async function fixtureManifest(): Promise<string> {
  const file = path.join(defaultFixtureDir(), "manifest.json");
  return existsSync(file) ? file : (await buildFixtures(defaultFixtureDir())).manifestPath;
}

/** The fixture meeting uploaded through the API (multipart, as a user would); returns its id. */
async function uploadFixture(apiUrl: string): Promise<string> {
  const manifestFile = await fixtureManifest();
  const dir = path.dirname(manifestFile);
  const manifest = FileManifest.parse(JSON.parse(readFileSync(manifestFile, "utf8")));
  const form = new FormData();
  form.append("manifest", JSON.stringify({ language: manifest.language, tracks: manifest.tracks.map(({ participant, offset_seconds }) => ({ participant, offset_seconds })) }));
  for (const track of manifest.tracks) form.append("track", await openAsBlob(path.join(dir, track.path)), track.path);
  const res = await fetch(`${apiUrl}/v1/recordings`, { method: "POST", body: form });
  assert.equal(res.status, 202, await res.clone().text());
  return ((await res.json()) as { id: string }).id;
}

/** Stop the API, drop its BullMQ keys, close the services. */
async function closeApi(server: { close(): Promise<unknown> }, svc: { config: { REDIS_URL: string }; close(): Promise<unknown> }, prefix: string): Promise<void> {
  await server.close();
  const redis = createBullmqRedis(svc.config.REDIS_URL);
  await dropPrefix(redis, prefix);
  await redis.quit();
  await svc.close();
}

interface ShadowSetup {
  h: Harness;
  conductor: PipelineEngine;
  deps: ShadowDeps;
}

/**
 * Both engines with their workers in this process, torn down when the test ends (a
 * Conductor worker host left polling would take the next test's tasks: a ghost worker).
 */
async function setup(t: TestContext, tag: string, env: Record<string, string> = {}): Promise<ShadowSetup> {
  const h = await bullmqHarness({
    startWorkers: true,
    tag,
    env: { SHADOW_MODE: "bullmq", SHADOW_SAMPLE_RATE: "1", CONDUCTOR_SERVER_URL: conductorUrl(), CONDUCTOR_POLL_INTERVAL_MS: "50", ...env },
  });
  const log = pino({ level: h.config.LOG_LEVEL });
  const conductor = createConductorEngine(h.config, { storage: h.storage, log, startWorkers: true });
  const shutdown = new AbortController();
  t.after(async () => {
    shutdown.abort();
    await conductor.close().catch(() => undefined);
    await h.close();
  });
  const deps: ShadowDeps = { config: h.config, engine: h.engine, eventLog: h.eventLog, store: createShadowStore(h.db.pool), log, pollMs: 200, signal: shutdown.signal };
  return { h, conductor, deps };
}

/** Upload-path order: the Conductor workflow starts, then the shadow run of the same input. */
async function runShadowed(s: ShadowSetup, recordingId: string, input: PipelineInput) {
  const t0 = performance.now();
  const authoritative = s.conductor.run(input);
  void authoritative.then(() => process.stderr.write(`conductor run of ${recordingId}: ${Math.round(performance.now() - t0)} ms\n`), () => undefined);
  // the API knows the workflow id when it starts the shadow; the engine tells it at the end
  const lookup = conductorHttpLookup(s.h.config.CONDUCTOR_SERVER_URL, s.h.storage);
  const deps: ShadowDeps = { ...s.deps, conductorWorkflow: async (rec) => lookup(rec, (await authoritative).run.workflow_id) };
  const shadow = startShadowRun(deps, recordingId, input);
  assert.equal(shadow.sampled, true);
  const [conductorRun, report] = await Promise.all([authoritative, shadow.done]);
  process.stderr.write(`shadowed run of ${recordingId}: ${Math.round(performance.now() - t0)} ms\n`);
  assert.ok(report, "the comparison was not stored");
  return { conductorRun, report, input };
}

test("an upload through the API in shadow mode: the fixture meeting ends matched, both engines' durations stored", async (t) => {
  // the API process as `trackscribe serve` wires it (SHADOW_MODE=bullmq: BullMQ workers in the API process),
  // with S3 (s3rver), Postgres, Redis and Conductor; the Conductor workers run in this process too
  const prefix = `tsb-api-${uid()}`;
  const svc = await startApiServices({ SHADOW_MODE: "bullmq", SHADOW_SAMPLE_RATE: "1", BULLMQ_PREFIX: prefix, CONDUCTOR_SERVER_URL: conductorUrl() });
  const server = await startServer(svc.config, { log: svc.log });
  const runtime = await startConductorRuntime(svc.config, {
    storage: svc.storage,
    stepDeps: createStepPorts(svc.config, { storage: svc.storage, log: svc.log, results: createPgResultSink(svc.pool, { log: svc.log }) }),
    log: svc.log,
    onTaskEvent: createConductorTaskEventHandler(svc.pool, { log: svc.log }),
  });
  t.after(async () => {
    await runtime.stop(5000).catch(() => undefined);
    await closeApi(server, svc, prefix);
  });

  const t0 = performance.now();
  const id = await uploadFixture(server.url);

  // the comparison appears once both runs have ended
  let body: { status: string; report: ShadowReport | null; counts: Record<string, number>; conductor_workflow_id: string | null } | undefined;
  for (const deadline = Date.now() + 600_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 500))) {
    const r = await fetch(`${server.url}/v1/recordings/${id}/shadow`);
    if (r.status === 404) continue;
    body = (await r.json()) as typeof body;
    if (body!.status !== "running") break;
  }
  process.stderr.write(`upload to stored comparison: ${Math.round(performance.now() - t0)} ms\n`);
  assert.ok(body?.report, `no comparison: ${JSON.stringify(body)}`);
  const report = body.report;
  assert.deepEqual(report.items.filter((i) => i.classification === "mismatched"), [], "unexpected mismatches");
  assert.equal(body.status, "matched");
  assert.equal(report.verdict, "matched");
  assert.equal(report.primary.engine, "conductor");
  assert.equal(report.primary.run_id, body.conductor_workflow_id);
  assert.equal(report.primary.status, "succeeded");
  assert.equal(report.shadow.status, "succeeded");
  // every task of both engines was compared, keyed by track index
  const words = report.items.filter((i) => i.step === "transcribe_track" && i.check === "words");
  assert.deepEqual(words.map((i) => i.track_index), [0, 1, 2]);
  assert.ok(report.items.some((i) => i.step === "finalize" && i.check === "words" && i.classification === "matched"));
  const actions = report.items.find((i) => i.step === "extract_action_items" && i.check === "action_items");
  assert.equal(actions?.classification, "matched", JSON.stringify(actions));
  assert.equal(report.durations.length, 3 + 1 + 3 + 8);
  assert.ok(report.durations.every((d) => d.primary_ms !== null && d.shadow_ms !== null), JSON.stringify(report.durations));

  const summary = (await (await fetch(`${server.url}/v1/shadow/summary`)).json()) as { match_rate: number; durations: { engine: string }[] };
  assert.equal(summary.match_rate, 1);
  assert.deepEqual(new Set(summary.durations.map((d) => d.engine)), new Set(["conductor", "bullmq"]));
  // the user sees Conductor's result; the shadow's is its own row and its files its own namespace
  const rec = (await (await fetch(`${server.url}/v1/recordings/${id}`)).json()) as { status: string };
  assert.equal(rec.status, "completed");
  const engines = (await svc.pool.query(`SELECT engine FROM results WHERE recording_id = $1 ORDER BY engine`, [id])).rows.map((r: { engine: string }) => r.engine);
  assert.deepEqual(engines, ["bullmq", "conductor"]);
  const keys = await svc.storage.list(`recordings/${id}/`);
  assert.ok(keys.some((k) => k.startsWith(`recordings/${id}/bullmq/`)));
  assert.ok(keys.some((k) => k.startsWith(`recordings/${id}/conductor/`)));
});

test("a perturbed BullMQ transcription yields a mismatch naming the step, the track and the words", async (t) => {
  const s = await setup(t, "shadowbad", { SHADOW_TEST_PERTURB: "transcribe_track:1" });
  const recordingId = `rec-${uid()}`;
  // a shorter recording than the fixture: three espeak-ng speakers
  const { report } = await runShadowed(s, recordingId, await stageSpokenRecording(s.h.storage, s.h.dir, recordingId, THREE_SPEAKERS, "conductor"));

  assert.equal(report.verdict, "mismatched");
  const t1 = report.items.find((i) => i.step === "transcribe_track" && i.track_index === 1 && i.check === "words");
  assert.equal(t1?.classification, "mismatched");
  const diffs = (t1!.details as { diffs: { op: string; primary?: string; shadow?: string }[] }).diffs;
  assert.equal(diffs.length, 1);
  assert.equal(diffs[0]!.op, "substitution");
  assert.equal(diffs[0]!.shadow, "perturbed");
  assert.match(t1!.summary, new RegExp(`^track 1: (\\d+) vs \\1 words, WER [0-9.]+% \\(1 sub, 0 del, 0 ins\\): "${diffs[0]!.primary}"→"perturbed"`));
  // the other tracks still match
  for (const track of [0, 2]) {
    assert.equal(report.items.find((i) => i.step === "transcribe_track" && i.track_index === track && i.check === "words")?.classification, "matched");
  }
  assert.equal((await s.deps.store.get(recordingId))?.status, "mismatched");

  // `trackscribe compare` shows it as a table row
  const saved = { url: process.env.DATABASE_URL, schema: process.env.DATABASE_SCHEMA };
  Object.assign(process.env, s.h.db.env);
  try {
    let text = "";
    assert.equal(await compareCommand(recordingId, { mismatches: true }, (t) => void (text += t)), 0);
    assert.match(text, /^Shadow comparison: MISMATCHED/);
    assert.match(text, /\ntranscribe_track\s+1\s+words\s+MISMATCH\s+track 1: .*→"perturbed"/);
  } finally {
    for (const [k, v] of [["DATABASE_URL", saved.url], ["DATABASE_SCHEMA", saved.schema]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
});

test("deleting a recording while its shadow run is going stops that run: no comparison, no rows, nothing left running", async (t) => {
  const prefix = `tsb-del-${uid()}`;
  const svc = await startApiServices({ SHADOW_MODE: "bullmq", SHADOW_SAMPLE_RATE: "1", BULLMQ_PREFIX: prefix, CONDUCTOR_SERVER_URL: conductorUrl() });
  const lines: { msg?: string; recording_id?: string }[] = [];
  const log = pino({ level: "info" }, { write: (s: string) => void lines.push(JSON.parse(s) as { msg?: string }) });
  const server = await startServer(svc.config, { log });
  // no Conductor workers: the authoritative workflow waits in its queue, the shadow runs
  t.after(() => closeApi(server, svc, prefix));

  const id = await uploadFixture(server.url);

  // the shadow run is under way
  for (const deadline = Date.now() + 60_000; ; await new Promise((r) => setTimeout(r, 100))) {
    assert.ok(Date.now() < deadline, "the shadow run never started");
    const r = await fetch(`${server.url}/v1/recordings/${id}/shadow`);
    if (r.status === 200 && ((await r.json()) as { status: string }).status === "running") break;
  }
  const del = await fetch(`${server.url}/v1/recordings/${id}`, { method: "DELETE" });
  assert.ok(del.status === 204 || del.status === 200, `DELETE answered ${del.status}: ${await del.text()}`);

  // the run was stopped before the rows went (DELETE waits for it), and it stored nothing
  const cancelled = lines.filter((l) => l.msg === "shadow run cancelled" && l.recording_id === id);
  assert.equal(cancelled.length, 1, JSON.stringify(lines.filter((l) => l.recording_id === id).map((l) => l.msg)));
  assert.ok(!lines.some((l) => l.recording_id === id && (l.msg === "shadow comparison stored" || l.msg === "shadow comparison failed")));
  for (const table of ["recordings", "shadow_runs", "shadow_items", "results", "pipeline_runs"]) {
    const col = table === "recordings" ? "id" : "recording_id";
    const { rowCount } = await svc.pool.query(`SELECT 1 FROM ${table} WHERE ${col} = $1`, [id]);
    assert.equal(rowCount, 0, `${table} still has rows for ${id}`);
  }
  assert.equal((await fetch(`${server.url}/v1/recordings/${id}/shadow`)).status, 404);
  // no BullMQ job of this recording is left waiting to run
  const redis = createBullmqRedis(svc.config.REDIS_URL);
  try {
    const waitingKeys = await redis.keys(`${prefix}:*:wait`);
    for (const key of waitingKeys) {
      const jobIds = await redis.lrange(key, 0, -1);
      assert.ok(!jobIds.some((j) => j.includes(id)), `${key} still holds ${jobIds.filter((j) => j.includes(id)).join(", ")}`);
    }
  } finally {
    await redis.quit();
  }
});
