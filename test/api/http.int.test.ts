/**
 * The API over real HTTP (`startServer`, as `trackscribe serve` runs it) with Postgres,
 * s3rver and the real Conductor server, and the Conductor worker host in this process:
 *   - a track over the limit is refused with 413 while the client is still sending, and the
 *     server stops reading; a client that disconnects mid-upload leaves nothing behind;
 *   - the fixture meeting goes through the whole pipeline: upload, SSE to completion,
 *     transcript in every format, audio with ranges, delete;
 *   - a recording that fails is retried from the failed task and completes.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, openAsBlob } from "node:fs";
import { readFile } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Result } from "../../pipeline/contracts/index.ts";
import { createConductorTaskEventHandler, createPgResultSink } from "../../adapters/postgres/sinks.ts";
import { startServer, type RunningServer } from "../../server/server.ts";
import { followEvents as followStream, startApiServices, wavBytes, type ApiServices, type SseEvent } from "./harness.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const TOKEN = "http-test-token-0123";
const auth = { authorization: `Bearer ${TOKEN}` };
const LIMIT = 10 * 1024 * 1024;
let svc: ApiServices;
let server: RunningServer;

before(async () => {
  svc = await startApiServices({ API_TOKEN: TOKEN, MAX_TRACK_BYTES: String(LIMIT), API_RECONCILE_SECONDS: "1", SSE_HEARTBEAT_SECONDS: "1" });
  server = await startServer(svc.config, { log: svc.log });
});
after(async () => {
  await server?.close();
  await svc?.close();
});

async function nothingLeft(runningBefore: string[], timeoutMs = 15000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let state: unknown;
  for (;;) {
    const counts = await svc.rowCounts();
    const bucket = await svc.bucketState();
    state = { rows: Object.entries(counts).filter(([, n]) => n > 0), ...bucket, workflows: await svc.runningWorkflows() };
    const expected = { rows: [], keys: [], pendingUploads: 0, workflows: runningBefore };
    try {
      assert.deepEqual(state, expected);
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * Stream a multipart upload by hand: manifest, then each file from a generator. `stopAfter`
 * destroys the connection after that many bytes of the body.
 */
function rawUpload(
  manifest: unknown,
  files: { name: string; chunks: () => Generator<Buffer> }[],
  opts: { stopAfter?: number } = {},
): Promise<{ status?: number; body?: string; written: number; error?: string }> {
  const boundary = "----trackscribe-test-boundary";
  const url = new URL(`${server.url}/v1/recordings`);
  return new Promise((resolve) => {
    let written = 0;
    let settled = false;
    const done = (r: { status?: number; body?: string; error?: string }): void => {
      if (settled) return;
      settled = true;
      resolve({ ...r, written });
    };
    const req = http.request({
      host: url.hostname,
      port: url.port,
      path: url.pathname,
      method: "POST",
      headers: { ...auth, "content-type": `multipart/form-data; boundary=${boundary}`, "transfer-encoding": "chunked" },
    });
    req.on("response", (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => done({ status: res.statusCode, body }));
      res.on("error", () => done({ status: res.statusCode, body }));
    });
    req.on("error", (err) => {
      // the server closing the connection after answering shows up here too; give the response a moment
      setTimeout(() => done({ error: err.message }), 500);
    });
    const write = async (b: Buffer): Promise<boolean> => {
      if (settled || req.destroyed) return false;
      if (opts.stopAfter !== undefined && written + b.length > opts.stopAfter) {
        req.destroy();
        setTimeout(() => done({ error: "client disconnected on purpose" }), 100);
        return false;
      }
      written += b.length;
      if (!req.write(b)) await new Promise<void>((r) => req.once("drain", r).once("close", r));
      return true;
    };
    void (async () => {
      const head = (name: string, extra: string): Buffer => Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="${name}"${extra}\r\n\r\n`);
      if (!(await write(head("manifest", "")))) return;
      if (!(await write(Buffer.from(`${JSON.stringify(manifest)}\r\n`)))) return;
      for (const f of files) {
        if (!(await write(head("track", `; filename="${f.name}"\r\ncontent-type: audio/wav`)))) return;
        for (const c of f.chunks()) if (!(await write(c))) return;
        if (!(await write(Buffer.from("\r\n")))) return;
      }
      if (!(await write(Buffer.from(`--${boundary}--\r\n`)))) return;
      req.end();
    })();
  });
}

function* wavStream(totalBytes: number): Generator<Buffer> {
  const header = wavBytes(0).subarray(0, 44);
  yield header;
  const chunk = Buffer.alloc(64 * 1024, 1);
  for (let sent = 44; sent < totalBytes; sent += chunk.length) yield chunk;
}

describe("uploads over HTTP", () => {
  test("a track over MAX_TRACK_BYTES: 413 while the client is still sending, the rest is not read, nothing is kept", async () => {
    const before = await svc.runningWorkflows();
    const r = await rawUpload({ tracks: [{ participant: "A" }, { participant: "B" }] }, [
      { name: "a.wav", chunks: () => wavStream(100 * 1024) },
      { name: "b.wav", chunks: () => wavStream(400 * 1024 * 1024) },
    ]);
    assert.equal(r.status, 413, JSON.stringify(r));
    const body = JSON.parse(r.body!);
    assert.equal(body.error, "track_too_large");
    assert.match(body.message, /track 1 \(B\) is larger than the limit of 10485760 bytes/);
    // the client got its answer after little more than the limit, not after 400 MB
    assert.ok(r.written < 4 * LIMIT, `client wrote ${r.written} bytes before the server stopped reading`);
    await nothingLeft(before);
  });

  test("a client that disconnects mid-upload leaves no rows, objects, pending multipart parts or workflows", async () => {
    const before = await svc.runningWorkflows();
    const r = await rawUpload(
      { tracks: [{ participant: "A" }, { participant: "B" }] },
      [
        { name: "a.wav", chunks: () => wavStream(200 * 1024) },
        { name: "b.wav", chunks: () => wavStream(LIMIT - 1024) },
      ],
      { stopAfter: 9.5 * 1024 * 1024 }, // inside the second track, past its first 8 MiB part
    );
    assert.equal(r.status, undefined);
    await nothingLeft(before);
  });
});

// ---- the whole pipeline with the Conductor worker host in this process -----------------
const runtimeModule = path.join(root, "workers", "conductor", "runtime.ts");
const haveWorkers = existsSync(runtimeModule);

async function followEvents(id: string, timeoutMs: number): Promise<SseEvent[]> {
  return followStream(server.url, id, auth, timeoutMs);
}

describe("the whole pipeline", { skip: haveWorkers ? false : "the Conductor worker host is not in this build" }, () => {
  let stopRuntime: (() => Promise<unknown>) | undefined;
  let fixtureDir = "";
  before(async () => {
    // the fixture meeting (built on first use, cached by version stamp)
    const { buildFixtures, defaultFixtureDir } = await import("../../scripts/build-fixtures.ts");
    fixtureDir = path.dirname((await buildFixtures(defaultFixtureDir())).manifestPath);
    const { startConductorRuntime } = (await import(runtimeModule)) as typeof import("../../workers/conductor/runtime.ts");
    const { createStepPorts } = await import("../../workers/step-ports.ts");
    const config = { ...svc.config, WORKER_CONCURRENCY: 2, RECONCILER_ENABLED: false, HEAVY_STEPS_IN_CHILD: false };
    const runtime = await startConductorRuntime(config, {
      storage: svc.storage,
      stepDeps: createStepPorts(config, { storage: svc.storage, log: svc.log, results: createPgResultSink(svc.pool, { log: svc.log }) }),
      log: svc.log,
      onTaskEvent: createConductorTaskEventHandler(svc.pool, { log: svc.log }),
      // fail fast in the retry test: no automatic retries of prepare_track
      taskOverrides: { prepare_track: { retryCount: 0 } },
      reconciler: false,
    });
    stopRuntime = () => runtime.stop(10_000);
  });
  after(async () => {
    await stopRuntime?.();
  });

  test("upload the fixture meeting, follow SSE to completion, fetch the transcript in every format and the audio, delete it", async () => {
    const dir = fixtureDir;
    const manifest = JSON.parse(await readFile(path.join(dir, "manifest.json"), "utf8")) as { language: string; tracks: { path: string; participant: string; offset_seconds: number }[] };
    const form = new FormData();
    form.append("manifest", JSON.stringify({ language: manifest.language, tracks: manifest.tracks.map(({ participant, offset_seconds }) => ({ participant, offset_seconds })) }));
    for (const t of manifest.tracks) form.append("track", await openAsBlob(path.join(dir, t.path)), t.path);
    const up = await fetch(`${server.url}/v1/recordings`, { method: "POST", body: form, headers: auth });
    assert.equal(up.status, 202, await up.clone().text());
    const { id } = (await up.json()) as { id: string };

    const events = await followEvents(id, 240_000);
    const progress = events.filter((e) => e.event === "progress").map((e) => e.data);
    const end = events.at(-1)!;
    assert.equal(end.event, "end", JSON.stringify(events.slice(-3)));
    assert.equal(end.data.status, "completed", JSON.stringify(end.data));
    for (const step of ["prepare_track", "transcribe_track"]) {
      assert.deepEqual(
        progress.filter((e) => e.step === step && e.status === "succeeded").map((e) => e.track_index).sort(),
        [0, 1, 2],
        `${step} succeeded once per track`,
      );
    }
    for (const step of ["plan_speech", "merge_transcripts", "suppress_bleed", "detect_topics", "generate_title", "generate_summary", "extract_action_items", "mixdown"]) {
      assert.ok(progress.some((e) => e.step === step && e.status === "succeeded"), `${step} succeeded`);
    }
    // finalize stores the Result and so completes the recording (its own 'succeeded' may trail)
    assert.ok(progress.some((e) => e.step === "finalize" && e.status === "started"));
    const completed = progress.find((e) => e.step === "pipeline" && e.status === "completed");
    assert.deepEqual(completed, { ...completed, completed_steps: 15, total_steps: 15 });
    const ids = progress.map((e) => Number(e.id));
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b), "events arrive in order");

    const rec = (await (await fetch(`${server.url}/v1/recordings/${id}`, { headers: auth })).json()) as { status: string; result: Result; progress: { completed_steps: number } };
    assert.equal(rec.status, "completed");
    const result = Result.parse(rec.result);
    assert.deepEqual(result.participants.map((p) => p.name), ["Alice", "Bob", "Carol"]);
    assert.deepEqual([...new Set(result.words.map((w) => w.speaker))].sort(), [0, 1, 2], "every speaker has words");
    assert.equal(rec.progress.completed_steps, 15);

    const get = (format: string) => fetch(`${server.url}/v1/recordings/${id}/transcript?format=${format}`, { headers: auth });
    const json = (await (await get("json")).json()) as { segments: { name: string; text: string }[]; words: unknown[] };
    assert.equal(json.words.length, result.words.length);
    const text = await (await get("text")).text();
    for (const name of ["Alice", "Bob", "Carol"]) assert.match(text, new RegExp(`^\\[\\d\\d:\\d\\d\\.\\d\\] ${name}: \\S`, "m"));
    const vtt = await get("vtt");
    assert.match(vtt.headers.get("content-type") ?? "", /^text\/vtt/);
    assert.match(await vtt.text(), /^WEBVTT\n\n1\n\d\d:\d\d:\d\d\.\d{3} --> \d\d:\d\d:\d\d\.\d{3}\n<v (Alice|Bob|Carol)>/);
    assert.match(await (await get("srt")).text(), /^1\n\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}\n(Alice|Bob|Carol): /);
    assert.equal((await get("pdf")).status, 400);

    const audio = await fetch(`${server.url}/v1/recordings/${id}/audio`, { headers: auth });
    assert.equal(audio.status, 200);
    assert.equal(audio.headers.get("content-type"), "audio/mpeg");
    assert.equal(audio.headers.get("accept-ranges"), "bytes");
    const mp3 = Buffer.from(await audio.arrayBuffer());
    assert.equal(Number(audio.headers.get("content-length")), mp3.length);
    assert.ok(mp3.subarray(0, 3).toString("latin1") === "ID3" || (mp3[0] === 0xff && (mp3[1]! & 0xe0) === 0xe0), "an MP3");
    const part = await fetch(`${server.url}/v1/recordings/${id}/audio`, { headers: { ...auth, range: "bytes=100-199" } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get("content-range"), `bytes 100-199/${mp3.length}`);
    assert.deepEqual(Buffer.from(await part.arrayBuffer()), mp3.subarray(100, 200));
    assert.equal((await fetch(`${server.url}/v1/recordings/${id}/audio`, { headers: { ...auth, range: `bytes=${mp3.length}-` } })).status, 416);

    const before = (await svc.storage.list(`recordings/${id}/`)).length;
    assert.ok(before > 3, "tracks and derived audio are stored under the recording");
    assert.equal((await fetch(`${server.url}/v1/recordings/${id}`, { method: "DELETE", headers: auth })).status, 204);
    assert.deepEqual(await svc.storage.list(`recordings/${id}/`), []);
    assert.equal((await fetch(`${server.url}/v1/recordings/${id}`, { headers: auth })).status, 404);
    assert.equal(Number((await svc.pool.query(`SELECT count(*) FROM events WHERE recording_id = $1`, [id])).rows[0].count), 0);
  });

  test("a recording whose only track fails ends failed (all_tracks_failed); fixed and retried, its tracks run again and it completes", async () => {
    // a bucket object that claims to be Ogg but is not decodable: prepare_track gives up on the
    // track (no retries), and with no track left plan_speech fails the meeting
    const key = "incoming/retry/track.ogg";
    await svc.storage.put(key, Buffer.concat([Buffer.from("OggS"), Buffer.alloc(4096, 7)]));
    const up = await fetch(`${server.url}/v1/recordings`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ tracks: [{ key, participant: "Solo" }] }),
    });
    assert.equal(up.status, 202);
    const { id } = (await up.json()) as { id: string };
    const failed = await followEvents(id, 120_000);
    assert.deepEqual(failed.at(-1)?.data.status, "failed", JSON.stringify(failed.slice(-3)));
    const rec = (await (await fetch(`${server.url}/v1/recordings/${id}`, { headers: auth })).json()) as { status: string; error: string; error_code: string; failed_step: string };
    assert.equal(rec.status, "failed");
    assert.equal(rec.failed_step, "plan_speech");
    assert.equal(rec.error_code, "all_tracks_failed");
    assert.match(rec.error, /no track could be processed: track 0: /);

    // fix the input, retry: the workflow runs again from its first task, the track included
    await svc.storage.put(key, wavBytes(1.5));
    const retry = await fetch(`${server.url}/v1/recordings/${id}/retry`, { method: "POST", headers: auth });
    assert.equal(retry.status, 202);
    const resumed = await followEvents(id, 180_000);
    assert.equal(resumed.at(-1)?.data.status, "completed", JSON.stringify(resumed.slice(-3)));
    const statuses = resumed.filter((e) => e.event === "progress").map((e) => `${e.data.step}:${e.data.status}`);
    assert.ok(statuses.indexOf("pipeline:failed") < statuses.indexOf("pipeline:retrying"));
    assert.equal(statuses.filter((s) => s === "prepare_track:started").length, 2, "the track ran again");
    const done = (await (await fetch(`${server.url}/v1/recordings/${id}`, { headers: auth })).json()) as { status: string; result: Result; warnings: unknown[] };
    assert.equal(done.status, "completed");
    assert.deepEqual(done.warnings, []);
    assert.deepEqual(Result.parse(done.result).tracks, [{ speaker: 0, name: "Solo", status: "ok" }]);
    assert.equal((await fetch(`${server.url}/v1/recordings/${id}`, { method: "DELETE", headers: auth })).status, 204);
    await svc.storage.deletePrefix("incoming/retry/");
  });
});
