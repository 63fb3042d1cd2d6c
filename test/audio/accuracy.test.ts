/**
 * End to end on the fixture meeting (real LibriVox speech, 3 tracks with offsets and mic
 * bleed 26 dB down): speaker-attributed WER stays within a few points of the engine's own
 * WER on the same utterances decoded in isolation, no bleed words survive, and the decoder
 * spends ≤ half of the track audio.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { createAsrEngine } from "../../adapters/asr/index.ts";
import { loadConfig } from "../../pipeline/config.ts";
import { wordErrorRate } from "../../pipeline/metrics/wer.ts";
import { FileManifest, type TranscribeTrackOutput } from "../../pipeline/contracts/index.ts";
import { stageManifest } from "../../workers/inprocess/stage.ts";
import { buildFixtures, defaultFixtureDir, type Reference } from "../../scripts/build-fixtures.ts";
import { createLocalStorage } from "../../adapters/storage/local.ts";
import { transcribeMeeting } from "./harness.ts";
import { readFileSync } from "node:fs";

let dir: string;
let reference: Reference;
let manifestPath: string;
/** planned-span transcripts of the first test, reused by the second (which adds one whole-track decode) */
const planned = new Map<number, TranscribeTrackOutput>();
before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "ts-accuracy-"));
  ({ reference, manifestPath } = await buildFixtures(defaultFixtureDir()));
});
after(() => rm(dir, { recursive: true, force: true }));

test("speaker-attributed WER ≈ isolated WER, no bleed words, decoded ≤ 0.5 of track audio", async () => {
  const storage = createLocalStorage(path.join(dir, "storage"));
  const manifest = FileManifest.parse(JSON.parse(readFileSync(manifestPath, "utf8")));
  const input = await stageManifest(manifest, storage, "accuracy", path.dirname(manifestPath), { namespace: "inprocess" });
  const meeting = await transcribeMeeting(input, storage, { parallel: true, cache: planned });

  // the engine's own error on the same utterances, each clip decoded alone
  const asr = createAsrEngine(loadConfig({}));
  let isoErrors = 0;
  let meetErrors = 0;
  let refWords = 0;
  for (const s of reference.speakers) {
    const hypIso: string[] = [];
    for (const u of s.utterances) {
      const clip = `/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-${u.clip}.wav`;
      hypIso.push(...(await asr.transcribe(clip, { language: "en" })).map((w) => w.text));
    }
    const hypMeeting = meeting.words.filter((w) => w.speaker === s.speaker).map((w) => w.text);
    isoErrors += wordErrorRate(s.words, hypIso) * s.words.length;
    meetErrors += wordErrorRate(s.words, hypMeeting) * s.words.length;
    refWords += s.words.length;
  }
  const isoWer = isoErrors / refWords;
  const meetWer = meetErrors / refWords;
  console.log(`isolated WER ${(isoWer * 100).toFixed(1)}%, meeting speaker-attributed WER ${(meetWer * 100).toFixed(1)}%`);
  assert.ok(meetWer <= isoWer + 0.05, `meeting WER ${meetWer} vs isolated ${isoWer}`);

  // no bleed: every word sits inside one of its own speaker's utterances (±0.3 s)
  for (const w of meeting.words) {
    const mine = reference.speakers[w.speaker]!.utterances.some((u) => w.start >= u.start - 0.3 && w.end <= u.end + 0.3);
    assert.ok(mine, `word '${w.text}' at ${w.start}s attributed to ${reference.speakers[w.speaker]!.name}, who was not talking`);
  }
  const ratio = meeting.decoded / meeting.trackSeconds;
  console.log(`decoded ${meeting.decoded.toFixed(1)} s of ${meeting.trackSeconds.toFixed(1)} s track audio (${ratio.toFixed(2)})`);
  assert.ok(ratio <= 0.5, `decoded ratio ${ratio}`);
  // words are ordered by time, and every speaker says something
  for (let i = 1; i < meeting.words.length; i++) assert.ok(meeting.words[i]!.start >= meeting.words[i - 1]!.start);
  assert.deepEqual([...new Set(meeting.words.map((w) => w.speaker))].sort(), [0, 1, 2]);
});

test("decoding a whole track would let bleed through: the word-level rule catches it", async () => {
  const storage = createLocalStorage(path.join(dir, "storage"));
  const manifest = FileManifest.parse(JSON.parse(readFileSync(manifestPath, "utf8")));
  const input = await stageManifest(manifest, storage, "accuracy", path.dirname(manifestPath), { namespace: "inprocess" });
  // tracks 0 and 2 reuse the first test's planned transcripts (same recording, same plan); track 1 is decoded whole
  const whole = await transcribeMeeting(input, storage, { parallel: true, wholeTrack: 1, cache: planned });
  assert.ok(whole.dropped > 0, "whole-track decoding recognizes bleed words, which the rule drops");
  for (const w of whole.words) {
    const mine = reference.speakers[w.speaker]!.utterances.some((u) => w.start >= u.start - 0.3 && w.end <= u.end + 0.3);
    assert.ok(mine, `bleed word '${w.text}' at ${w.start}s survived`);
  }
});
