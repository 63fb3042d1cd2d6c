/**
 * The speech bundled for the demo (scripts/sample/): small, and decoded it is exactly the
 * pocketsphinx-testdata clips it was made from, so the sample meeting is the same whichever
 * way it is built.
 */
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { readWav } from "../../pipeline/audio/wav.ts";
import { decodeClip, LIBRIVOX, loadSample, readSampleIndex, SAMPLE_DIR } from "../../scripts/build-sample.ts";

test("the bundle is a few hundred KB and names five clips with their transcripts", () => {
  const index = readSampleIndex();
  assert.deepEqual(index.clips.map((c) => c.id), ["0870", "0880", "0890", "0920", "0930"]);
  const bytes = index.clips.reduce((n, c) => n + statSync(path.join(SAMPLE_DIR, c.file)).size, 0);
  assert.ok(bytes < 500 * 1024, `${bytes} bytes`);
  for (const c of index.clips) assert.match(c.text, /^[a-z ]+$/);
});

test("decoded, every clip is the pocketsphinx-testdata original sample for sample, with its transcript", () => {
  const transcripts = readFileSync(path.join(LIBRIVOX, "transcription"), "utf8");
  for (const [id, clip] of loadSample()) {
    const original = readWav(readFileSync(path.join(LIBRIVOX, `sense_and_sensibility_01_austen_64kb-${id}.wav`)));
    assert.equal(clip.samples.length, original.samples.length, id);
    assert.ok(Buffer.from(clip.samples.buffer).equals(Buffer.from(original.samples.buffer)), `${id} differs from the original`);
    assert.ok(transcripts.includes(`<s> ${clip.text} </s> (sense_and_sensibility_01_austen_64kb-${id})`), id);
  }
});

test("a clip that does not decode to its recorded samples is refused", (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "ts-sample-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const [first, second] = readSampleIndex().clips;
  copyFileSync(path.join(SAMPLE_DIR, second!.file), path.join(dir, first!.file));
  writeFileSync(path.join(dir, "clips.json"), JSON.stringify({ ...readSampleIndex(), clips: [first] }));
  assert.throws(() => decodeClip(first!, dir), /does not decode to the clip it was made from/);
  assert.throws(() => loadSample(dir), /regenerate with npm run sample/);
});
