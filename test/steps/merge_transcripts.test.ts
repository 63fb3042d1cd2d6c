import assert from "node:assert/strict";
import { test } from "node:test";
import type { TranscribeTrackOutput, Word } from "../../pipeline/contracts/index.ts";
import { JoinNormalizationError } from "../../pipeline/join.ts";
import { mergeTranscripts } from "../../pipeline/steps/merge_transcripts.ts";
import { AllTracksFailedError } from "../../pipeline/steps/track-failures.ts";

/** A track's transcribe output with words at the given start times (0.2 s long). */
function track(index: number, starts: number[]): TranscribeTrackOutput {
  return {
    track_index: index,
    words: starts.map((s, i): Word => ({ text: `t${index}w${i}`, start: s, end: s + 0.2, speaker: index })),
    engine: "pocketsphinx",
    decoded_seconds: 1,
    track_seconds: 10,
  };
}

/** Deterministic shuffle (a fixed permutation per seed), so failures reproduce. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let x = seed;
  for (let i = out.length - 1; i > 0; i--) {
    x = (x * 1103515245 + 12345) % 2147483648;
    const j = x % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

const isOrdered = (ws: readonly Word[]): boolean =>
  ws.every((w, i) => i === 0 || ws[i - 1]!.start < w.start || (ws[i - 1]!.start === w.start && ws[i - 1]!.speaker <= w.speaker));

test("a JOIN dict in any key order gives the same time-ordered words", async () => {
  const outputs = Array.from({ length: 12 }, (_, i) => track(i, [i * 0.5, 7 + i * 0.25, 20 - i]));
  const expected = outputs.flatMap((o) => o.words).sort((a, b) => a.start - b.start || a.speaker - b.speaker);
  for (const seed of [1, 2, 3, 42]) {
    const dict = Object.fromEntries(shuffled(outputs, seed).map((o) => [`transcribe_track_${o.track_index}`, o]));
    const out = await mergeTranscripts({ expected_tracks: outputs.map((o) => o.track_index), transcripts: dict });
    assert.deepEqual(out.words, expected);
    assert.equal(out.track_count, 12);
    assert.ok(isOrdered(out.words));
  }
});

test("transcribe_track_10 sorts after transcribe_track_2: order comes from the track index inside", async () => {
  // as text, "transcribe_track_10" < "transcribe_track_2"; both speak at the same instant
  const dict: Record<string, unknown> = {};
  for (const i of [10, 2, 0, 1, 3, 4, 5, 6, 7, 8, 9]) dict[`transcribe_track_${i}`] = track(i, [1.0]);
  assert.ok(Object.keys(dict).sort()[2] === "transcribe_track_10");
  const out = await mergeTranscripts({ expected_tracks: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], transcripts: dict });
  assert.deepEqual(out.words.map((w) => w.speaker), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
});

test("speaker is the track index that carried the word, whatever the word claimed", async () => {
  const t = track(2, [0.5]);
  t.words[0]!.speaker = 7;
  const out = await mergeTranscripts({ expected_tracks: [0, 2], transcripts: [track(0, [1]), t] });
  assert.deepEqual(out.words.map((w) => w.speaker), [2, 0]);
});

test("a silent track is an empty word list and counts as present", async () => {
  const out = await mergeTranscripts({
    expected_tracks: [0, 1, 2],
    transcripts: { transcribe_track_1: track(1, []), transcribe_track_0: track(0, [0.3]), transcribe_track_2: { track_index: 2, words: [] } },
  });
  assert.equal(out.track_count, 3);
  assert.deepEqual(out.words.map((w) => w.text), ["t0w0"]);
  const none = await mergeTranscripts({ expected_tracks: [0, 1], transcripts: [track(0, []), track(1, [])] });
  assert.deepEqual(none.words, []);
});

test("a missing track is an error that names it; a fork task that ended with no output is its track's failure", async () => {
  // a fork task with an empty output is missing from the JOIN entirely
  const dict = { transcribe_track_0: track(0, [1]), transcribe_track_2: track(2, [2]), transcribe_track_3: {} };
  await assert.rejects(mergeTranscripts({ expected_tracks: [0, 1, 2, 3], transcripts: dict }), (err: unknown) => {
    assert.ok(err instanceof JoinNormalizationError);
    assert.deepEqual(err.details.missing, [1]);
    assert.match(err.message, /missing track\(s\) 1\b/);
    return true;
  });
  // Conductor: an optional task that timed out (its worker vanished) left no output, only its reference name
  const out = await mergeTranscripts({ expected_tracks: [0, 2, 3], transcripts: dict });
  assert.deepEqual(out.track_status, [
    { track_index: 0, status: "ok" },
    { track_index: 2, status: "ok" },
    { track_index: 3, status: "failed", failed: { step: "transcribe_track", code: "track_failed", message: "transcribe_track ended for this track without a result" } },
  ]);
  assert.equal(out.track_count, 2);
});

test("failed tracks: a FailedTrack in the join and the plan's failures are listed; the rest merge; none left is all_tracks_failed", async () => {
  const failed = (i: number, step: string, code: string) => ({ track_index: i, failed: { step, code, message: `${code} here` } });
  const out = await mergeTranscripts({
    expected_tracks: [0, 1, 2, 3],
    // a Conductor worker's failure output carries more than the FailedTrack (its own error text): not read
    transcripts: { transcribe_track_0: track(0, [1]), transcribe_track_2: { ...failed(2, "transcribe_track", "speech_recognition_failed"), error: "decoder at http://10.0.0.1 said no" }, transcribe_track_3: track(3, [0.5]) },
    failed_tracks: [failed(1, "prepare_track", "not_audio")],
  });
  assert.deepEqual(out.words.map((w) => w.speaker), [3, 0]);
  assert.deepEqual(out.track_status!.map((t) => `${t.track_index}:${t.status}:${t.failed?.code ?? ""}`), ["0:ok:", "1:failed:not_audio", "2:failed:speech_recognition_failed", "3:ok:"]);
  assert.ok(!JSON.stringify(out).includes("10.0.0.1"), "a worker's own error text never reaches the output");
  await assert.rejects(
    mergeTranscripts({ expected_tracks: [0, 1], transcripts: [failed(0, "transcribe_track", "speech_recognition_failed")], failed_tracks: [failed(1, "prepare_track", "not_audio")] }),
    (err: unknown) => err instanceof AllTracksFailedError && /track 0: speech_recognition_failed here \(speech_recognition_failed\); track 1: not_audio here \(not_audio\)/.test(err.message),
  );
});

test("an array input works like the dict, in any element order", async () => {
  const outputs = [track(0, [0, 2]), track(1, [1, 3]), track(2, [0.5])];
  const fromArray = await mergeTranscripts({ expected_tracks: [0, 1, 2], transcripts: [outputs[2], outputs[0], outputs[1]] });
  const fromDict = await mergeTranscripts({ expected_tracks: [0, 1, 2], transcripts: Object.fromEntries(outputs.map((o, i) => [`t${i}`, o])) });
  assert.deepEqual(fromArray, fromDict);
  assert.deepEqual(fromArray.words.map((w) => w.start), [0, 0.5, 1, 2, 3]);
});

test("ties in start time are broken by track index, then by end", async () => {
  const a = track(1, [5]);
  const b = track(0, [5]);
  b.words.push({ text: "short", start: 5, end: 5.1, speaker: 0 });
  const out = await mergeTranscripts({ expected_tracks: [0, 1], transcripts: [a, b] });
  assert.deepEqual(out.words.map((w) => `${w.speaker}:${w.text}`), ["0:short", "0:t0w0", "1:t1w0"]);
});

test("duplicate and unexpected tracks are refused", async () => {
  await assert.rejects(mergeTranscripts({ expected_tracks: [0], transcripts: [track(0, [1]), track(0, [2])] }), /duplicate track\(s\) 0/);
  await assert.rejects(mergeTranscripts({ expected_tracks: [0], transcripts: [track(0, [1]), track(5, [2])] }), /unexpected track\(s\) 5/);
});
