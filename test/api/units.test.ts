/** Pure parts of the API: format sniffing, file names, ranges, transcript formats, SSE framing, tokens, manifests. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { Writable } from "node:stream";
import { tokenMatches } from "../../server/app.ts";
import { retryOutcome, retryWorkflow, snapshotOf } from "../../adapters/conductor/gateway.ts";
import { WorkflowRecord } from "../../adapters/conductor/client.ts";
import { parseRange } from "../../server/routes/recordings.ts";
import { sseMessage } from "../../server/sse.ts";
import { renderTranscript, timestamp } from "../../server/transcript.ts";
import { parseUploadManifest } from "../../server/upload/receive.ts";
import { EmptyTrackError, filenameProblem, NotAudioError, sniffAudio, TooLargeError, TrackGuard, trackKey } from "../../server/upload/sniff.ts";
import type { Result } from "../../pipeline/contracts/index.ts";
import { wavBytes } from "./harness.ts";

const b = (...parts: (string | number[])[]): Buffer => Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p, "latin1") : Buffer.from(p))));

test("audio formats are recognised from their first bytes", () => {
  assert.equal(sniffAudio(wavBytes(0.01)), "wav");
  assert.equal(sniffAudio(b("RF64", [0, 0, 0, 0], "WAVEfmt ")), "wav");
  assert.equal(sniffAudio(b("OggS", [0, 2, 0, 0, 0, 0, 0, 0])), "ogg");
  assert.equal(sniffAudio(b("ID3", [4, 0, 0, 0, 0, 0, 0, 0, 0])), "mp3");
  assert.equal(sniffAudio(b([0xff, 0xfb, 0x90, 0x64, 0, 0, 0, 0, 0, 0, 0, 0])), "mp3"); // MPEG-1 layer III frame
  assert.equal(sniffAudio(b([0xff, 0xf1, 0x50, 0x80, 0, 0, 0, 0, 0, 0, 0, 0])), "aac"); // ADTS
  assert.equal(sniffAudio(b("fLaC", [0, 0, 0, 34, 0, 0, 0, 0])), "flac");
  assert.equal(sniffAudio(b([0x1a, 0x45, 0xdf, 0xa3, 0x9f, 0x42, 0x86, 0x81, 0, 0, 0, 0])), "webm");
  assert.equal(sniffAudio(b([0, 0, 0, 0x20], "ftypM4A ")), "m4a");
  assert.equal(sniffAudio(b([0, 0, 0, 0x20], "ftypisom")), "m4a");
});

test("non-audio content is refused whatever it is called", () => {
  assert.equal(sniffAudio(b("%PDF-1.7\n%âãÏÓ")), undefined);
  assert.equal(sniffAudio(b([0x89], "PNG\r\n", [0x1a, 0x0a, 0, 0, 0, 0])), undefined);
  assert.equal(sniffAudio(b("RIFF", [0, 0, 0, 0], "AVI LIST")), undefined); // RIFF but not WAVE
  assert.equal(sniffAudio(b([0, 0, 0, 0x18], "ftypheic")), undefined); // HEIF image
  assert.equal(sniffAudio(b("PK", [3, 4, 0, 0, 0, 0, 0, 0, 0, 0])), undefined);
  assert.equal(sniffAudio(b([0xff, 0xff, 0xff, 0xff])), undefined); // sync bits but reserved fields
  assert.equal(sniffAudio(b("#!/bin/sh\nrm -rf")), undefined);
  assert.equal(sniffAudio(Buffer.alloc(0)), undefined);
});

test("file names: path-like and hostile names are refused; accepted ones get a safe key", () => {
  for (const bad of ["../a.wav", "a/b.wav", "..\\x.wav", "C:\\x\\a.wav", "c:a.wav", "..", ".", "a\u0000.wav", "a\nb.wav", "x".repeat(300), "", undefined]) {
    assert.ok(filenameProblem(bad), `should refuse ${JSON.stringify(bad)}`);
  }
  for (const ok of ["alice.wav", "Bob's mic (2).webm", "ünïcödé.ogg", ".hidden.wav"]) assert.equal(filenameProblem(ok), undefined, ok);
  assert.equal(trackKey("r1", 0, "Bob's mic (2).webm"), "recordings/r1/tracks/0-Bob_s_mic_2_.webm");
  assert.equal(trackKey("r1", 3, "ünïcödé.ogg"), "recordings/r1/tracks/3-n_c_d_.ogg");
});

async function through(guard: TrackGuard, chunks: Buffer[]): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(Readable.from(chunks), guard, new Writable({ write: (c: Buffer, _e, cb) => (out.push(c), cb()) }));
  return Buffer.concat(out);
}

test("TrackGuard holds bytes back until it knows the format, passes audio on unchanged, stops at the size limit", async () => {
  const wav = wavBytes(0.1);
  const chunks = [wav.subarray(0, 3), wav.subarray(3, 7), wav.subarray(7, 500), wav.subarray(500)];
  const g = new TrackGuard("track 0", 1 << 20);
  assert.deepEqual(await through(g, chunks), wav);
  assert.equal(g.format, "wav");
  assert.equal(g.bytes, wav.length);

  const seen: Buffer[] = [];
  const refuse = new TrackGuard("track 1", 1 << 20);
  refuse.on("data", (c: Buffer) => seen.push(c));
  await assert.rejects(pipeline(Readable.from([b("hello, "), b("this is text")]), refuse), NotAudioError);
  assert.equal(seen.length, 0, "nothing of a refused file is passed on");

  await assert.rejects(through(new TrackGuard("track 2", 1000), [wav.subarray(0, 600), wav.subarray(600, 1200)]), TooLargeError);
  await assert.rejects(through(new TrackGuard("track 3", 1000), []), EmptyTrackError);
  // shorter than the sniff window: decided at the end of the stream
  assert.deepEqual(await through(new TrackGuard("track 4", 1000), [b("OggS")]), b("OggS"));
  await assert.rejects(through(new TrackGuard("track 5", 1000), [b("abc")]), NotAudioError);
});

test("Range headers", () => {
  assert.deepEqual(parseRange("bytes=0-99", 1000), { start: 0, end: 99 });
  assert.deepEqual(parseRange("bytes=900-", 1000), { start: 900, end: 999 });
  assert.deepEqual(parseRange("bytes=-100", 1000), { start: 900, end: 999 });
  assert.deepEqual(parseRange("bytes=990-5000", 1000), { start: 990, end: 999 });
  assert.equal(parseRange("bytes=1000-", 1000), "unsatisfiable");
  assert.equal(parseRange("bytes=5-2", 1000), "unsatisfiable");
  assert.equal(parseRange("bytes=-0", 1000), "unsatisfiable");
  assert.equal(parseRange("bytes=0-1,5-6", 1000), undefined); // multi-range: whole file
  assert.equal(parseRange("items=0-1", 1000), undefined);
  assert.equal(parseRange(undefined, 1000), undefined);
});

const result: Result = {
  duration: 3725,
  participants: [
    { speaker: 0, name: "Alice" },
    { speaker: 1, name: "Bob <PM>" },
  ],
  words: [
    { text: "hello", start: 0.5, end: 0.9, speaker: 0 },
    { text: "there", start: 1.0, end: 1.3, speaker: 0 },
    { text: "hi", start: 1.6, end: 1.8, speaker: 1 },
    { text: "-->", start: 1.9, end: 2.0, speaker: 1 },
    { text: "later", start: 3723.25, end: 3724.5, speaker: 0 },
  ],
  topics: [],
  title: "Greetings",
  short_summary: "s",
  long_summary: "l",
  action_items: [],
};

test("transcripts: text, WebVTT and SRT cues by speaker; JSON with segments and words", () => {
  assert.equal(timestamp(3723.25, "."), "01:02:03.250");
  assert.equal(timestamp(0.5, ","), "00:00:00,500");
  assert.equal(renderTranscript(result, "text"), "[00:00.5] Alice: hello there\n[00:01.6] Bob <PM>: hi -->\n[1:02:03.3] Alice: later\n");
  assert.equal(
    renderTranscript(result, "vtt"),
    "WEBVTT\n\n1\n00:00:00.500 --> 00:00:01.300\n<v Alice>hello there\n\n2\n00:00:01.600 --> 00:00:02.000\n<v Bob &lt;PM&gt;>hi →\n\n3\n01:02:03.250 --> 01:02:04.500\n<v Alice>later\n",
  );
  assert.equal(
    renderTranscript(result, "srt"),
    "1\n00:00:00,500 --> 00:00:01,300\nAlice: hello there\n\n2\n00:00:01,600 --> 00:00:02,000\nBob <PM>: hi →\n\n3\n01:02:03,250 --> 01:02:04,500\nAlice: later\n",
  );
  const json = JSON.parse(renderTranscript(result, "json"));
  assert.deepEqual(json.segments[1], { speaker: 1, name: "Bob <PM>", start: 1.6, end: 2.0, text: "hi -->" });
  assert.equal(json.words.length, 5);
  assert.equal(renderTranscript({ ...result, words: [] }, "text"), "");
  assert.equal(renderTranscript({ ...result, words: [] }, "vtt"), "WEBVTT\n\n");
});

test("SSE messages are single-line JSON frames", () => {
  assert.equal(sseMessage({ id: 7, event: "progress", data: { a: "x\ny" } }), 'id: 7\nevent: progress\ndata: {"a":"x\\ny"}\n\n');
  assert.equal(sseMessage({ data: 1 }), "data: 1\n\n");
});

test("bearer tokens are compared exactly", () => {
  assert.equal(tokenMatches("Bearer secret-token", "secret-token"), true);
  assert.equal(tokenMatches("bearer secret-token", "secret-token"), true);
  assert.equal(tokenMatches("Bearer secret-tokeN", "secret-token"), false);
  assert.equal(tokenMatches("Bearer secret-token-longer", "secret-token"), false);
  assert.equal(tokenMatches("Basic c2VjcmV0", "secret-token"), false);
  assert.equal(tokenMatches(undefined, "secret-token"), false);
});

test("upload manifests: contract errors, limits and JSON errors each have their own code", () => {
  assert.deepEqual(parseUploadManifest('{"tracks":[{"participant":"A"}]}', 2), { language: "en", tracks: [{ participant: "A", offset_seconds: 0 }] });
  const code = (f: () => unknown): string => {
    try {
      f();
    } catch (e) {
      return (e as { code: string }).code;
    }
    return "none";
  };
  assert.equal(code(() => parseUploadManifest("{", 2)), "invalid_manifest");
  assert.equal(code(() => parseUploadManifest({ tracks: [] }, 2)), "no_tracks");
  assert.equal(code(() => parseUploadManifest({ tracks: [{ participant: "A" }, { participant: "B" }, { participant: "C" }] }, 2)), "too_many_tracks");
  assert.equal(code(() => parseUploadManifest({ tracks: [{ participant: "A" }, { participant: "a" }] }, 2)), "invalid_manifest");
  assert.equal(code(() => parseUploadManifest({ tracks: [{ participant: "A", path: "/etc/passwd" }] }, 2)), "invalid_manifest");
});

test("a Conductor workflow's failure is summarised with the failed step and its reason", () => {
  const s = snapshotOf({
    workflowId: "w1",
    status: "FAILED",
    tasks: [
      { status: "COMPLETED", taskDefName: "plan_tracks", taskType: "SIMPLE", referenceTaskName: "plan_tracks" },
      { status: "CANCELED", taskDefName: "prepare_track", taskType: "SIMPLE", referenceTaskName: "prepare_1" },
      { status: "FAILED", taskDefName: "prepare_track", taskType: "SIMPLE", referenceTaskName: "prepare_0", reasonForIncompletion: "ffmpeg: invalid data" },
    ],
  });
  assert.deepEqual(s, {
    workflow_id: "w1",
    status: "FAILED",
    reason: "prepare_0: ffmpeg: invalid data",
    failed_step: "prepare_track",
    // every worker task attempt, for the infra rescue's count (server/infra-rescue.ts)
    attempts: [
      { step: "plan_tracks", ref: "plan_tracks", status: "COMPLETED" },
      { step: "prepare_track", ref: "prepare_1", status: "CANCELED" },
      { step: "prepare_track", ref: "prepare_0", status: "FAILED" },
    ],
  });
  assert.equal(snapshotOf({ workflowId: "w2", status: "TERMINATED", reasonForIncompletion: "stopped by operator", tasks: [] }).reason, "stopped by operator");
});

/**
 * The task list of a real workflow after the server's retry race (read from the Conductor
 * database of a failed CI run; times are ms past a common origin): the JOIN failed 12 ms
 * after the retry on the old branch, and the retried branch task, created later, was
 * canceled without running.
 */
const raced = (status: "FAILED" | "RUNNING", copy: { status: string; startTime: number }) =>
  WorkflowRecord.parse({
    workflowId: "w",
    status,
    lastRetriedTime: 49446,
    tasks: [
      { taskId: "a", taskType: "plan_tracks", referenceTaskName: "plan_tracks", status: "COMPLETED", scheduledTime: 47222, startTime: 47266, endTime: 47293 },
      { taskId: "b", taskType: "FORK", referenceTaskName: "prepare_fork", status: "COMPLETED", scheduledTime: 47303, startTime: 47303, endTime: 47303 },
      { taskId: "c", taskType: "prepare_track", referenceTaskName: "prepare_track_0", status: "FAILED_WITH_TERMINAL_ERROR", scheduledTime: 47304, startTime: 47313, endTime: 47408 },
      { taskId: "d", taskType: "JOIN", referenceTaskName: "prepare_join", status: status === "FAILED" ? "FAILED" : "IN_PROGRESS", scheduledTime: 47304, startTime: 47303, endTime: status === "FAILED" ? 49458 : 0 },
      { taskId: "e", taskType: "prepare_track", referenceTaskName: "prepare_track_0", status: copy.status, scheduledTime: 49506, startTime: copy.startTime, endTime: copy.status === "CANCELED" ? 49510 : 0 },
    ],
  });

test("after a retry: a workflow failed by its JOIN before the retried task ran lost the server's race; otherwise started or pending", () => {
  assert.equal(retryOutcome(raced("FAILED", { status: "CANCELED", startTime: 0 })), "lost");
  assert.equal(retryOutcome(raced("RUNNING", { status: "SCHEDULED", startTime: 0 })), "pending");
  assert.equal(retryOutcome(raced("RUNNING", { status: "IN_PROGRESS", startTime: 49520 })), "started");
  // the retried task ran and failed again: a real failure, not the race
  assert.equal(retryOutcome(raced("FAILED", { status: "FAILED", startTime: 49520 })), "started");
  assert.equal(retryOutcome(WorkflowRecord.parse({ workflowId: "w", status: "COMPLETED" })), "started");
});

test("retryWorkflow retries again after a lost race, and stops after its attempts", async () => {
  const script = [raced("FAILED", { status: "CANCELED", startTime: 0 }), raced("RUNNING", { status: "SCHEDULED", startTime: 0 }), raced("RUNNING", { status: "IN_PROGRESS", startTime: 49600 })];
  let retries = 0;
  const warned: unknown[] = [];
  const api = {
    retry: async () => void retries++,
    getWorkflow: async () => script.shift() ?? raced("RUNNING", { status: "IN_PROGRESS", startTime: 49600 }),
  };
  await retryWorkflow(api, "w", { warn: (o: unknown) => void warned.push(o) } as never, { stepMs: 1 });
  assert.equal(retries, 2, "once, then once more after the lost race");
  assert.equal(warned.length, 1);
  const always = { retry: async () => void retries++, getWorkflow: async () => raced("FAILED", { status: "CANCELED", startTime: 0 }) };
  retries = 0;
  await assert.rejects(retryWorkflow(always, "w", { warn: () => {} } as never, { attempts: 2, stepMs: 1 }), /failed again before its retried tasks ran, 2 times/);
  assert.equal(retries, 2);
});
