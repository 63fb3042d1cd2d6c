/**
 * Transcripts through storage (workers/conductor/transcripts.ts), on a real local storage
 * directory: stored and read back into a JOIN dict or list unchanged; a transcript storage
 * lost or that holds something else fails with a reason naming the track and the key.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import type { TranscribeTrackOutput } from "../../pipeline/contracts/index.ts";
import { createLocalStorage } from "../../adapters/storage/local.ts";
import { TranscribeTrackConductorOutput } from "../../workers/conductor/contracts.ts";
import { loadTranscript, loadTranscripts, storeTranscript, TranscriptUnavailableError } from "../../workers/conductor/transcripts.ts";

let dir: string;
let storage: ReturnType<typeof createLocalStorage>;
before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "ts-transcripts-"));
  storage = createLocalStorage(dir);
});
after(() => rm(dir, { recursive: true, force: true }));

const out = (track: number, n: number): TranscribeTrackOutput => ({
  track_index: track,
  engine: "pocketsphinx",
  decoded_seconds: 2.5,
  track_seconds: 4,
  words: Array.from({ length: n }, (_, i) => ({ text: `w${track}-${i}`, start: i * 0.4, end: i * 0.4 + 0.3, speaker: track, confidence: 0.9 })),
});

test("stored words are read back into a JOIN dict and list exactly; other values pass through", async () => {
  const input = { recording_id: "rec-1", namespace: "conductor" as const };
  const a = await storeTranscript(storage, input, out(0, 3));
  const b = await storeTranscript(storage, input, out(1, 0));
  assert.deepEqual(TranscribeTrackConductorOutput.parse(a), a);
  assert.equal(a.words_key, "recordings/rec-1/conductor/transcript/track-0.json");
  assert.equal(a.word_count, 3);
  assert.equal((a as { words?: unknown }).words, undefined, "no words in what Conductor carries");
  assert.deepEqual(await loadTranscripts(storage, { transcribe_track_0: a, transcribe_track_1: b }), { transcribe_track_0: out(0, 3), transcribe_track_1: out(1, 0) });
  assert.deepEqual(await loadTranscripts(storage, [b, a]), [out(1, 0), out(0, 3)]);
  // a full output (another engine, or an older worker) and anything else: as they are
  assert.deepEqual(await loadTranscript(storage, out(2, 2)), out(2, 2));
  assert.deepEqual(await loadTranscript(storage, { track_index: 4 }), { track_index: 4 });
});

test("a zombie attempt of the same transcribe task cannot overwrite the live attempt's words: the JOIN reads what Conductor accepted", async () => {
  const input = { recording_id: "rec-3", namespace: "conductor" as const };
  // attempt A timed out (its worker paused), Conductor scheduled B, which finished first
  const live = await storeTranscript(storage, input, out(0, 4), "task-b");
  // then A wakes up and completes late, with other words
  const zombie = await storeTranscript(storage, input, out(0, 7), "task-a");
  assert.notEqual(zombie.words_key, live.words_key);
  assert.equal(live.words_key, "recordings/rec-3/conductor/transcript/track-0.task-b.json");
  // the JOIN holds the output of the attempt Conductor accepted (B): its words, all of them
  const joined = (await loadTranscripts(storage, { transcribe_track_0: live })) as Record<string, TranscribeTrackOutput>;
  assert.deepEqual(joined.transcribe_track_0, out(0, 4));
  // an attempt id is kept to a safe key segment
  const odd = await storeTranscript(storage, input, out(1, 1), "../x/y z");
  assert.equal(odd.words_key, "recordings/rec-3/conductor/transcript/track-1.xyz.json");
});

test("a transcript storage lost, or that holds other words, fails naming the track and the key", async () => {
  const input = { recording_id: "rec-2", namespace: "conductor" as const };
  const a = await storeTranscript(storage, input, out(0, 2));
  await storage.put(a.words_key, Buffer.from(JSON.stringify(out(0, 5).words)));
  await assert.rejects(loadTranscript(storage, a), (err: Error) => err instanceof TranscriptUnavailableError && /track 0: recordings\/rec-2\/conductor\/transcript\/track-0\.json does not hold the 2 words/.test(err.message));
  await storage.deletePrefix("recordings/rec-2/");
  await assert.rejects(loadTranscripts(storage, { t0: a }), (err: Error) => err instanceof TranscriptUnavailableError && /track 0: its transcript recordings\/rec-2\/conductor\/transcript\/track-0\.json is not in storage/.test(err.message));
  assert.equal((new TranscriptUnavailableError("x") as { retryable?: boolean }).retryable, false);
});
