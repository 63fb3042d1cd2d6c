/**
 * The ffmpeg AudioTools and the steps around them: every format the product accepts
 * decodes to 16 kHz mono s16le WAV; missing, empty and non-audio files fail with a
 * NotAudioError naming the file (or the track and its storage key, in prepare_track);
 * aborting kills ffmpeg; mixdown places tracks at their offsets; a silent track is
 * `{track_index, words: []}`.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { NotAudioError, PeakAccumulator, readWav, waveformPeaks } from "../../pipeline/audio/index.ts";
import { createFfmpegAudioTools, probeDuration } from "../../adapters/audio/ffmpeg.ts";
import type { AsrEngine, TextModel } from "../../pipeline/ports.ts";
import { StorageKeyNotFoundError } from "../../pipeline/ports.ts";
import type { StepDeps } from "../../pipeline/steps/deps.ts";
import { runStep } from "../../pipeline/steps/index.ts";
import { createLocalStorage } from "../../adapters/storage/local.ts";
import { speechTracks } from "../../pipeline/steps/transcribe_track.ts";

let dir: string;
const tools = createFfmpegAudioTools();

/** 2 s of a 440 Hz tone, 44.1 kHz stereo, in the given container/codec */
function tone(file: string, codecArgs: string[], seconds = 2): string {
  const out = path.join(dir, file);
  const r = spawnSync("ffmpeg", [
    "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", `sine=frequency=440:duration=${seconds}:sample_rate=44100`,
    "-ac", "2", ...codecArgs, out,
  ]);
  assert.equal(r.status, 0, r.stderr.toString());
  return out;
}

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "ts-ffmpeg-"));
});
after(() => rm(dir, { recursive: true, force: true }));

const unusedText: TextModel = {
  name: "unused",
  detectTopics: () => Promise.reject(new Error("unused")),
  generateTitle: () => Promise.reject(new Error("unused")),
  generateSummary: () => Promise.reject(new Error("unused")),
  extractActionItems: () => Promise.reject(new Error("unused")),
};
/** an engine that must not be called (silent tracks never reach the decoder) */
const refusingAsr: AsrEngine = { name: "refusing", capabilities: { preload: false, sharedChild: false }, transcribe: () => Promise.reject(new Error("the decoder was called")) };
const deps = (storageDir: string, scratchDir: string): StepDeps => ({
  storage: createLocalStorage(storageDir),
  audio: tools,
  asr: refusingAsr,
  text: unusedText,
  scratchDir,
  bleedThresholdDb: 10,
});

test("decodes WAV, MP3, OGG/Vorbis, M4A/AAC and WebM/Opus to 16 kHz mono s16le", async () => {
  const inputs = [
    tone("a.wav", ["-c:a", "pcm_s24le"]),
    tone("a.mp3", ["-c:a", "libmp3lame", "-b:a", "64k"]),
    tone("a.ogg", ["-c:a", "libvorbis"]),
    tone("a.m4a", ["-c:a", "aac", "-b:a", "64k"]),
    tone("a.webm", ["-c:a", "libopus", "-b:a", "32k"]),
  ];
  for (const input of inputs) {
    const out = `${input}.decoded.wav`;
    const { duration } = await tools.decodeToWav(input, out);
    const pcm = readWav(await readFile(out));
    assert.equal(pcm.sampleRate, 16000, input);
    assert.ok(Math.abs(duration - 2) < 0.1, `${path.basename(input)}: ${duration} s`);
    assert.ok(Math.abs(pcm.samples.length / 16000 - duration) < 0.01, `${path.basename(input)}: reported duration matches the samples`);
    // the tone survived: loud in the middle (sine amplitude 1/8 of full scale ≈ 4096)
    const mid = pcm.samples.subarray(16000, 17600);
    assert.ok(Math.max(...Array.from(mid, Math.abs)) > 2000, `${path.basename(input)} decoded to silence`);
  }
});

test("a WAV already 16 kHz mono 16-bit is copied without ffmpeg, byte for byte what ffmpeg writes; other WAVs go through ffmpeg", async () => {
  const noFfmpeg = createFfmpegAudioTools({ ffmpeg: path.join(dir, "no-such-ffmpeg") });
  // with a LIST chunk before the samples (ffmpeg writes one unless told not to)
  const canonical = path.join(dir, "canon.wav");
  const made = spawnSync("ffmpeg", ["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=300:duration=1.5:sample_rate=16000", "-metadata", "title=x", "-c:a", "pcm_s16le", canonical]);
  assert.equal(made.status, 0, made.stderr.toString());
  assert.match((await readFile(canonical)).toString("latin1", 0, 200), /LIST/);
  const copied = path.join(dir, "canon-copied.wav");
  const viaFfmpeg = path.join(dir, "canon-ffmpeg.wav");
  assert.deepEqual(await noFfmpeg.decodeToWav(canonical, copied), { duration: 1.5 });
  // what ffmpeg writes for the same input (forced through it: the fast path sees a 1-byte-longer data size as past the end)
  const canonicalBytes = await readFile(canonical);
  const listed = canonicalBytes.indexOf("data", 12, "latin1");
  const nudged = Buffer.from(canonicalBytes);
  nudged.writeUInt32LE(nudged.readUInt32LE(listed + 4) + 2, listed + 4);
  const nudgedPath = path.join(dir, "canon-nudged.wav");
  await writeFile(nudgedPath, nudged);
  await tools.decodeToWav(nudgedPath, viaFfmpeg);
  assert.ok((await readFile(copied)).equals(await readFile(viaFfmpeg)), "the copy equals ffmpeg's output");
  assert.equal(readWav(await readFile(copied)).samples.length, 24000);
  // not the pipeline's format, or a size we cannot trust: ffmpeg (absent here, so it fails to start)
  const others = [
    tone("stereo16k.wav", ["-ar", "16000", "-c:a", "pcm_s16le"]),
    tone("mono8k.wav", ["-ar", "8000", "-ac", "1", "-c:a", "pcm_s16le"]),
    tone("mono16k-float.wav", ["-ar", "16000", "-ac", "1", "-c:a", "pcm_f32le"]),
    nudgedPath,
  ];
  for (const f of others) {
    await assert.rejects(noFfmpeg.decodeToWav(f, path.join(dir, "other-out.wav")), /could not start/, f);
    await tools.decodeToWav(f, path.join(dir, "other-out.wav")); // and ffmpeg reads it
  }
  // the same samples declared WAVE_FORMAT_EXTENSIBLE (format tag 0xFFFE): not copied either
  const extensible = Buffer.from(canonicalBytes);
  const fmt = extensible.indexOf("fmt ", 12, "latin1");
  extensible.writeUInt16LE(0xfffe, fmt + 8);
  const extensiblePath = path.join(dir, "extensible.wav");
  await writeFile(extensiblePath, extensible);
  await assert.rejects(noFfmpeg.decodeToWav(extensiblePath, path.join(dir, "other-out.wav")), /could not start/);
});

test("missing, zero-byte and non-audio files fail with a NotAudioError naming the file", async () => {
  const missing = path.join(dir, "nope.wav");
  const empty = path.join(dir, "empty.wav");
  const text = path.join(dir, "notes.mp3");
  await writeFile(empty, "");
  await writeFile(text, "these are meeting notes, not audio\n".repeat(50));
  const cases: [string, RegExp][] = [
    [missing, /does not exist/],
    [empty, /empty \(0 bytes\)/],
    [text, /not readable audio/],
  ];
  for (const [file, why] of cases) {
    await assert.rejects(tools.decodeToWav(file, path.join(dir, "out.wav")), (e: unknown) => {
      assert.ok(e instanceof NotAudioError, `${file}: ${String(e)}`);
      assert.equal(e.file, file);
      assert.ok(e.message.includes(file), e.message);
      assert.match(e.message, why);
      return true;
    });
  }
});

test("an aborted decode stops ffmpeg and rejects with AbortError", async () => {
  const long = tone("long.flac", ["-c:a", "flac"], 120);
  const ac = new AbortController();
  const started = performance.now();
  const p = tools.decodeToWav(long, path.join(dir, "long.wav"), ac.signal);
  setTimeout(() => ac.abort(), 20);
  await assert.rejects(p, (e: unknown) => (e as Error).name === "AbortError");
  assert.ok(performance.now() - started < 5000);
});

test("mixdown places each track at its offset and encodes MP3", async () => {
  const a = path.join(dir, "mix-a.wav");
  const b = path.join(dir, "mix-b.wav");
  await tools.decodeToWav(tone("mix-a.src.wav", ["-c:a", "pcm_s16le"], 2), a);
  await tools.decodeToWav(tone("mix-b.src.wav", ["-c:a", "pcm_s16le"], 2), b);
  const out = path.join(dir, "mix.mp3");
  const { duration } = await tools.mixdownMp3([{ path: a, offset_seconds: 0 }, { path: b, offset_seconds: 3.5 }], out);
  assert.ok(Math.abs(duration - 5.5) < 0.15, `mixdown lasts ${duration} s`);
  assert.ok(Math.abs((await probeDuration(out)) - duration) < 1e-6);
  // the gap between the tracks (2–3.5 s) is silent in the mix
  const mixWav = path.join(dir, "mix.wav");
  await tools.decodeToWav(out, mixWav);
  const pcm = readWav(await readFile(mixWav));
  const peak = (from: number, to: number): number => Math.max(...Array.from(pcm.samples.subarray(from * 16000, to * 16000), Math.abs));
  assert.ok(peak(2.3, 3.2) < 200, `gap peak ${peak(2.3, 3.2)}`);
  assert.ok(peak(0.5, 1.5) > 2000 && peak(4, 5) > 2000);
});

test("peak accumulator: one track equals waveformPeaks; tracks land at their offsets", () => {
  const s = new Int16Array(16000);
  for (let i = 0; i < s.length; i++) s[i] = Math.round(Math.sin(i / 7) * (i < 8000 ? 30000 : 3000));
  const one = new PeakAccumulator(37, s.length);
  one.add(s, 0);
  assert.deepEqual(one.peaks(), waveformPeaks(s, 37));

  const loud = new Int16Array(1000).fill(20000);
  const acc = new PeakAccumulator(10, 10000);
  acc.add(loud, 0); // buckets 0
  acc.add(loud, 5000); // bucket 5
  assert.deepEqual(acc.peaks(), [1, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
  assert.deepEqual(new PeakAccumulator(4, 100).peaks(), [0, 0, 0, 0]);
});

test("prepare_track names the track and its storage key when the source is not audio, or missing", async () => {
  const root = await mkdtemp(path.join(dir, "step-"));
  const d = deps(path.join(root, "storage"), root);
  await d.storage.put("recordings/r1/tracks/1-bob.wav", Buffer.from("RIFF but not really a wave file at all".repeat(20)));
  const track = { track_index: 1, participant: "Bob", offset_seconds: 0, source_key: "recordings/r1/tracks/1-bob.wav" };
  await assert.rejects(runStep("prepare_track", { recording_id: "r1", namespace: "inprocess", track }, d), (e: unknown) => {
    assert.ok(e instanceof NotAudioError, String(e));
    assert.match(e.message, /^track 1 \(Bob\) recordings\/r1\/tracks\/1-bob\.wav is not readable audio/);
    assert.ok(!e.message.includes(root), `scratch path leaked into the message: ${e.message}`);
    return true;
  });
  await assert.rejects(
    runStep("prepare_track", { recording_id: "r1", namespace: "inprocess", track: { ...track, source_key: "recordings/r1/tracks/gone.wav" } }, d),
    StorageKeyNotFoundError,
  );
  // nothing derived was written for the failed track
  assert.deepEqual(await d.storage.list("recordings/r1/inprocess/"), []);
});

test("prepare → plan → transcribe on a silent track: {track_index, words: []}, decoder never called; mixdown + waveform", async () => {
  const root = await mkdtemp(path.join(dir, "silent-"));
  const d = deps(path.join(root, "storage"), root);
  const silent = path.join(dir, "silent.wav");
  const r = spawnSync("ffmpeg", ["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono", "-t", "3", silent]);
  assert.equal(r.status, 0, r.stderr.toString());
  await d.storage.putFile("recordings/r2/tracks/0-ann.wav", silent);
  await d.storage.putFile("recordings/r2/tracks/1-ben.mp3", tone("ben.mp3", ["-c:a", "libmp3lame"], 2));
  const tracks = [
    { track_index: 0, participant: "Ann", offset_seconds: 0, source_key: "recordings/r2/tracks/0-ann.wav" },
    { track_index: 1, participant: "Ben", offset_seconds: 1.25, source_key: "recordings/r2/tracks/1-ben.mp3" },
  ];
  // every step run gets its own scratch directory, as the adapters give them
  const own = async (): Promise<StepDeps> => ({ ...d, scratchDir: await mkdtemp(path.join(root, "scratch-")) });
  const prepared = await Promise.all(tracks.map(async (track) => runStep("prepare_track", { recording_id: "r2", namespace: "inprocess", track }, await own())));
  assert.deepEqual(prepared.map((p) => p.pcm_key), ["recordings/r2/inprocess/pcm/0.wav", "recordings/r2/inprocess/pcm/1.wav"]);
  assert.deepEqual(prepared.map((p) => p.envelope_key), ["recordings/r2/inprocess/envelope/0.f32", "recordings/r2/inprocess/envelope/1.f32"]);
  assert.ok(Math.abs(prepared[0]!.duration_seconds - 3) < 0.01);
  // envelope: one float per frame of the track
  const envBytes = await d.storage.get(prepared[0]!.envelope_key);
  assert.equal(envBytes.length / 4, Math.ceil(prepared[0]!.duration_seconds / prepared[0]!.frame_seconds));

  const plan = await runStep(
    "plan_speech",
    { recording_id: "r2", namespace: "inprocess", language: "en", expected_tracks: [0, 1], prepared: { prepare_1: prepared[1], prepare_0: prepared[0] } },
    d,
  );
  assert.deepEqual(plan.tracks.map((t) => t.track_index), [0, 1]);
  assert.deepEqual(plan.tracks[0]!.spans, [], "digital silence has no speech");
  // a meeting whose tracks are all silent has no track for the recognizer (speech_tracks 0)
  assert.equal(speechTracks({ tracks: [plan.tracks[0]!] }), 0);
  const out = await runStep("transcribe_track", { recording_id: "r2", namespace: "inprocess", language: "en", track: plan.tracks[0]!, speech_tracks: 0 }, d);
  assert.deepEqual({ track_index: out.track_index, words: out.words, decoded: out.decoded_seconds }, { track_index: 0, words: [], decoded: 0 });
  assert.ok(out.track_seconds > 2.9);

  const mix = await runStep("mixdown", { recording_id: "r2", namespace: "inprocess", tracks: plan.tracks, peaks: 32 }, d);
  assert.equal(mix.audio_key, "recordings/r2/inprocess/mixdown/mixdown.mp3");
  assert.ok(await d.storage.exists(mix.audio_key));
  assert.ok(Math.abs(mix.duration - 3.25) < 0.15, `mixdown ${mix.duration} s`);
  assert.equal(mix.waveform.length, 32);
  // Ben's tone starts at 1.25 s of 3.25 s: the first buckets are silent, the later ones loud
  assert.equal(mix.waveform[0], 0);
  assert.ok(mix.waveform[20]! > 0.8, JSON.stringify(mix.waveform));
});
