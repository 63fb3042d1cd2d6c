/**
 * The dictionary cut to the language model's words: the vocabulary is read from both
 * language model formats we meet (trie binary, ARPA text), pronunciation variants stay,
 * unknown formats fall back to the full dictionary, and the cut file is cached per model.
 */
import assert from "node:assert/strict";
import { readFileSync, statSync, utimesSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { pruneDictionary, prunedDictionary, readLmVocabulary } from "../../adapters/asr/dict-prune.ts";
import { loadConfig } from "../../pipeline/config.ts";

const config = loadConfig({});
let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "ts-dict-"));
});
after(() => rm(dir, { recursive: true, force: true }));

const ARPA = `
\\data\\
ngram 1=4
ngram 2=1

\\1-grams:
-1.0 <s> -0.3
-1.0 </s>
-2.0 hello -0.2
-2.0 world

\\2-grams:
-0.5 hello world

\\end\\
`;
const DICT = ["hello HH AH L OW", "hello(2) HH EH L OW", "help HH EH L P", "world W ER L D", "worlds W ER L D Z", ""].join("\n");

test("the installed trie-format model: every unigram the header counts, nothing else", () => {
  const vocab = readLmVocabulary(config.POCKETSPHINX_LM);
  assert.ok(vocab, "the vocabulary of the installed model is readable");
  const head = readFileSync(config.POCKETSPHINX_LM).subarray(0, 24);
  assert.equal(vocab.size, head.readUInt32LE(20), "as many words as the header's unigram count");
  for (const w of ["<s>", "</s>", "hello", "meeting", "budget"]) assert.ok(vocab.has(w), w);
  assert.ok(!vocab.has(""), "no empty word");
});

test("ARPA text: the words of the 1-grams section; other formats: null", async () => {
  const arpa = path.join(dir, "tiny.lm");
  await writeFile(arpa, ARPA);
  assert.deepEqual([...readLmVocabulary(arpa)!].sort(), ["</s>", "<s>", "hello", "world"]);
  const other = path.join(dir, "other.lm.DMP");
  await writeFile(other, Buffer.from("Darpa Trigram LM\0 some binary"));
  assert.equal(readLmVocabulary(other), null);
});

test("pruning keeps every pronunciation of the model's words and drops the rest", () => {
  const out = pruneDictionary(DICT, new Set(["hello", "world", "<s>"]));
  assert.deepEqual(out.text.trim().split("\n"), ["hello HH AH L OW", "hello(2) HH EH L OW", "world W ER L D"]);
  assert.deepEqual([out.kept, out.total], [3, 5]);
});

test("the cut dictionary is written once per model and rewritten when the model changes", async () => {
  const lm = path.join(dir, "cache.lm");
  const dict = path.join(dir, "cache.dict");
  await writeFile(lm, ARPA);
  await writeFile(dict, DICT);
  const cache = path.join(dir, "cache");
  const first = prunedDictionary(dict, lm, cache);
  assert.ok(first);
  assert.deepEqual([first.kept, first.total], [3, 5]);
  assert.match(readFileSync(first.path, "utf8"), /^hello HH AH L OW\nhello\(2\) HH EH L OW\nworld W ER L D\n$/);
  const written = statSync(first.path).mtimeMs;
  const again = prunedDictionary(dict, lm, cache);
  assert.deepEqual(again, first);
  assert.equal(statSync(first.path).mtimeMs, written, "the cached file is reused, not rewritten");
  // a changed model is a new cut
  await writeFile(lm, ARPA.replace("-2.0 world", "-2.0 worlds").replace("hello world", "hello worlds"));
  utimesSync(lm, new Date(), new Date(Date.now() + 5000));
  const changed = prunedDictionary(dict, lm, cache);
  assert.ok(changed && changed.path !== first.path);
  assert.match(readFileSync(changed.path, "utf8"), /worlds W ER L D Z/);
  assert.doesNotMatch(readFileSync(changed.path, "utf8"), /^world /m);
  // nothing to cut, or a model we cannot read: the full dictionary (null)
  await writeFile(path.join(dir, "all.dict"), "hello HH AH L OW\nworld W ER L D\n");
  await writeFile(lm, ARPA);
  utimesSync(lm, new Date(), new Date(Date.now() + 10_000));
  assert.equal(prunedDictionary(path.join(dir, "all.dict"), lm, cache), null);
  await writeFile(path.join(dir, "x.bin"), "not a model");
  assert.equal(prunedDictionary(dict, path.join(dir, "x.bin"), cache), null);
  assert.equal(prunedDictionary(dict, path.join(dir, "missing.lm"), cache), null);
});
