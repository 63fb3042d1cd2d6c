/**
 * The pocketsphinx engine on real speech: only the given spans are decoded, word times come
 * back in file-local seconds, progress is reported while the batch decoder runs, and
 * failures (missing binary, broken model, wrong language) are clear AsrErrors.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { AsrError, createPocketsphinxEngine } from "../../adapters/asr/index.ts";
import { readWav, writeWav } from "../../pipeline/audio/wav.ts";
import { loadConfig } from "../../pipeline/config.ts";
import { wordErrorRate } from "../../pipeline/metrics/wer.ts";

const LIBRIVOX = "/usr/share/pocketsphinx/test/data/librivox";
const CLIP = "0880"; // ≈ 3 s: "he was not an ill disposed young man"
const config = loadConfig({});
const models = { hmm: config.POCKETSPHINX_HMM, dict: config.POCKETSPHINX_DICT, lm: config.POCKETSPHINX_LM };

let dir: string;
let wavPath: string;
let clipSeconds: number;
let reference: string;
const AT = 6; // the clip sits at 6 s of a 12 s file; the rest is loud noise nobody should decode

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "ts-psx-"));
  const clip = readWav(readFileSync(path.join(LIBRIVOX, `sense_and_sensibility_01_austen_64kb-${CLIP}.wav`)));
  clipSeconds = clip.samples.length / 16000;
  reference = readFileSync(path.join(LIBRIVOX, "transcription"), "utf8")
    .split("\n")
    .find((l) => l.includes(`-${CLIP})`))!
    .replace(/<\/?s>|\(.*\)/g, "")
    .trim();
  const samples = new Int16Array(16000 * 12);
  let seed = 7;
  for (let i = 0; i < samples.length; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    samples[i] = Math.round(((seed / 0xffffffff) * 2 - 1) * 3000);
  }
  samples.set(clip.samples, AT * 16000);
  wavPath = path.join(dir, "track.wav");
  await writeFile(wavPath, writeWav({ sampleRate: 16000, samples }));
});
after(() => rm(dir, { recursive: true, force: true }));

test("decodes only the given span; words map back to file-local seconds; progress ends at 1", async () => {
  const engine = createPocketsphinxEngine(models);
  const progress: number[] = [];
  const words = await engine.transcribe(wavPath, {
    language: "en",
    spans: [{ start: AT - 0.2, end: AT + clipSeconds + 0.2 }],
    onProgress: (f) => progress.push(f),
  });
  const wer = wordErrorRate(reference, words.map((w) => w.text));
  assert.ok(wer <= 0.5, `WER ${wer}: ${words.map((w) => w.text).join(" ")} vs ${reference}`);
  for (const w of words) {
    assert.ok(w.start >= AT - 0.2 && w.end <= AT + clipSeconds + 0.2, `${w.text} at ${w.start}–${w.end} is outside the span`);
    assert.ok(w.end >= w.start);
    assert.doesNotMatch(w.text, /^<|\[|\(\d+\)$/, "fillers and pronunciation variants are removed");
  }
  // the first word starts near the clip's first speech, not near 0
  assert.ok(words[0]!.start > AT - 0.2 && words[0]!.start < AT + 1, `first word at ${words[0]!.start}`);
  assert.ok(progress.length >= 2, JSON.stringify(progress));
  assert.deepEqual([...progress].sort((a, b) => a - b), progress, "progress never goes back");
  assert.equal(progress[progress.length - 1], 1);
});

test("no spans to decode → no words and no decoder run", async () => {
  const engine = createPocketsphinxEngine({ ...models, binary: "/nonexistent/pocketsphinx_batch" });
  assert.deepEqual(await engine.transcribe(wavPath, { language: "en", spans: [] }), []);
});

test("failures are AsrErrors that say what went wrong", async () => {
  const span = { language: "en", spans: [{ start: AT, end: AT + 1 }] };
  await assert.rejects(
    createPocketsphinxEngine({ ...models, binary: "/nonexistent/pocketsphinx_batch" }).transcribe(wavPath, span),
    (e: unknown) => e instanceof AsrError && !e.retryable && /could not start/.test(e.message),
  );
  await assert.rejects(
    createPocketsphinxEngine({ ...models, hmm: path.join(dir, "no-such-model") }).transcribe(wavPath, span),
    (e: unknown) => e instanceof AsrError && /exited with/.test(e.message) && e.message.length > 40,
  );
  await assert.rejects(
    createPocketsphinxEngine(models).transcribe(wavPath, { ...span, language: "de" }),
    (e: unknown) => e instanceof AsrError && !e.retryable && /English/.test(e.message),
  );
});

test("the dictionary cut to the language model's words decodes to the same words and times", async () => {
  const span = { language: "en", spans: [{ start: AT - 0.2, end: AT + clipSeconds + 0.2 }] };
  const cut = createPocketsphinxEngine({ ...models, cacheDir: path.join(dir, "dict-cache") });
  const full = createPocketsphinxEngine({ ...models, pruneDict: false });
  try {
    const [a, b] = await Promise.all([cut.transcribe(wavPath, span), full.transcribe(wavPath, span)]);
    assert.ok(a.length >= 5, `decoded ${a.length} words`);
    assert.deepEqual(a, b);
  } finally {
    await Promise.all([cut.close?.(), full.close?.()]);
  }
  // the cut dictionary was written and is smaller than the full one
  const files = readdirSync(path.join(dir, "dict-cache")).filter((f) => f.endsWith(".dict"));
  assert.equal(files.length, 1);
  const lines = (f: string): number => readFileSync(f, "utf8").trim().split("\n").length;
  assert.ok(lines(path.join(dir, "dict-cache", files[0]!)) < lines(models.dict) * 0.7);
});
