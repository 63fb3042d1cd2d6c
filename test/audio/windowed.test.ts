/**
 * The planner and the bleed rule read stored envelopes a window at a time; whatever the
 * window, they give what they give over the whole envelopes in memory: the same spans (cut
 * points included), the same words dropped, the same noise floor as a sort of every frame.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { createLocalStorage } from "../../adapters/storage/local.ts";
import { suppressBleedWords } from "../../pipeline/audio/bleed.ts";
import { envelopeToBytes, SILENCE_DB } from "../../pipeline/audio/envelope.ts";
import { EnvelopeWindow, arraySource, type EnvelopeSource } from "../../pipeline/audio/envelope-source.ts";
import { noiseFloorDb, planSpeechSpans } from "../../pipeline/audio/planner.ts";
import type { Word } from "../../pipeline/contracts/index.ts";
import { envelopeSources, storedEnvelope } from "../../pipeline/steps/envelopes.ts";
import { StorageKeyNotFoundError } from "../../pipeline/ports.ts";

const dir = mkdtempSync(path.join(os.tmpdir(), "ts-env-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const F = 0.02;

/** a meeting's envelopes: turns of random length (monologues past 25 s among them), overlaps, bleed, dropouts */
function meeting(tracks: number, seconds: number, seed: number): Float32Array[] {
  const rnd = (): number => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 0xffffffff;
  const frames = Math.round(seconds / F);
  const talk = Array.from({ length: tracks }, () => new Uint8Array(frames));
  for (let f = 0; f < frames; ) {
    const who = Math.floor(rnd() * tracks);
    const len = Math.floor((rnd() < 0.15 ? 30 + rnd() * 40 : 0.5 + rnd() * 6) / F);
    for (let i = f; i < Math.min(frames, f + len); i++) talk[who]![i] = 1;
    if (rnd() < 0.25) for (let i = f; i < Math.min(frames, f + len / 3); i++) talk[(who + 1) % tracks]![i] = 1;
    f += len + Math.floor(rnd() * 80);
  }
  return talk.map((mine, t) => {
    const env = new Float32Array(frames - t * 41);
    for (let f = 0; f < env.length; f++) {
      const others = talk.some((o, u) => u !== t && o[f + t * 23]);
      env[f] = rnd() < 0.003 ? SILENCE_DB : mine[f + t * 23] ? -28 + rnd() * 16 - (rnd() < 0.05 ? 30 : 0) : others ? -52 + rnd() * 6 : -74 + rnd() * 6;
    }
    return env;
  });
}

/** a source that counts its reads and checks every read is a chunk's, as a window asks */
function counted(env: Float32Array): EnvelopeSource & { reads: number; largest: number } {
  const s = arraySource(env);
  const c = {
    frames: s.frames,
    reads: 0,
    largest: 0,
    async read(from: number, to: number) {
      assert.ok(from >= 0 && to <= env.length && from < to, `read ${from}…${to} of ${env.length}`);
      c.reads++;
      c.largest = Math.max(c.largest, to - from);
      return new Float32Array(await s.read(from, to)); // a copy, as a stored read is
    },
  };
  return c;
}

test("noise floor: the 10th percentile of the non-silent frames, as a sort of them all gives", async () => {
  for (const env of meeting(3, 300, 7)) {
    const sorted = Array.from(env).filter((v) => v > SILENCE_DB).sort((a, b) => a - b);
    assert.equal(await noiseFloorDb(env), sorted[Math.floor(sorted.length * 0.1)]);
    assert.equal(await noiseFloorDb(counted(env)), sorted[Math.floor(sorted.length * 0.1)]);
  }
  assert.equal(await noiseFloorDb(new Float32Array(100).fill(SILENCE_DB)), SILENCE_DB);
  assert.equal(await noiseFloorDb(new Float32Array(100).fill(-63.25)), -63.25, "one bin holding every frame");
});

test("planner and bleed rule: windowed reads give the spans and words of whole envelopes", async () => {
  const envs = meeting(4, 600, 11);
  const offsets = [0, 1.37, 0.5, 12.02];
  const whole = envs.map((envelope, i) => ({ track_index: i, offset_seconds: offsets[i]!, frame_seconds: F, envelope }));
  const expected = await planSpeechSpans(whole, { bleedDb: 10 });
  const longest = Math.max(...[...expected.values()].flat().map((s) => s.end - s.start));
  assert.ok([...expected.values()].every((s) => s.length > 10), "every track has speech");
  assert.ok(longest > 20 && longest <= 25, `long turns were cut (longest span ${longest} s)`);
  // words on every span, some on the wrong track (bleed), some interpolated
  let seed = 3;
  const words: Word[] = [];
  for (const [track, spans] of expected) {
    for (const s of spans) {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      words.push({ text: "w", start: s.start + 0.05, end: Math.min(s.end, s.start + 0.5), speaker: seed % 3 === 0 ? (track + 1) % 4 : track, ...(seed % 5 === 0 ? { timing: "interpolated" as const } : {}) });
    }
  }
  words.reverse(); // not in time order: the rule sorts its visits, the result keeps the given order
  const bleedExpected = await suppressBleedWords(words, whole, 10);
  assert.ok(bleedExpected.dropped.length > 20 && bleedExpected.kept.length > 20, "some words are bleed, most are not");

  for (const chunkFrames of [37, 1000, 8192]) {
    const sources = envs.map((e) => counted(e));
    const windowed = sources.map((envelope, i) => ({ ...whole[i]!, envelope }));
    assert.deepEqual(await planSpeechSpans(windowed, { bleedDb: 10, chunkFrames }), expected, `chunks of ${chunkFrames} frames`);
    const bleed = await suppressBleedWords(words, windowed, 10, chunkFrames);
    assert.deepEqual(bleed.kept, bleedExpected.kept);
    assert.deepEqual(bleed.dropped, bleedExpected.dropped);
    // no read larger than a chunk or the forward passes' double chunk
    for (const s of sources) assert.ok(s.largest <= Math.max(chunkFrames, 65_536), `largest read ${s.largest} frames`);
  }
});

test("stored envelopes are read by byte range: the frames of the stored bytes, a missing key named", async () => {
  const storage = createLocalStorage(path.join(dir, "storage"));
  const env = meeting(1, 120, 5)[0]!;
  await storage.put("derived/r/envelope/0.f32", envelopeToBytes(env));
  const src = await storedEnvelope(storage, "derived/r/envelope/0.f32");
  assert.equal(src.frames, env.length);
  assert.deepEqual(Array.from(await src.read(1000, 1010)), Array.from(env.subarray(1000, 1010)));
  assert.equal((await src.read(5, 5)).length, 0);
  const w = new EnvelopeWindow(src, 256);
  await w.cover(env.length - 3, env.length + 50);
  assert.equal(w.at(env.length - 1), env[env.length - 1]);
  assert.throws(() => w.at(0), RangeError, "a frame outside the window is an error, not a silent value");
  const [t] = await envelopeSources(storage, [{ track_index: 0, offset_seconds: 2, frame_seconds: F, envelope_key: "derived/r/envelope/0.f32" }]);
  assert.equal(t!.envelope.frames, env.length);
  await assert.rejects(storedEnvelope(storage, "derived/r/envelope/9.f32"), StorageKeyNotFoundError);
});
