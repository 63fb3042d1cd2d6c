/**
 * Everything crossing Conductor, BullMQ or HTTP is JSON. For every schema in
 * pipeline/contracts, a typed value serialized to JSON and parsed back with the same
 * schema must rebuild an equal value (nested objects such as Topic.words included).
 * A schema added to the contracts without a sample here fails the first test.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { z } from "zod/v4";
import * as C from "../../pipeline/contracts/index.ts";

const word = (text: string, start: number, speaker: number, confidence?: number): C.Word => ({
  text,
  start,
  end: Math.round((start + 0.35) * 1000) / 1000,
  speaker,
  ...(confidence === undefined ? {} : { confidence }),
});
const words: C.Word[] = [word("hello", 0.12, 0), word("budget", 0.61, 0, 0.82), word("yes", 1.05, 1), word("quarter", 2.5, 2, 1)];
const topic: C.Topic = { id: "topic-1", title: "Budget", summary: "Hello budget.", timestamp: 0.12, duration: 2.73, words };
const topic2: C.Topic = { id: "topic-2", title: "Ünïcödé — “quotes”", summary: "", timestamp: 3, duration: 0, words: [] };
const trackSpec = (i: number): C.TrackSpec => ({ track_index: i, participant: ["Alice", "Bob", "Zoë"][i]!, offset_seconds: i * 1.5, source_key: `recordings/r1/tracks/${i}-a.wav` });
const prepared = (i: number): C.PreparedTrack => ({
  track_index: i,
  offset_seconds: i * 1.5,
  pcm_key: `recordings/r1/inprocess/pcm/${i}.wav`,
  envelope_key: `recordings/r1/inprocess/env/${i}.f32`,
  frame_seconds: 0.02,
  duration_seconds: 61.25,
});
const plan = (i: number): C.TrackSpeechPlan => ({ ...prepared(i), spans: [{ start: 0.5, end: 3.25 }, { start: 10, end: 12.5 }] });
const transcribed: C.TranscribeTrackOutput = { track_index: 1, words: [word("yes", 1.05, 1)], engine: "pocketsphinx", decoded_seconds: 5.25, track_seconds: 61.25 };
const failure: C.TrackFailure = { step: "prepare_track", code: "not_audio", message: "this is not audio" };
const result: C.Result = {
  duration: 64.25,
  participants: [{ speaker: 0, name: "Alice" }, { speaker: 1, name: "Bob" }],
  words,
  topics: [topic, topic2],
  title: "Budget",
  short_summary: "Hello budget.",
  long_summary: "Budget: Hello budget.",
  action_items: [{ text: "We will send the budget by Friday.", speaker: 0, start: 0.5 }],
};

const samples: Record<string, unknown[]> = {
  Word: words,
  TrackTranscript: [{ track_index: 0, words }, { track_index: 3, words: [] }],
  Participant: [{ speaker: 2, name: "Zoë" }],
  Topic: [topic, topic2],
  Result: [
    result,
    { ...result, words: [], topics: [], title: "Untitled meeting" },
    { ...result, tracks: [{ speaker: 0, name: "Alice", status: "ok" }, { speaker: 1, name: "Bob", status: "failed", error: failure }] },
  ],
  TrackFailure: [failure],
  TrackStatus: [{ speaker: 1, name: "Bob", status: "failed", error: failure }, { speaker: 0, name: "Alice", status: "ok" }],
  FailedTrack: [{ track_index: 1, failed: failure }],
  TrackOutcome: [{ track_index: 1, status: "failed", failed: failure }, { track_index: 0, status: "ok" }],
  Warning: [{ code: "track_failed", message: "Bob's track (speaker 1) is missing from the transcript: this is not audio", speaker: 1, cause: "not_audio" }],
  Span: [{ start: 0, end: 1.5 }],
  ParticipantName: ["Alice", "  Bob  "],
  Language: ["en", "en-US"],
  StorageKey: ["recordings/r1/tracks/0-a.wav"],
  Namespace: ["inprocess", "bullmq"],
  RecordingId: ["r1", "cli-6f1c0d2e-aaaa-4bbb-8ccc-123456789abc"],
  WorkerStamp: [{ worker_id: "host/0/123", build: "0.1.0+abc" }],
  TrackSpec: [trackSpec(0)],
  PipelineInput: [{ recording_id: "r1", language: "en", namespace: "conductor", tracks: [trackSpec(1), trackSpec(0), trackSpec(2)] }],
  FileManifest: [{ language: "en", tracks: [{ path: "a.wav", participant: "Alice", offset_seconds: 0 }, { path: "b.webm", participant: "Bob" }] }],
  UploadManifest: [{ tracks: [{ participant: "Alice", offset_seconds: 2.5 }] }],
  KeyManifest: [{ language: "de", tracks: [{ key: "uploads/x/a.wav", participant: "Alice" }] }],
  PrepareTrackInput: [{ recording_id: "r1", namespace: "inprocess", track: trackSpec(2) }],
  PreparedTrack: [prepared(0)],
  JoinOutput: [{ transcribe_track_10: { track_index: 10 }, transcribe_track_2: { track_index: 2 } }, [{ track_index: 0 }]],
  PlanSpeechInput: [{ recording_id: "r1", namespace: "inprocess", language: "en", expected_tracks: [0, 1], prepared: { prep_1: prepared(1), prep_0: prepared(0) } }],
  TrackSpeechPlan: [plan(1)],
  SpeechPlan: [
    { duration: 64.25, tracks: [plan(0), plan(1)], track_seconds: 122.5, planned_seconds: 10.5 },
    { duration: 64.25, tracks: [plan(0)], track_seconds: 61.25, planned_seconds: 5.25, failed_tracks: [{ track_index: 1, failed: failure }] },
  ],
  TranscribeTrackInput: [{ recording_id: "r1", namespace: "inprocess", language: "en", track: plan(0) }],
  TranscribeTrackOutput: [transcribed],
  MergeTranscriptsInput: [{ expected_tracks: [0, 1], transcripts: [transcribed, { track_index: 0, words: [] }] }],
  MergeTranscriptsOutput: [
    { words, track_count: 3 },
    { words, track_count: 1, track_status: [{ track_index: 0, status: "ok" }, { track_index: 1, status: "failed", failed: failure }] },
  ],
  SuppressBleedInput: [{ words, tracks: [plan(0), plan(1), plan(2)] }],
  SuppressBleedOutput: [{ words: words.slice(0, 2), dropped: 2, dropped_by_track: { "1": 1, "2": 1 } }],
  DetectTopicsInput: [{ language: "en", words }],
  DetectTopicsOutput: [{ topics: [topic, topic2] }, { topics: [] }],
  GenerateTitleInput: [{ language: "en", topics: [topic] }],
  GenerateTitleOutput: [{ title: "Budget" }],
  GenerateSummaryInput: [{ language: "en", topics: [topic, topic2] }],
  GenerateSummaryOutput: [{ short_summary: "Hello budget.", long_summary: "Budget: Hello budget.\n\nMore." }],
  ActionItem: [{ text: "Let's ship the release on Monday.", speaker: 1, start: 12.5 }],
  ExtractActionItemsInput: [{ language: "en", words }],
  ExtractActionItemsOutput: [{ action_items: [{ text: "I will send the numbers.", speaker: 0, start: 0.5 }] }, { action_items: [] }],
  MixdownInput: [{ recording_id: "r1", namespace: "inprocess", tracks: [plan(0)] }, { recording_id: "r1", namespace: "inprocess", tracks: [plan(0)], peaks: 64 }],
  MixdownOutput: [{ audio_key: "recordings/r1/inprocess/mix.mp3", waveform: [0, 0.25, 1], duration: 64.25 }],
  FinalizeInput: [
    {
      recording_id: "r1",
      namespace: "inprocess",
      tracks: [trackSpec(0), trackSpec(1)],
      duration: 64.25,
      words,
      topics: [topic],
      title: "Budget",
      short_summary: "s",
      long_summary: "l",
      action_items: [{ text: "We need to fix the budget.", speaker: 1, start: 3 }],
      audio_key: "recordings/r1/inprocess/mix.mp3",
      waveform: [0.5],
    },
    { recording_id: "r1", namespace: "inprocess", tracks: [trackSpec(0)], duration: 0, words: [], topics: [], title: "Untitled meeting", short_summary: "", long_summary: "", action_items: [] },
  ],
  StepName: ["prepare_track", "finalize"],
  ProgressEvent: [
    { recording_id: "r1", engine: "inprocess", step: "transcribe_track", track_index: 2, status: "succeeded", duration_ms: 1234, worker_id: "h/0/1", at: "2025-01-01T00:00:00.000Z" },
    { recording_id: "r1", engine: "conductor", step: "pipeline", status: "completed", at: "2025-01-01T00:00:00.000Z" },
  ],
};

const schemas = Object.entries(C as Record<string, unknown>).filter((e): e is [string, z.ZodType] => e[1] instanceof z.ZodType);

test("every contract schema has round-trip samples", () => {
  const missing = schemas.map(([name]) => name).filter((name) => !samples[name]?.length);
  assert.deepEqual(missing, [], `add samples to test/contracts/roundtrip.test.ts for: ${missing.join(", ")}`);
});

for (const [name, schema] of schemas) {
  test(`${name}: parse(JSON.parse(JSON.stringify(x))) deep-equals x`, () => {
    for (const sample of samples[name] ?? []) {
      const typed = schema.parse(sample);
      const rebuilt = schema.parse(JSON.parse(JSON.stringify(typed)));
      assert.deepStrictEqual(rebuilt, typed);
    }
  });
}

test("nested topic words come back as Word objects, not strings or dicts of another shape", () => {
  const rebuilt = C.Result.parse(JSON.parse(JSON.stringify(result)));
  const first = rebuilt.topics[0]!.words[1]!;
  assert.deepStrictEqual(first, words[1]);
  assert.equal(typeof first.start, "number");
  assert.equal(rebuilt.topics[0]!.words.length, words.length);
});

test("JSON that lost its types is refused, not silently coerced", () => {
  const json = JSON.parse(JSON.stringify(result)) as { topics: { words: unknown }[] };
  json.topics[0]!.words = { words: "hello budget" };
  assert.equal(C.Result.safeParse(json).success, false);
  assert.equal(C.Word.safeParse({ text: "a", start: "1", end: 2, speaker: 0 }).success, false);
});
