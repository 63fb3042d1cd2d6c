/**
 * Duration limits, Idempotency-Key binding and the per-owner workflow cap, through
 * `build()` + `app.inject` against a fresh Postgres schema, a real s3rver over HTTP, the
 * real Conductor server and real ffmpeg:
 *   - an uploaded track is measured while it streams: no samples → 422 no_audio, longer than
 *     MAX_TRACK_SECONDS → 422 track_too_long (WAV and Ogg/Opus alike), past the timeline →
 *     422 recording_too_long; nothing is left (rows, objects, multipart uploads, workflows);
 *   - a key-referenced track is judged by its header where it declares a length; the rest
 *     is measured by the worker (prepare_track), which fails with the same code, never retried;
 *   - the same Idempotency-Key with another manifest → 422; with the same → the same recording;
 *   - MAX_WORKFLOWS_PER_OWNER: the owner's next recording waits queued with no workflow, and
 *     the reconciler starts it once a place frees.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import { build } from "../../server/app.ts";
import { createConductorGateway, type WorkflowGateway } from "../../adapters/conductor/gateway.ts";
import { createFfmpegAudioTools } from "../../adapters/audio/ffmpeg.ts";
import { publicFailure } from "../../pipeline/failures.ts";
import { prepareTrack } from "../../pipeline/steps/prepare_track.ts";
import type { StepDeps } from "../../pipeline/steps/deps.ts";
import { loadConfig } from "../../pipeline/config.ts";
import { multipartBody, startApiServices, wavBytes, type ApiServices } from "./harness.ts";

const TOKEN = "limits-test-token-0123";
const auth = { authorization: `Bearer ${TOKEN}` };
const LIMITS = { MAX_TRACK_SECONDS: "5", MAX_RECORDING_SECONDS: "8", MIN_TRACK_SECONDS: "0.1" };
let svc: ApiServices;
let app: FastifyInstance;
let workflows: WorkflowGateway;
let scratch: string;

/** `seconds` of a tone as Ogg/Opus (a compressed container whose length only reading tells). */
function oggBytes(seconds: number, file: string): Promise<Buffer> {
  execFileSync("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", `sine=frequency=440:sample_rate=16000:duration=${seconds}`, "-ac", "1", "-c:a", "libopus", file]);
  return readFile(file);
}

before(async () => {
  svc = await startApiServices({ API_TOKEN: TOKEN, ...LIMITS, MAX_TRACK_BYTES: String(4 * 1024 * 1024), MAX_UPLOAD_BYTES: String(6 * 1024 * 1024) });
  workflows = await createConductorGateway({ serverUrl: svc.conductorUrl, log: svc.log });
  app = await build({
    config: svc.config,
    log: svc.log,
    pool: svc.pool,
    storage: svc.storage,
    trackSink: async (key, body, ct) => void (await svc.storage.s3!.upload(key, body, { contentType: ct })),
    workflows,
  });
  scratch = await mkdtemp(path.join(os.tmpdir(), "ts-limits-"));
});
after(async () => {
  await app?.close();
  await svc?.close();
  await rm(scratch, { recursive: true, force: true });
});

async function upload(manifest: unknown, files: { name: string; data: Buffer }[], headers: Record<string, string> = {}) {
  const { body, contentType } = await multipartBody(manifest, files);
  return app.inject({ method: "POST", url: "/v1/recordings", payload: body, headers: { ...auth, ...headers, "content-type": contentType } });
}

/** No rows, no objects under recordings/, no multipart upload pending, no new workflow. */
async function assertNothingLeft(runningBefore: string[]): Promise<void> {
  const leftovers = Object.entries(await svc.rowCounts()).filter(([, n]) => n > 0);
  const { keys, pendingUploads } = await svc.bucketState();
  assert.deepEqual({ leftovers, keys, pendingUploads }, { leftovers: [], keys: [], pendingUploads: 0 });
  assert.deepEqual(await svc.runningWorkflows(), runningBefore);
}

const one = (participant: string, offset_seconds = 0) => ({ language: "en", tracks: [{ participant, offset_seconds }] });

describe("uploads are measured while they stream: each limit its own 4xx code, nothing left behind", () => {
  const cases: { name: string; error: string; detail: RegExp; run: () => Promise<{ statusCode: number; json(): { error: string; message: string } }> }[] = [
    { name: "a WAV with a header and no samples (44 bytes)", error: "no_audio", detail: /track 0 \(Ann\) has 0 s of audio; at least 0\.1 s/, run: () => upload(one("Ann"), [{ name: "a.wav", data: wavBytes(0) }]) },
    { name: "a WAV longer than MAX_TRACK_SECONDS", error: "track_too_long", detail: /track 0 \(Ann\) is 6(\.\d+)? s long; the limit is 5 s \(MAX_TRACK_SECONDS\)/, run: () => upload(one("Ann"), [{ name: "a.wav", data: wavBytes(6) }]) },
    {
      name: "an Ogg/Opus track longer than MAX_TRACK_SECONDS (compressed: only reading it tells)",
      error: "track_too_long",
      detail: /track 0 \(Ann\) is [56](\.\d+)? s long; the limit is 5 s/,
      run: async () => upload(one("Ann"), [{ name: "a.ogg", data: await oggBytes(7, path.join(scratch, "long.ogg")) }]),
    },
    {
      name: "a track that, from its offset, ends past MAX_RECORDING_SECONDS",
      error: "recording_too_long",
      detail: /track 1 \(Bo\) ends at 8\.5 s \(offset 4 s \+ 4\.5 s\); a recording's timeline may be at most 8 s/,
      run: () =>
        upload({ language: "en", tracks: [{ participant: "Ann", offset_seconds: 0 }, { participant: "Bo", offset_seconds: 4 }] }, [
          { name: "a.wav", data: wavBytes(1) },
          { name: "b.wav", data: wavBytes(4.5) },
        ]),
    },
  ];
  for (const c of cases) {
    test(`${c.name} → 422 ${c.error}`, async () => {
      const before = await svc.runningWorkflows();
      const res = await c.run();
      const body = res.json();
      assert.equal(res.statusCode, 422, JSON.stringify(body));
      assert.equal(body.error, c.error);
      assert.match(body.message, c.detail);
      await assertNothingLeft(before);
    });
  }

  test("a track within every limit is accepted, and its Ogg sibling too", async () => {
    const res = await upload({ language: "en", tracks: [{ participant: "Ann", offset_seconds: 0 }, { participant: "Bo", offset_seconds: 2 }] }, [
      { name: "a.wav", data: wavBytes(4.9) },
      { name: "b.ogg", data: await oggBytes(3, path.join(scratch, "ok.ogg")) },
    ]);
    assert.equal(res.statusCode, 202, res.body);
    const { id } = res.json() as { id: string };
    assert.equal((await app.inject({ method: "DELETE", url: `/v1/recordings/${id}`, headers: auth })).statusCode, 204);
  });
});

describe("tracks referenced by key", () => {
  test("a WAV whose header declares more than MAX_TRACK_SECONDS → 422 track_too_long; the client's object stays, nothing of ours is left", async () => {
    const before = await svc.runningWorkflows();
    await svc.storage.put("incoming/limits/long.wav", wavBytes(6));
    const res = await app.inject({ method: "POST", url: "/v1/recordings", headers: auth, payload: { tracks: [{ key: "incoming/limits/long.wav", participant: "Ann" }] } });
    assert.equal(res.statusCode, 422, res.body);
    assert.equal(res.json().error, "track_too_long");
    await assertNothingLeft(before);
    assert.deepEqual(await svc.storage.list("incoming/limits/"), ["incoming/limits/long.wav"]);
  });

  test("tracks whose sizes together pass MAX_UPLOAD_BYTES → 413 upload_too_large", async () => {
    const before = await svc.runningWorkflows();
    const big = Buffer.concat([wavBytes(0.1), Buffer.alloc(3.5 * 1024 * 1024)]);
    await svc.storage.put("incoming/limits/big1.wav", big);
    await svc.storage.put("incoming/limits/big2.wav", big);
    const res = await app.inject({
      method: "POST",
      url: "/v1/recordings",
      headers: auth,
      payload: { tracks: [{ key: "incoming/limits/big1.wav", participant: "Ann" }, { key: "incoming/limits/big2.wav", participant: "Bo" }] },
    });
    assert.equal(res.statusCode, 413, res.body);
    assert.equal(res.json().error, "upload_too_large");
    await assertNothingLeft(before);
  });

  test("what only decoding tells, the worker measures: prepare_track fails with the API's code, not retryable", async () => {
    const config = loadConfig({ ...LIMITS });
    const storage = svc.storage;
    const ogg = await oggBytes(7, path.join(scratch, "key.ogg"));
    await storage.put("incoming/limits/long.ogg", ogg);
    const dir = await mkdtemp(path.join(scratch, "step-"));
    const deps = {
      storage,
      audio: createFfmpegAudioTools({ maxSeconds: config.MAX_TRACK_SECONDS }),
      scratchDir: dir,
      bleedThresholdDb: 10,
      limits: { maxTrackSeconds: config.MAX_TRACK_SECONDS, maxRecordingSeconds: config.MAX_RECORDING_SECONDS, minTrackSeconds: config.MIN_TRACK_SECONDS },
    } as unknown as StepDeps;
    const input = { recording_id: "rec-limits", namespace: "conductor" as const, track: { track_index: 0, participant: "Ann", offset_seconds: 0, source_key: "incoming/limits/long.ogg" } };
    const err = await prepareTrack(input, deps).then(
      () => assert.fail("a 7 s track passed a 5 s limit"),
      (e: unknown) => e as Error & { retryable?: boolean },
    );
    assert.equal(err.retryable, false);
    const failure = publicFailure(err);
    assert.equal(failure.code, "track_too_long");
    // ffmpeg stopped one second past the limit (-t): 6 s decoded of the 7
    assert.match(failure.message, /track 0 \(Ann\) is 6(\.\d+)? s long; the limit is 5 s/);
    // and from its offset: past the timeline
    await storage.put("incoming/limits/short.wav", wavBytes(4));
    const late = await prepareTrack({ ...input, track: { ...input.track, offset_seconds: 6, source_key: "incoming/limits/short.wav" } }, deps).catch((e: Error) => e);
    assert.equal(publicFailure(late).code, "recording_too_long");
    await storage.put("incoming/limits/empty.wav", wavBytes(0));
    const empty = await prepareTrack({ ...input, track: { ...input.track, source_key: "incoming/limits/empty.wav" } }, deps).catch((e: Error) => e);
    assert.equal(publicFailure(empty).code, "no_audio");
    assert.equal((empty as { retryable?: boolean }).retryable, false);
    await storage.deletePrefix("recordings/rec-limits/");
  });
});

describe("Idempotency-Key is bound to the request's manifest", () => {
  test("same key, same manifest → the same recording; same key, another manifest → 422 idempotency_key_reused, nothing written", async () => {
    const manifest = one("Ann");
    const first = await upload(manifest, [{ name: "a.wav", data: wavBytes(0.5) }], { "idempotency-key": "idem-bound" });
    assert.equal(first.statusCode, 202, first.body);
    const id = first.json().id as string;
    // the manifest's JSON in another key order is the same manifest
    const again = await upload({ tracks: [{ offset_seconds: 0, participant: "Ann" }], language: "en" }, [{ name: "a.wav", data: wavBytes(0.5) }], { "idempotency-key": "idem-bound" });
    assert.equal(again.json().id, id);
    assert.equal(again.headers["idempotent-replayed"], "true");
    const counts = await svc.rowCounts();
    const other = await upload(one("Someone else"), [{ name: "a.wav", data: wavBytes(0.5) }], { "idempotency-key": "idem-bound" });
    assert.equal(other.statusCode, 422, other.body);
    assert.equal(other.json().error, "idempotency_key_reused");
    assert.deepEqual(await svc.rowCounts(), counts);
    assert.deepEqual((await svc.storage.list("recordings/")).filter((k) => !k.startsWith(`recordings/${id}/`)), []);
    // by key: the same rule
    await svc.storage.put("incoming/idem/a.wav", wavBytes(0.5));
    const byKey = (participant: string) =>
      app.inject({ method: "POST", url: "/v1/recordings", headers: { ...auth, "idempotency-key": "idem-json" }, payload: { tracks: [{ key: "incoming/idem/a.wav", participant }] } });
    const k1 = await byKey("Ann");
    assert.equal(k1.statusCode, 202, k1.body);
    assert.equal((await byKey("Ann")).json().id, k1.json().id);
    assert.equal((await byKey("Bo")).statusCode, 422);
    for (const rid of [id, k1.json().id as string]) assert.equal((await app.inject({ method: "DELETE", url: `/v1/recordings/${rid}`, headers: auth })).statusCode, 204);
  });
});

describe("MAX_WORKFLOWS_PER_OWNER", () => {
  test("the owner's next recording waits queued with no workflow; the reconciler starts it once a place frees", async () => {
    const capped = await build({
      config: { ...svc.config, MAX_WORKFLOWS_PER_OWNER: 1, START_GRACE_SECONDS: 0.1, API_RECONCILE_SECONDS: 0.2 },
      log: svc.log,
      pool: svc.pool,
      storage: svc.storage,
      workflows,
    });
    try {
      await svc.storage.put("incoming/cap/a.wav", wavBytes(0.5));
      const create = () => capped.inject({ method: "POST", url: "/v1/recordings", headers: auth, payload: { tracks: [{ key: "incoming/cap/a.wav", participant: "Ann" }] } });
      const a = await create();
      const b = await create();
      assert.equal(a.statusCode, 202, a.body);
      assert.equal(b.statusCode, 202, b.body);
      const row = async (id: string) => (await svc.pool.query<{ status: string; workflow_id: string | null }>(`SELECT status, workflow_id FROM recordings WHERE id = $1`, [id])).rows[0]!;
      const first = await row(a.json().id);
      assert.ok(first.workflow_id, "the first recording started");
      assert.deepEqual(await row(b.json().id), { status: "queued", workflow_id: null });
      // still waiting after several reconciler ticks: the owner's place is taken
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal((await row(b.json().id)).workflow_id, null);
      // the first one ends (no workers here: terminated); the reconciler fails it, then starts the next
      await svc.conductor(`/workflow/${first.workflow_id}?reason=test`, { method: "DELETE" });
      const deadline = Date.now() + 20_000;
      let second = await row(b.json().id);
      while (!second.workflow_id && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        second = await row(b.json().id);
      }
      assert.ok(second.workflow_id, "the waiting recording was started");
      assert.equal((await row(a.json().id)).status, "failed");
      const correlated = (await (await svc.conductor(`/workflow/multitrack_diarization/correlated/${b.json().id}?includeClosed=true`)).json()) as unknown[];
      assert.equal(correlated.length, 1, "started once");
      for (const r of [a, b]) assert.equal((await capped.inject({ method: "DELETE", url: `/v1/recordings/${r.json().id}`, headers: auth })).statusCode, 204);
    } finally {
      await capped.close();
    }
  });
});
