/**
 * Memory does not grow with a recording's length: a 30-minute and a 3-hour mostly-silent
 * track (a short burst of sound every minute) go through prepare_track and mixdown, and
 * through transcribe_track, and ten such tracks' envelopes through plan_speech and
 * suppress_bleed, each in a child process whose peak RSS (VmHWM) is read from /proc; the
 * long meeting's peak stays within 10% of the short one's. The recognizer is the
 * protocol-compatible stand-in (test/asr/fake-decoder.mjs): it is a process of its own, as
 * pocketsphinx is, and what is measured is what our process holds while it feeds it.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { once } from "node:events";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { wavHeader } from "../../pipeline/audio/wav.ts";
import { envelopeToBytes } from "../../pipeline/audio/envelope.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const dir = mkdtempSync(path.join(os.tmpdir(), "ts-mem-"));
const RATE = 16000;
const wav = (minutes: number): string => path.join(dir, `track-${minutes}.wav`);
const envelopes = (minutes: number): string => path.join(dir, `envelopes-${minutes}`);
const TRACKS = 10;

/**
 * Ten tracks' envelopes (20 ms frames) as prepare_track stores them, track i starting at
 * i × 0.5 s (the offsets step-child.ts gives them): a 3-second turn at the start of every
 * minute, minute m's by track m mod 10, heard 26 dB down on the others; faint noise between.
 */
function writeEnvelopes(minutes: number): void {
  mkdirSync(envelopes(minutes));
  let seed = minutes;
  for (let t = 0; t < TRACKS; t++) {
    const env = new Float32Array(minutes * 60 * 50);
    for (let f = 0; f < env.length; f++) {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      const g = t * 0.5 + f * 0.02;
      const turn = g % 60 < 3 && g < minutes * 60;
      env[f] = (turn ? (Math.floor(g / 60) % TRACKS === t ? -20 : -46) : -72) + (seed / 0xffffffff) * 4;
    }
    writeFileSync(path.join(envelopes(minutes), `env-${t}.f32`), envelopeToBytes(env));
  }
}

/** `minutes` of faint noise with a 3-second loud burst at the start of every minute, written a second at a time. */
async function writeMostlySilent(file: string, minutes: number): Promise<void> {
  const seconds = minutes * 60;
  const out = createWriteStream(file);
  out.write(wavHeader(seconds * RATE * 2, RATE));
  let seed = minutes;
  const second = new Int16Array(RATE);
  for (let s = 0; s < seconds; s++) {
    const loud = s % 60 < 3;
    for (let i = 0; i < RATE; i++) {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      const noise = (seed / 0xffffffff) * 2 - 1;
      second[i] = Math.round(loud ? noise * 6000 + 4000 * Math.sin((2 * Math.PI * 220 * i) / RATE) : noise * 30);
    }
    if (!out.write(Buffer.from(second.buffer.slice(0)))) await once(out, "drain");
  }
  out.end();
  await once(out, "finish");
}

let decoder: string;
before(async () => {
  await writeMostlySilent(wav(1), 1);
  await writeMostlySilent(wav(30), 30);
  await writeMostlySilent(wav(180), 180);
  writeEnvelopes(30);
  writeEnvelopes(180);
  // the stand-in recognizer as an executable, as the engine expects its decoder binary
  decoder = path.join(dir, "fake-decoder");
  writeFileSync(decoder, `#!/bin/sh\nexec "${process.execPath}" "${path.join(root, "test/asr/fake-decoder.mjs")}" "$@"\n`);
  chmodSync(decoder, 0o755);
  // a first run fills tsx's compile cache, which a cold start adds to its process's peak
  run(1, "transcribe");
});
after(() => rmSync(dir, { recursive: true, force: true }));

interface Reading {
  peak_kb: number;
  baseline_kb: number;
  duration_seconds: number;
  decoded_seconds?: number;
  words?: number;
  mixdown_seconds?: number;
  spans?: number;
  kept?: number;
}

/** One child run; the readings it prints. */
function run(minutes: number, mode: "prepare-mixdown" | "transcribe" | "plan-bleed"): Reading {
  const work = mkdtempSync(path.join(dir, `${mode}-${minutes}-`));
  try {
    // V8's young generation is pinned small: left to itself it grows with the amount allocated
    // (6× the segments, a few MB more new space, under load ×1.11), which is V8 sizing its
    // scavenger and not something our steps keep; pinned, the peak shows what they retain
    const out = execFileSync(process.execPath, ["--max-semi-space-size=2", "--import", "tsx", path.join(here, "step-child.ts"), mode === "plan-bleed" ? envelopes(minutes) : wav(minutes), work, mode, ...(mode === "transcribe" ? [decoder] : [])], {
      cwd: root,
      encoding: "utf8",
      env: { ...process.env, LOG_LEVEL: "silent" },
      maxBuffer: 1 << 20,
    });
    return JSON.parse(out.trim().split("\n").pop()!) as Reading;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

test("prepare_track and mixdown: a 3-hour track peaks within 10% of a 30-minute one", () => {
  const short = run(30, "prepare-mixdown");
  const long = run(180, "prepare-mixdown");
  assert.equal(Math.round(short.duration_seconds), 1800);
  assert.equal(Math.round(long.duration_seconds), 10800);
  assert.ok(Math.abs(long.mixdown_seconds! - 10801.5) < 2, `the mixdown covers the whole timeline (${long.mixdown_seconds} s)`);
  const ratio = long.peak_kb / short.peak_kb;
  assert.ok(ratio <= 1.1, `peak RSS ${Math.round(short.peak_kb / 1024)} MB for 30 min, ${Math.round(long.peak_kb / 1024)} MB for 3 h (×${ratio.toFixed(2)})`);
});

test("transcribe_track: a 3-hour track with 6× the speech peaks within 10% of a 30-minute one", () => {
  const short = run(30, "transcribe");
  const long = run(180, "transcribe");
  // every burst was decoded (the stand-in answers two words per segment)
  assert.equal(Math.round(long.decoded_seconds!), 180 * 3.25);
  assert.equal(long.words, 180 * 2);
  assert.equal(short.words, 30 * 2);
  const ratio = long.peak_kb / short.peak_kb;
  assert.ok(ratio <= 1.1, `peak RSS ${Math.round(short.peak_kb / 1024)} MB for 30 min, ${Math.round(long.peak_kb / 1024)} MB for 3 h (×${ratio.toFixed(2)})`);
});

test("plan_speech and suppress_bleed: ten 3-hour tracks peak within 10% of ten 30-minute ones", () => {
  const short = run(30, "plan-bleed");
  const long = run(180, "plan-bleed");
  // every turn planned on its own track only (the bleed skipped), every word on a turn kept
  assert.equal(short.spans, 30);
  assert.equal(long.spans, 180);
  assert.equal(long.words, 180);
  assert.equal(long.kept, 180);
  const ratio = long.peak_kb / short.peak_kb;
  assert.ok(ratio <= 1.1, `peak RSS ${Math.round(short.peak_kb / 1024)} MB for 30 min, ${Math.round(long.peak_kb / 1024)} MB for 3 h (×${ratio.toFixed(2)})`);
});
