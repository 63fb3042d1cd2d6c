/**
 * The API routes through `build()` + `app.inject`, against a fresh Postgres schema, a real
 * s3rver over HTTP and the real Conductor server: accepted uploads land in the bucket, the
 * database and Conductor; every kind of bad input is refused with 4xx JSON and leaves
 * nothing behind in any of the three.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { FastifyInstance } from "fastify";
import { build } from "../../server/app.ts";
import { createConductorGateway, type WorkflowGateway } from "../../adapters/conductor/gateway.ts";
import { createPgEventSink, createPgResultSink } from "../../adapters/postgres/sinks.ts";
import { createRecordingsRepo } from "../../adapters/postgres/recordings-repo.ts";
import { multipartBody, startApiServices, wavBytes, type ApiServices } from "./harness.ts";

const TOKEN = "test-token-123456";
let svc: ApiServices;
let app: FastifyInstance;
let workflows: WorkflowGateway;
const auth = { authorization: `Bearer ${TOKEN}` };

before(async () => {
  svc = await startApiServices({ API_TOKEN: TOKEN, MAX_TRACKS: "3", MAX_TRACK_BYTES: String(64 * 1024), MAX_UPLOAD_BYTES: String(100 * 1024), MAX_RECORDING_SECONDS: "3600" });
  workflows = await createConductorGateway({ serverUrl: svc.conductorUrl, log: svc.log });
  app = await build({
    config: svc.config,
    log: svc.log,
    pool: svc.pool,
    storage: svc.storage,
    trackSink: async (key, body, ct) => void (await svc.storage.s3!.upload(key, body, { contentType: ct })),
    workflows,
  });
});
after(async () => {
  await app?.close();
  await svc?.close();
});

const wav = wavBytes(0.25);
const manifest2 = { language: "en", tracks: [{ participant: "Alice", offset_seconds: 0 }, { participant: "Bob", offset_seconds: 1.5 }] };

async function upload(manifest: unknown, files: { name: string; data: Buffer; field?: string }[], headers: Record<string, string> = auth, opts = {}) {
  const { body, contentType } = await multipartBody(manifest, files, opts);
  return app.inject({ method: "POST", url: "/v1/recordings", payload: body, headers: { ...headers, "content-type": contentType } });
}

/** Nothing of a refused upload may remain: no rows, no objects, no pending parts, no new workflow. */
async function assertNothingLeft(runningBefore: string[]): Promise<void> {
  const counts = await svc.rowCounts();
  const leftovers = Object.entries(counts).filter(([, n]) => n > 0);
  const { keys, pendingUploads } = await svc.bucketState();
  assert.deepEqual({ leftovers, keys, pendingUploads }, { leftovers: [], keys: [], pendingUploads: 0 });
  assert.deepEqual(await svc.runningWorkflows(), runningBefore);
}

describe("bad input: 4xx JSON {error, message}, nothing left in the database, the bucket or Conductor", () => {
  const cases: { name: string; status: number; error: string; run: () => Promise<{ statusCode: number; json(): { error: string; message: string } }> }[] = [
    { name: "no tracks (empty manifest)", status: 400, error: "no_tracks", run: () => upload({ language: "en", tracks: [] }, []) },
    { name: "no manifest and no files", status: 400, error: "no_tracks", run: () => upload(undefined, []) },
    {
      name: "more than MAX_TRACKS",
      status: 400,
      error: "too_many_tracks",
      run: () => upload({ tracks: ["A", "B", "C", "D"].map((p) => ({ participant: p })) }, ["a", "b", "c", "d"].map((n) => ({ name: `${n}.wav`, data: wav }))),
    },
    {
      name: "tracks together over MAX_UPLOAD_BYTES (each under MAX_TRACK_BYTES)",
      status: 413,
      error: "upload_too_large",
      run: () => upload(manifest2, [{ name: "a.wav", data: wavBytes(1.8) }, { name: "b.wav", data: wavBytes(1.8) }]),
    },
    {
      name: "an offset past MAX_RECORDING_SECONDS",
      status: 422,
      error: "recording_too_long",
      run: () => upload({ language: "en", tracks: [{ participant: "A", offset_seconds: 0 }, { participant: "B", offset_seconds: 4000 }] }, [{ name: "a.wav", data: wav }, { name: "b.wav", data: wav }]),
    },
    {
      name: "JSON body with an offset past MAX_RECORDING_SECONDS",
      status: 422,
      error: "recording_too_long",
      run: () => app.inject({ method: "POST", url: "/v1/recordings", headers: auth, payload: { tracks: [{ key: "incoming/a.wav", participant: "A", offset_seconds: 86_000 }] } }),
    },
    { name: "fewer files than the manifest lists", status: 400, error: "track_count_mismatch", run: () => upload(manifest2, [{ name: "a.wav", data: wav }]) },
    {
      name: "more files than the manifest lists",
      status: 400,
      error: "track_count_mismatch",
      run: () => upload(manifest2, [{ name: "a.wav", data: wav }, { name: "b.wav", data: wav }, { name: "c.wav", data: wav }]),
    },
    { name: "invalid manifest JSON", status: 400, error: "invalid_manifest", run: () => upload('{"tracks": [', [{ name: "a.wav", data: wav }]) },
    { name: "manifest breaking the contract", status: 400, error: "invalid_manifest", run: () => upload({ tracks: [{ participant: "A", offset_seconds: -3 }] }, [{ name: "a.wav", data: wav }]) },
    { name: "files before the manifest", status: 400, error: "missing_manifest", run: () => upload(manifest2, [{ name: "a.wav", data: wav }], auth, { manifestFirst: false }) },
    {
      name: "a file over MAX_TRACK_BYTES (the first track already stored is removed again)",
      status: 413,
      error: "track_too_large",
      run: () => upload(manifest2, [{ name: "a.wav", data: wav }, { name: "b.wav", data: wavBytes(3) }]),
    },
    { name: "non-audio bytes named .wav", status: 415, error: "unsupported_media_type", run: () => upload({ tracks: [{ participant: "A" }] }, [{ name: "a.wav", data: Buffer.from("%PDF-1.7 this is not audio at all") }]) },
    {
      name: "an image named .m4a (ftyp with an image brand)",
      status: 415,
      error: "unsupported_media_type",
      run: () => upload({ tracks: [{ participant: "A" }] }, [{ name: "a.m4a", data: Buffer.concat([Buffer.from([0, 0, 0, 24]), Buffer.from("ftypheic"), Buffer.alloc(64)]) }]),
    },
    { name: "an empty file", status: 400, error: "empty_track", run: () => upload({ tracks: [{ participant: "A" }] }, [{ name: "a.wav", data: Buffer.alloc(0) }]) },
    { name: "a path-like file name", status: 400, error: "invalid_filename", run: () => upload({ tracks: [{ participant: "A" }] }, [{ name: "../../etc/passwd.wav", data: wav }]) },
    { name: "a Windows path file name", status: 400, error: "invalid_filename", run: () => upload({ tracks: [{ participant: "A" }] }, [{ name: "C:\\Users\\x\\a.wav", data: wav }]) },
    { name: "a file name with control characters", status: 400, error: "invalid_filename", run: () => upload({ tracks: [{ participant: "A" }] }, [{ name: "a\u0001b.wav", data: wav }]) },
    { name: "a file in the wrong form field", status: 400, error: "unexpected_field", run: () => upload({ tracks: [{ participant: "A" }] }, [{ name: "a.wav", data: wav, field: "audio" }]) },
    {
      name: "a participant name with markup",
      status: 400,
      error: "invalid_manifest",
      run: () => upload({ tracks: [{ participant: "<script>" }] }, [{ name: "a.wav", data: wav }]),
    },
    { name: "missing token", status: 401, error: "unauthorized", run: async () => upload({ tracks: [{ participant: "A" }] }, [{ name: "a.wav", data: wav }], {}) },
    {
      name: "wrong token",
      status: 401,
      error: "unauthorized",
      run: async () => upload({ tracks: [{ participant: "A" }] }, [{ name: "a.wav", data: wav }], { authorization: "Bearer not-the-token" }),
    },
    {
      name: "JSON body with no tracks",
      status: 400,
      error: "no_tracks",
      run: () => app.inject({ method: "POST", url: "/v1/recordings", headers: auth, payload: { tracks: [] } }),
    },
    {
      name: "JSON body referencing a missing object",
      status: 400,
      error: "missing_object",
      run: () => app.inject({ method: "POST", url: "/v1/recordings", headers: auth, payload: { tracks: [{ key: "incoming/nope.wav", participant: "A" }] } }),
    },
    {
      name: "JSON body naming an object outside INCOMING_PREFIX (another recording's track)",
      status: 403,
      error: "key_not_allowed",
      run: () => app.inject({ method: "POST", url: "/v1/recordings", headers: auth, payload: { tracks: [{ key: "recordings/some-id/tracks/0-a.wav", participant: "A" }] } }),
    },
    {
      name: "JSON body with a traversal key",
      status: 400,
      error: "invalid_manifest",
      run: () => app.inject({ method: "POST", url: "/v1/recordings", headers: auth, payload: { tracks: [{ key: "../x.wav", participant: "A" }] } }),
    },
    {
      name: "a body that is neither multipart nor JSON",
      status: 415,
      error: "unsupported_media_type",
      run: () => app.inject({ method: "POST", url: "/v1/recordings", headers: { ...auth, "content-type": "audio/wav" }, payload: wav }),
    },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const before = await svc.runningWorkflows();
      const res = await c.run();
      const body = res.json();
      assert.equal(res.statusCode, c.status, JSON.stringify(body));
      assert.equal(body.error, c.error);
      assert.equal(typeof body.message, "string");
      assert.ok(body.message.length > 5);
      await assertNothingLeft(before);
    });
  }

  test("a Conductor that refuses the workflow: 503, and the stored tracks and rows are removed again", async () => {
    const refusing: WorkflowGateway = { ...workflows, start: async () => Promise.reject(new Error("workflow multitrack_diarization is not registered")) };
    const app2 = await build({ config: svc.config, log: svc.log, pool: svc.pool, storage: svc.storage, workflows: refusing });
    try {
      const before = await svc.runningWorkflows();
      const { body, contentType } = await multipartBody(manifest2, [{ name: "a.wav", data: wav }, { name: "b.wav", data: wav }]);
      const res = await app2.inject({ method: "POST", url: "/v1/recordings", payload: body, headers: { ...auth, "content-type": contentType, "idempotency-key": "k-refused" } });
      assert.equal(res.statusCode, 503);
      assert.equal(res.json().error, "conductor_unavailable");
      await assertNothingLeft(before);
    } finally {
      await app2.close();
    }
  });
});

describe("accepted uploads", () => {
  test("202 {id, status}: tracks streamed to the bucket, rows stored, the workflow started with the PipelineInput", async () => {
    const a = wavBytes(0.5);
    const b = wavBytes(0.75);
    const res = await upload(manifest2, [{ name: "Alice mic (1).wav", data: a }, { name: "bob.wav", data: b }]);
    assert.equal(res.statusCode, 202, res.body);
    const { id, status } = res.json();
    assert.equal(status, "queued");
    assert.match(id, /^[0-9a-f-]{36}$/);
    assert.equal(res.headers.location, `/v1/recordings/${id}`);

    const keys = await svc.storage.list(`recordings/${id}/`);
    assert.deepEqual(keys, [`recordings/${id}/tracks/0-Alice_mic_1_.wav`, `recordings/${id}/tracks/1-bob.wav`]);
    assert.deepEqual(await svc.storage.get(keys[0]!), a);
    assert.deepEqual(await svc.storage.get(keys[1]!), b);

    const got = await app.inject({ method: "GET", url: `/v1/recordings/${id}`, headers: auth });
    assert.equal(got.statusCode, 200);
    const rec = got.json();
    assert.equal(rec.status, "queued");
    assert.deepEqual(
      rec.tracks.map((t: { index: number; participant: string; offset_seconds: number; size_bytes: number; format: string }) => [t.index, t.participant, t.offset_seconds, t.size_bytes, t.format]),
      [
        [0, "Alice", 0, a.length, "wav"],
        [1, "Bob", 1.5, b.length, "wav"],
      ],
    );
    assert.deepEqual(rec.progress, { completed_steps: 0, total_steps: 13, steps: [] });
    assert.equal(rec.result, undefined);

    const wf = (await (await svc.conductor(`/workflow/${rec.workflow_id}?includeTasks=false`)).json()) as { status: string; correlationId: string; input: Record<string, unknown>; workflowName: string };
    assert.equal(wf.workflowName, "multitrack_diarization");
    assert.equal(wf.status, "RUNNING");
    assert.equal(wf.correlationId, id);
    assert.deepEqual(wf.input, {
      recording_id: id,
      language: "en",
      namespace: "conductor",
      tracks: [
        { track_index: 0, participant: "Alice", offset_seconds: 0, source_key: keys[0] },
        { track_index: 1, participant: "Bob", offset_seconds: 1.5, source_key: keys[1] },
      ],
    });
    const notYet = await app.inject({ method: "GET", url: `/v1/recordings/${id}/transcript`, headers: auth });
    assert.equal(notYet.statusCode, 409);
    assert.equal(notYet.json().error, "not_completed");

    // DELETE: workflow terminated and removed, rows and objects gone
    const del = await app.inject({ method: "DELETE", url: `/v1/recordings/${id}`, headers: auth });
    assert.equal(del.statusCode, 204);
    assert.equal((await svc.conductor(`/workflow/${rec.workflow_id}`)).status, 404);
    assert.deepEqual(await svc.storage.list(`recordings/${id}/`), []);
    assert.equal((await app.inject({ method: "GET", url: `/v1/recordings/${id}`, headers: auth })).statusCode, 404);
    assert.equal((await app.inject({ method: "DELETE", url: `/v1/recordings/${id}`, headers: auth })).statusCode, 404);
  });

  test("an Idempotency-Key makes a retried upload return the same recording", async () => {
    const files = [{ name: "a.wav", data: wav }, { name: "b.wav", data: wav }];
    const headers = { ...auth, "idempotency-key": "upload-42" };
    const first = await upload(manifest2, files, headers);
    const second = await upload(manifest2, files, headers);
    assert.equal(first.statusCode, 202);
    assert.equal(second.statusCode, 202);
    assert.equal(second.json().id, first.json().id);
    assert.equal(second.headers["idempotent-replayed"], "true");
    const { rows } = await svc.pool.query(`SELECT count(*)::int AS n FROM recordings`);
    assert.equal(rows[0].n, 1);
    const other = await upload(manifest2, files, { ...auth, "idempotency-key": "upload-43" });
    assert.notEqual(other.json().id, first.json().id);
    for (const id of [first.json().id, other.json().id]) assert.equal((await app.inject({ method: "DELETE", url: `/v1/recordings/${id}`, headers: auth })).statusCode, 204);
  });

  test("a JSON body referencing tracks already in the bucket", async () => {
    await svc.storage.put("incoming/x/alice.wav", wavBytes(0.3));
    await svc.storage.put("incoming/x/bob.ogg", Buffer.concat([Buffer.from("OggS"), Buffer.alloc(60)]));
    const res = await app.inject({
      method: "POST",
      url: "/v1/recordings",
      headers: auth,
      payload: { language: "en", tracks: [{ key: "incoming/x/alice.wav", participant: "Alice" }, { key: "incoming/x/bob.ogg", participant: "Bob", offset_seconds: 2 }] },
    });
    assert.equal(res.statusCode, 202, res.body);
    const id = res.json().id as string;
    const rec = (await app.inject({ method: "GET", url: `/v1/recordings/${id}`, headers: auth })).json();
    assert.deepEqual(rec.tracks.map((t: { format: string }) => t.format), ["wav", "ogg"]);
    const wf = (await (await svc.conductor(`/workflow/${rec.workflow_id}`)).json()) as { input: { tracks: { source_key: string }[] } };
    assert.deepEqual(wf.input.tracks.map((t) => t.source_key), ["incoming/x/alice.wav", "incoming/x/bob.ogg"]);

    const notAudio = await app.inject({ method: "POST", url: "/v1/recordings", headers: auth, payload: { tracks: [{ key: "incoming/x/notes.txt", participant: "A" }] } });
    assert.equal(notAudio.statusCode, 400); // missing
    await svc.storage.put("incoming/x/notes.txt", Buffer.from("meeting notes, not audio"));
    const refused = await app.inject({ method: "POST", url: "/v1/recordings", headers: auth, payload: { tracks: [{ key: "incoming/x/notes.txt", participant: "A" }] } });
    assert.equal(refused.statusCode, 415);

    // deleting the recording leaves the client's own objects alone
    assert.equal((await app.inject({ method: "DELETE", url: `/v1/recordings/${id}`, headers: auth })).statusCode, 204);
    assert.deepEqual(await svc.storage.list("incoming/x/"), ["incoming/x/alice.wav", "incoming/x/bob.ogg", "incoming/x/notes.txt"]);
    await svc.storage.deletePrefix("incoming/");
  });

  test("list is newest first and paginated with a cursor; unknown ids are 404", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await upload({ tracks: [{ participant: "A" }] }, [{ name: "a.wav", data: wav }])).json().id);
    const page1 = (await app.inject({ method: "GET", url: "/v1/recordings?limit=2", headers: auth })).json();
    assert.deepEqual(page1.items.map((r: { id: string }) => r.id), [ids[2], ids[1]]);
    assert.equal(page1.items[0].tracks, 1);
    assert.ok(page1.next_cursor);
    const page2 = (await app.inject({ method: "GET", url: `/v1/recordings?limit=2&cursor=${page1.next_cursor}`, headers: auth })).json();
    assert.deepEqual(page2.items.map((r: { id: string }) => r.id), [ids[0]]);
    assert.equal(page2.next_cursor, null);
    assert.equal((await app.inject({ method: "GET", url: "/v1/recordings?cursor=garbage", headers: auth })).statusCode, 400);
    assert.equal((await app.inject({ method: "GET", url: "/v1/recordings?limit=1000", headers: auth })).statusCode, 400);
    for (const url of ["/v1/recordings/nope", "/v1/recordings/nope/transcript", "/v1/recordings/nope/audio", "/v1/recordings/nope/events"]) {
      const r = await app.inject({ method: "GET", url, headers: auth });
      assert.equal(r.statusCode, 404, url);
      assert.equal(r.json().error, "not_found");
    }
    assert.equal((await app.inject({ method: "POST", url: "/v1/recordings/nope/retry", headers: auth })).statusCode, 404);
    for (const id of ids) await app.inject({ method: "DELETE", url: `/v1/recordings/${id}`, headers: auth });
  });
});

describe("what the web page reads", () => {
  test("the list carries participants, and once completed the title and duration; the waveform route serves the mixdown's peaks", async () => {
    const id = (await upload({ tracks: [{ participant: "Ana" }, { participant: "Ben", offset_seconds: 1 }] }, [{ name: "a.wav", data: wav }, { name: "b.wav", data: wav }])).json().id as string;
    const item = async () => ((await app.inject({ method: "GET", url: "/v1/recordings?limit=100", headers: auth })).json().items as Record<string, unknown>[]).find((r) => r.id === id)!;
    const before = await item();
    assert.deepEqual([before.participants, before.title, before.duration], [["Ana", "Ben"], null, null]);
    const early = await app.inject({ method: "GET", url: `/v1/recordings/${id}/waveform`, headers: auth });
    assert.equal(early.statusCode, 409);
    assert.equal(early.json().error, "not_completed");
    const result = {
      duration: 7.5,
      participants: [{ speaker: 0, name: "Ana" }, { speaker: 1, name: "Ben" }],
      words: [{ text: "hi", start: 0.5, end: 0.9, speaker: 0 }],
      topics: [],
      title: "A short hello",
      short_summary: "",
      long_summary: "",
      action_items: [],
    };
    await createPgResultSink(svc.pool).saveResult(id, "conductor", result, { audio_key: `recordings/${id}/conductor/mix.mp3`, waveform: [0, 0.25, 1] });
    const after = await item();
    assert.deepEqual([after.status, after.participants, after.title, after.duration], ["completed", ["Ana", "Ben"], "A short hello", 7.5]);
    const wave = await app.inject({ method: "GET", url: `/v1/recordings/${id}/waveform`, headers: auth });
    assert.equal(wave.statusCode, 200, wave.body);
    assert.deepEqual(wave.json(), { duration: 7.5, peaks: [0, 0.25, 1] });
    assert.equal((await app.inject({ method: "GET", url: `/v1/recordings/nope/waveform`, headers: auth })).statusCode, 404);
    await app.inject({ method: "DELETE", url: `/v1/recordings/${id}`, headers: auth });
  });
});

describe("partial results", () => {
  test("a Result with a failed track: the recording is completed with a warning, each track says its status, the list and every transcript format say which track is missing", async () => {
    const id = (await upload({ tracks: [{ participant: "Ana" }, { participant: "Ben", offset_seconds: 1 }] }, [{ name: "a.wav", data: wav }, { name: "b.wav", data: wav }])).json().id as string;
    const pending = (await app.inject({ method: "GET", url: `/v1/recordings/${id}`, headers: auth })).json();
    assert.deepEqual(pending.warnings, []);
    assert.deepEqual(pending.tracks.map((t: { status: unknown }) => t.status), [null, null], "no track status before the Result");
    const failure = { step: "transcribe_track", code: "speech_recognition_failed", message: "the speech decoder failed" };
    await createPgResultSink(svc.pool).saveResult(id, "conductor", {
      duration: 7.5,
      participants: [{ speaker: 0, name: "Ana" }, { speaker: 1, name: "Ben" }],
      words: [{ text: "hello", start: 0.5, end: 0.9, speaker: 0 }],
      topics: [],
      title: "A short hello",
      short_summary: "",
      long_summary: "",
      action_items: [],
      tracks: [{ speaker: 0, name: "Ana", status: "ok" }, { speaker: 1, name: "Ben", status: "failed", error: failure }],
    });
    const done = (await app.inject({ method: "GET", url: `/v1/recordings/${id}`, headers: auth })).json();
    assert.equal(done.status, "completed");
    const warning = { code: "track_failed", message: "Ben's track (speaker 1) is missing from the transcript: the speech decoder failed", speaker: 1, cause: "speech_recognition_failed" };
    assert.deepEqual(done.warnings, [warning]);
    assert.deepEqual(done.tracks.map((t: { status: unknown }) => t.status), ["ok", "failed"]);
    assert.deepEqual(done.result.tracks[1], { speaker: 1, name: "Ben", status: "failed", error: failure });
    const listed = ((await app.inject({ method: "GET", url: "/v1/recordings?limit=100", headers: auth })).json().items as { id: string; warnings: unknown }[]).find((r) => r.id === id)!;
    assert.deepEqual(listed.warnings, [warning]);
    const get = async (format: string): Promise<string> => (await app.inject({ method: "GET", url: `/v1/recordings/${id}/transcript?format=${format}`, headers: auth })).body;
    assert.match(await get("text"), /^Note: Ben's track \(speaker 1\) is missing from the transcript: the speech decoder failed\n/);
    assert.match(await get("vtt"), /^WEBVTT\n\nNOTE Ben's track \(speaker 1\) is missing/);
    assert.match(await get("md"), /> \*\*Note:\*\* Ben's track \(speaker 1\) is missing/);
    const json = JSON.parse(await get("json")) as { tracks: unknown[]; warnings: unknown[] };
    assert.deepEqual(json.warnings, [warning]);
    assert.equal(json.tracks.length, 2);
    await app.inject({ method: "DELETE", url: `/v1/recordings/${id}`, headers: auth });
  });
});

describe("status from workers and Conductor", () => {
  /** The scheduled task of a workflow, as a worker would receive it (taken by id: other workflows' tasks are left alone). */
  async function scheduledTask(workflowId: string, taskType: string, timeoutMs = 20000): Promise<{ taskId: string; workflowInstanceId: string }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const wf = (await (await svc.conductor(`/workflow/${workflowId}?includeTasks=true`)).json()) as { tasks: { taskId: string; taskType: string; status: string }[] };
      const t = wf.tasks.find((x) => x.taskType === taskType && x.status === "SCHEDULED");
      if (t) return { taskId: t.taskId, workflowInstanceId: workflowId };
      if (Date.now() > deadline) throw new Error(`no scheduled ${taskType} task in ${workflowId}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  async function updateTask(t: { taskId: string; workflowInstanceId: string }, status: string, extra: Record<string, unknown> = {}): Promise<void> {
    const res = await svc.conductor(`/tasks`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ taskId: t.taskId, workflowInstanceId: t.workflowInstanceId, status, workerId: "api-test", ...extra }),
    });
    assert.ok(res.ok, `task update ${res.status}`);
  }

  test("events become per-step progress; a failed workflow → failed with its reason; retry resumes it in Conductor", async () => {
    const res = await upload({ tracks: [{ participant: "A" }] }, [{ name: "a.wav", data: wav }]);
    const id = res.json().id as string;
    const sink = createPgEventSink(svc.pool);
    const at = new Date().toISOString();
    const started = { recording_id: id, engine: "conductor", step: "prepare_track" as const, track_index: 0, status: "started" as const, worker_id: "h/0/1", at };
    assert.ok(await sink.record(started));
    assert.equal(await sink.record(started), undefined, "a re-sent event is stored once");
    await sink.record({ ...started, status: "succeeded", duration_ms: 12.5, at: new Date().toISOString() });
    // a shadow engine's events never show
    await sink.record({ ...started, engine: "bullmq", step: "plan_speech", track_index: undefined });
    let rec = (await app.inject({ method: "GET", url: `/v1/recordings/${id}`, headers: auth })).json();
    assert.equal(rec.status, "processing");
    assert.deepEqual(rec.progress.steps.map((s: { step: string; status: string; attempts: number; duration_ms: number }) => [s.step, s.status, s.attempts, s.duration_ms]), [["prepare_track", "succeeded", 1, 12.5]]);
    assert.equal(rec.progress.completed_steps, 1);

    // the first task fails terminally in Conductor: the API notices on the next look
    const task = await scheduledTask(rec.workflow_id, "plan_tracks");
    await updateTask(task, "FAILED_WITH_TERMINAL_ERROR", { reasonForIncompletion: "source key missing (test)" });
    const deadline = Date.now() + 15000;
    while (rec.status !== "failed" && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 2100)); // the per-recording look-up interval
      rec = (await app.inject({ method: "GET", url: `/v1/recordings/${id}`, headers: auth })).json();
    }
    assert.equal(rec.status, "failed");
    assert.match(rec.error, /source key missing \(test\)/);
    assert.equal(rec.failed_step, "plan_tracks");

    // SSE of a finished recording: replays everything and ends at once
    const sse = await app.inject({ method: "GET", url: `/v1/recordings/${id}/events`, headers: auth });
    assert.equal(sse.statusCode, 200);
    assert.match(String(sse.headers["content-type"]), /text\/event-stream/);
    const events = sse.body.split("\n\n").filter((b) => b.includes("event: progress")).map((b) => JSON.parse(b.split("\n").find((l) => l.startsWith("data: "))!.slice(6)));
    assert.deepEqual(events.map((e: { step: string; status: string }) => `${e.step}:${e.status}`), ["prepare_track:started", "prepare_track:succeeded", "pipeline:failed"]);
    assert.match(sse.body, /event: end\ndata: \{"id":"[^"]+","status":"failed","error":"[^"]*source key missing/);

    // Last-Event-ID resumes after what the client had
    const resumed = await app.inject({ method: "GET", url: `/v1/recordings/${id}/events`, headers: { ...auth, "last-event-id": String(events[1].id) } });
    assert.equal(resumed.body.split("\n\n").filter((b) => b.includes("event: progress")).length, 1);

    // retry: only failed recordings; Conductor reschedules the failed task
    const retry = await app.inject({ method: "POST", url: `/v1/recordings/${id}/retry`, headers: auth });
    assert.equal(retry.statusCode, 202, retry.body);
    assert.deepEqual(retry.json(), { id, status: "processing" });
    const wf = (await (await svc.conductor(`/workflow/${rec.workflow_id}`)).json()) as { status: string };
    assert.equal(wf.status, "RUNNING");
    const again = await scheduledTask(rec.workflow_id, "plan_tracks");
    assert.notEqual(again.taskId, task.taskId);
    const twice = await app.inject({ method: "POST", url: `/v1/recordings/${id}/retry`, headers: auth });
    assert.equal(twice.statusCode, 409);
    assert.equal(twice.json().error, "not_failed");

    // finalize's ResultSink completes it; the transcript is then available
    const results = createPgResultSink(svc.pool);
    const result = {
      duration: 4,
      participants: [{ speaker: 0, name: "A" }],
      words: [
        { text: "hello", start: 0.5, end: 0.9, speaker: 0 },
        { text: "world", start: 1.0, end: 1.4, speaker: 0 },
      ],
      topics: [],
      title: "Greeting",
      short_summary: "A says hello.",
      long_summary: "A says hello to the world.",
      action_items: [],
    };
    await results.saveResult(id, "bullmq", { ...result, title: "Shadow title" });
    rec = (await app.inject({ method: "GET", url: `/v1/recordings/${id}`, headers: auth })).json();
    assert.equal(rec.status, "processing", "a shadow Result does not complete the recording");
    await results.saveResult(id, "conductor", result);
    await results.saveResult(id, "conductor", result); // a retried finalize changes nothing
    rec = (await app.inject({ method: "GET", url: `/v1/recordings/${id}`, headers: auth })).json();
    assert.equal(rec.status, "completed");
    assert.deepEqual(rec.result, result);
    const text = await app.inject({ method: "GET", url: `/v1/recordings/${id}/transcript?format=text`, headers: auth });
    assert.equal(text.body, "[00:00.5] A: hello world\n");
    const { rows } = await svc.pool.query(`SELECT engine, result->>'title' AS title FROM results WHERE recording_id = $1 ORDER BY engine`, [id]);
    assert.deepEqual(rows, [{ engine: "bullmq", title: "Shadow title" }, { engine: "conductor", title: "Greeting" }]);
    const completedEvents = await svc.pool.query(`SELECT count(*)::int AS n FROM events WHERE recording_id = $1 AND step = 'pipeline' AND status = 'completed'`, [id]);
    assert.equal(completedEvents.rows[0].n, 1);
    // a late finalize (a zombie attempt) cannot replace the Result of a completed recording
    await results.saveResult(id, "conductor", { ...result, title: "Zombie title" });
    assert.equal((await svc.pool.query(`SELECT result->>'title' AS t FROM results WHERE recording_id = $1 AND engine = 'conductor'`, [id])).rows[0].t, "Greeting");
    await app.inject({ method: "DELETE", url: `/v1/recordings/${id}`, headers: auth });

    // nor complete one the reconciler failed: logged and ignored, no Result, no 'completed' event
    const up = await upload(manifest2, [{ name: "a.wav", data: wav }, { name: "b.wav", data: wav }]);
    const failedId = up.json().id as string;
    assert.ok(await createRecordingsRepo(svc.pool).markFailed(failedId, "[workflow_lost] test", null));
    await results.saveResult(failedId, "conductor", result);
    const after = (await app.inject({ method: "GET", url: `/v1/recordings/${failedId}`, headers: auth })).json();
    assert.equal(after.status, "failed");
    assert.equal(after.result, undefined);
    assert.equal(Number((await svc.pool.query(`SELECT count(*) AS n FROM results WHERE recording_id = $1`, [failedId])).rows[0].n), 0);
    assert.equal(Number((await svc.pool.query(`SELECT count(*) AS n FROM events WHERE recording_id = $1 AND step = 'pipeline' AND status = 'completed'`, [failedId])).rows[0].n), 0);
    await app.inject({ method: "DELETE", url: `/v1/recordings/${failedId}`, headers: auth });
  });
});
