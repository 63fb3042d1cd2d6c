/**
 * planSegments reads a WAV by position and must plan exactly the segments segmentsToDecode
 * plans over the whole track in memory (same cut points, so the same words), for spans
 * shorter and longer than a segment, spans past the end, and the whole file.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { planSegments, segmentsToDecode } from "../../pipeline/asr/spans.ts";
import { openPcmReader, readWav, writeWav } from "../../pipeline/audio/wav.ts";

const dir = mkdtempSync(path.join(os.tmpdir(), "ts-spans-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** 140.013 s of noise whose loudness wanders, so every cut point has one quietest frame. */
function track(): string {
  const n = Math.round(140.013 * 16000);
  const samples = new Int16Array(n);
  let seed = 11;
  for (let i = 0; i < n; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    const loud = 0.55 + 0.45 * Math.sin(i / 5300) * Math.sin(i / 17100);
    samples[i] = Math.round(((seed / 0xffffffff) * 2 - 1) * 12000 * loud);
  }
  const file = path.join(dir, "t.wav");
  writeFileSync(file, writeWav({ sampleRate: 16000, samples }));
  return file;
}

test("the segments planned by positioned reads are those planned over the whole track", async () => {
  const file = track();
  const pcm = readWav((await import("node:fs")).readFileSync(file));
  const cases: ({ start: number; end: number }[] | undefined)[] = [
    undefined,
    [{ start: 0.5, end: 20 }],
    [{ start: 3.31, end: 61.07 }, { start: 70, end: 70.03 }, { start: 80.2, end: 139.5 }],
    [{ start: -2, end: 30 }, { start: 100, end: 400 }],
    [{ start: 12.34, end: 12.345 + 25 }, { start: 40, end: 40 + 50.02 }],
  ];
  const reader = await openPcmReader(file);
  try {
    for (const spans of cases) {
      const want = segmentsToDecode(pcm, spans);
      assert.ok(want.length > 0);
      assert.deepEqual(await planSegments(reader, spans), want, JSON.stringify(spans));
    }
    // ranges read by position are the samples at those positions
    const got = await reader.read(16000 * 7 + 3, 16000 * 9);
    assert.deepEqual(Array.from(got), Array.from(pcm.samples.subarray(16000 * 7 + 3, 16000 * 9)));
    assert.equal((await reader.read(pcm.samples.length - 5, pcm.samples.length + 100)).length, 5);
    const raw = path.join(dir, "seg.raw");
    await reader.copyTo(raw, 16000 * 30, 16000 * 60 + 1);
    const bytes = (await import("node:fs")).readFileSync(raw);
    assert.deepEqual(bytes, Buffer.from(pcm.samples.buffer, pcm.samples.byteOffset + 16000 * 30 * 2, (16000 * 30 + 1) * 2));
  } finally {
    await reader.close();
  }
});
