import assert from "node:assert/strict";
import { test } from "node:test";
import { bleedMarginDb, suppressBleedWords } from "../../pipeline/audio/bleed.ts";
import { envelopeFromBytes, envelopeToBytes, frameEnergies, meanDb, waveformPeaks } from "../../pipeline/audio/envelope.ts";
import { cutLongSpan, planSpeechSpans, totalSeconds } from "../../pipeline/audio/planner.ts";
import { readWav, writeWav } from "../../pipeline/audio/wav.ts";
import { parseCtm } from "../../adapters/asr/pocketsphinx.ts";
import { wordErrorRate } from "../../pipeline/metrics/wer.ts";

const F = 0.02;
/** an envelope with `db` over [from, to) seconds and `floor` elsewhere */
function env(seconds: number, parts: [number, number, number][], floor = -70): Float32Array {
  const e = new Float32Array(Math.round(seconds / F)).fill(floor);
  for (const [from, to, db] of parts) for (let i = Math.round(from / F); i < Math.round(to / F); i++) e[i] = db;
  return e;
}

test("WAV round trip keeps samples and rate", () => {
  const samples = Int16Array.from([0, 1, -1, 32767, -32768, 1234]);
  const back = readWav(writeWav({ sampleRate: 16000, samples }));
  assert.equal(back.sampleRate, 16000);
  assert.deepEqual(Array.from(back.samples), Array.from(samples));
  assert.throws(() => readWav(Buffer.from("not a wav file at all")), /RIFF/);
});

test("frame energies: a full-scale square wave is ~0 dBFS, silence is the floor", () => {
  const s = new Int16Array(16000);
  for (let i = 0; i < 8000; i++) s[i] = i % 2 ? 32767 : -32767;
  const e = frameEnergies(s, 16000, F);
  assert.equal(e.length, 50);
  assert.ok(Math.abs(e[0]!) < 0.1);
  assert.equal(e[49], -100);
  assert.deepEqual(Array.from(envelopeFromBytes(envelopeToBytes(e))), Array.from(e));
  // bytes at an offset that is not a multiple of 4 (a slice of a larger buffer): read through a copy
  const shifted = Buffer.alloc(e.byteLength + 1);
  envelopeToBytes(e).copy(shifted, 1);
  assert.deepEqual(Array.from(envelopeFromBytes(shifted.subarray(1))), Array.from(e));
  assert.ok(meanDb(e, 0, 25) > -1 && meanDb(e, 25, 50) === -100);
  const peaks = waveformPeaks(s, 10);
  assert.equal(peaks.length, 10);
  assert.equal(peaks[0], 1);
  assert.equal(peaks[9], 0);
});

test("planner: own speech kept, bleed (26 dB down) and silence skipped, offsets applied", async () => {
  // A speaks 1–4 s, B speaks 5–8 s (global). B's track starts at offset 2 s.
  const a = env(10, [[1, 4, -20], [5, 8, -46]]);
  const b = env(8, [[-1, 2, -46], [3, 6, -20]]); // local times: B's speech at 3–6 local = 5–8 global
  const plan = await planSpeechSpans(
    [
      { track_index: 0, offset_seconds: 0, frame_seconds: F, envelope: a },
      { track_index: 1, offset_seconds: 2, frame_seconds: F, envelope: b },
    ],
    { bleedDb: 10, padSeconds: 0 },
  );
  const near = (x: number, y: number): boolean => Math.abs(x - y) < 0.1;
  const a0 = plan.get(0)!;
  const b0 = plan.get(1)!;
  assert.equal(a0.length, 1);
  assert.ok(near(a0[0]!.start, 1) && near(a0[0]!.end, 4), JSON.stringify(a0));
  assert.equal(b0.length, 1);
  assert.ok(near(b0[0]!.start, 5) && near(b0[0]!.end, 8), JSON.stringify(b0));
});

test("planner: genuine overlap (both loud) is kept on both tracks", async () => {
  const a = env(6, [[1, 5, -20]]);
  const b = env(6, [[2, 4, -23]]);
  const plan = await planSpeechSpans(
    [
      { track_index: 0, offset_seconds: 0, frame_seconds: F, envelope: a },
      { track_index: 1, offset_seconds: 0, frame_seconds: F, envelope: b },
    ],
    { bleedDb: 10, padSeconds: 0 },
  );
  assert.ok(totalSeconds(plan.get(0)!) > 3.8);
  assert.ok(totalSeconds(plan.get(1)!) > 1.8);
});

test("long spans are cut at their quietest point, never longer than the limit", () => {
  const quiet = new Set([600, 1100]); // global frames at 12 s and 22 s
  const parts = cutLongSpan({ start: 0, end: 40 }, 25, (g) => (quiet.has(g) ? -80 : -20), F);
  assert.ok(parts.every((p) => p.end - p.start <= 25 + 1e-9));
  assert.ok(Math.abs(parts[0]!.end - 22) < 1e-9, JSON.stringify(parts));
  assert.equal(parts[parts.length - 1]!.end, 40);
});

test("bleed rule drops words another track dominates by ≥ threshold, keeps the rest", async () => {
  const tracks = [
    { track_index: 0, offset_seconds: 0, frame_seconds: F, envelope: env(4, [[0, 2, -20], [2, 4, -46]]) },
    { track_index: 1, offset_seconds: 0, frame_seconds: F, envelope: env(4, [[0, 2, -46], [2, 4, -21]]) },
  ];
  const words = [
    { text: "mine", start: 0.5, end: 1, speaker: 0 },
    { text: "leak", start: 2.5, end: 3, speaker: 0 },
    { text: "also", start: 2.6, end: 3.1, speaker: 1 },
  ];
  const { kept, dropped } = await suppressBleedWords(words, tracks, 10);
  assert.deepEqual(kept.map((w) => w.text), ["mine", "also"]);
  assert.deepEqual(dropped.map((w) => w.text), ["leak"]);
});

test("bleed rule: an interpolated word is judged over its span widened by 0.5 s, so a time off by a little still finds its voice", async () => {
  // track 0 speaks until 2 s, track 1 from 2 s; track 0's word, interpolated, landed just after 2 s
  const tracks = [
    { track_index: 0, offset_seconds: 0, frame_seconds: F, envelope: env(4, [[0, 2, -20], [2, 4, -46]]) },
    { track_index: 1, offset_seconds: 0, frame_seconds: F, envelope: env(4, [[0, 2, -46], [2, 4, -20]]) },
  ];
  const measured = { text: "late", start: 2.0, end: 2.4, speaker: 0 };
  const interpolated = { ...measured, timing: "interpolated" as const };
  assert.equal(Math.round(bleedMarginDb(measured, tracks)), 26, "measured: all in track 1's voice");
  assert.ok(bleedMarginDb(interpolated, tracks) < 10, "the widened window reaches the word's own voice");
  assert.deepEqual((await suppressBleedWords([measured], tracks, 10)).dropped.map((w) => w.text), ["late"]);
  assert.deepEqual((await suppressBleedWords([interpolated], tracks, 10)).kept.map((w) => w.text), ["late"]);
});

test("CTM parsing drops fillers and alternate-pronunciation marks", () => {
  const ctm = ["seg0 1 0.10 0.30 <s> 0.9", "seg0 1 0.40 0.25 been(2) 0.8", "seg0 1 0.70 0.20 <sil> 1", "seg1 1 0.00 0.50 [NOISE] 1", "seg1 1 0.5 0.5 hello 0.5"].join("\n");
  const m = parseCtm(ctm);
  assert.deepEqual(m.get("seg0"), [{ text: "been", start: 0.4, end: 0.65, confidence: 0.8 }]);
  assert.deepEqual(m.get("seg1"), [{ text: "hello", start: 0.5, end: 1, confidence: 0.5 }]);
});

test("word error rate", () => {
  assert.equal(wordErrorRate("a b c d", "a b c d"), 0);
  assert.equal(wordErrorRate("a b c d", "a x c"), 0.5);
  assert.equal(wordErrorRate("Hello, world!", "hello world"), 0);
  assert.equal(wordErrorRate("", ""), 0);
});

test("streamed envelopes and waveform peaks (a chunk at a time) equal the whole-track computations exactly", async () => {
  const { EnvelopeBuilder, frameEnergies: energies, PeakAccumulator: Peaks } = await import("../../pipeline/audio/envelope.ts");
  let seed = 7;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const track = (n: number): Int16Array => Int16Array.from({ length: n }, (_, i) => Math.round((rnd() - 0.5) * 20000 * Math.sin(i / 900)));
  const chunked = (s: Int16Array, size: number): Int16Array[] => {
    const out: Int16Array[] = [];
    for (let i = 0; i < s.length; i += size) out.push(s.subarray(i, Math.min(s.length, i + size)));
    return out;
  };
  for (const [n, size] of [[16000 * 3 + 17, 4099], [321, 7], [640, 320], [1, 1]] as const) {
    const s = track(n);
    const b = new EnvelopeBuilder(s.length, 16000);
    for (const c of chunked(s, size)) b.push(c);
    assert.deepEqual(Array.from(b.finish()), Array.from(energies(s, 16000)), `n=${n} chunk=${size}`);
  }
  // three tracks at offsets; buckets fewer and more than samples
  const tracks = [
    { s: track(16000 * 2 + 5), offset: 0 },
    { s: track(9000), offset: 12345 },
    { s: track(333), offset: 40001 },
  ];
  const total = Math.max(...tracks.map((t) => t.offset + t.s.length));
  for (const buckets of [100, 997, total * 2]) {
    const whole = new Peaks(buckets, total);
    for (const t of tracks) whole.add(t.s, t.offset);
    for (const size of [1000, 4093, 77]) {
      const streamed = new Peaks(buckets, total);
      for (const t of tracks) {
        let at = t.offset;
        for (const c of chunked(t.s, size)) {
          streamed.addChunk(c, at, t.offset);
          at += c.length;
        }
        streamed.endTrack();
      }
      assert.deepEqual(streamed.peaks(), whole.peaks(), `buckets=${buckets} chunk=${size}`);
    }
  }
});

test("openPcm reads a canonical WAV in chunks (aligned samples, known total)", async () => {
  const { openPcm, wavHeader: header } = await import("../../pipeline/audio/wav.ts");
  const { mkdtemp, writeFile, rm } = await import("node:fs/promises");
  const os = await import("node:os");
  const path = await import("node:path");
  const dir = await mkdtemp(path.join(os.tmpdir(), "pcm-"));
  try {
    const n = 50_001;
    const samples = Int16Array.from({ length: n }, (_, i) => (i * 37) % 30000 - 15000);
    const file = path.join(dir, "t.wav");
    await writeFile(file, Buffer.concat([header(n * 2, 16000), Buffer.from(samples.buffer)]));
    const pcm = await openPcm(file, 10_001);
    assert.equal(pcm.totalSamples, n);
    const got: number[] = [];
    for await (const c of pcm.chunks()) {
      assert.ok(c.length <= 5000);
      got.push(...c);
    }
    assert.deepEqual(got, Array.from(samples));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
