/**
 * A pronunciation dictionary cut down to the language model's vocabulary.
 *
 * pocketsphinx's n-gram search only ever proposes words the language model knows: a
 * dictionary word without a unigram never enters the search tree. The Debian en-us model
 * pairs a 134,723-entry dictionary with a 72,547-word language model, so a decoder spends
 * about 0.13 s of its ≈0.6 s start-up reading pronunciations it can never use (measured:
 * 0.59 → 0.46 s per start on this machine). Every decoder start pays it, and with one
 * decoder per core a fresh worker pays it once per core before its first segment.
 * Cutting the dictionary to the model's words (keeping every pronunciation variant of
 * each, `word(2)` …) builds the same search tree (the decoder logs the same channel
 * counts) and decodes to the same words.
 *
 * The cut dictionary is written once per (dictionary, language model) pair, keyed by
 * their paths, sizes and modification times, and reused by every later decoder. When the
 * model's vocabulary cannot be read (a format we do not parse), the full dictionary is used.
 */
import { createHash } from "node:crypto";
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, renameSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";

const TRIE_MAGIC = "Trie Language Model";

/**
 * The words of a language model: sphinxbase's trie binary format (`.lm.bin`) or ARPA text
 * (`.lm`, `.arpa`). Null for anything else (e.g. the older DMP binary format).
 */
export function readLmVocabulary(lmPath: string): Set<string> | null {
  const fd = openSync(lmPath, "r");
  try {
    const size = fstatSync(fd).size;
    const head = Buffer.alloc(Math.min(size, 64));
    readSync(fd, head, 0, head.length, 0);
    if (head.subarray(0, TRIE_MAGIC.length).toString("latin1") === TRIE_MAGIC) return trieVocabulary(fd, size, head);
    if (/^\s*\\data\\/.test(head.toString("latin1"))) return arpaVocabulary(lmPath);
    return null;
  } finally {
    closeSync(fd);
  }
}

/**
 * Trie format: magic, order (1 byte), one uint32 count per order (unigrams first), the
 * tries, and last the vocabulary: a uint32 byte length, then that many bytes of
 * NUL-terminated words, as many as there are unigrams.
 */
function trieVocabulary(fd: number, size: number, head: Buffer): Set<string> | null {
  const order = head[TRIE_MAGIC.length];
  if (!order || head.length < TRIE_MAGIC.length + 1 + 4) return null;
  const unigrams = head.readUInt32LE(TRIE_MAGIC.length + 1);
  if (unigrams === 0) return null;
  // words average well under 64 bytes; read that much of the tail and find the length field
  const tailLength = Math.min(size, unigrams * 64 + 4);
  const tail = Buffer.alloc(tailLength);
  readSync(fd, tail, 0, tailLength, size - tailLength);
  for (let p = tailLength - 5; p >= 0; p--) {
    if (tail.readUInt32LE(p) !== tailLength - p - 4) continue;
    if (tail[tailLength - 1] !== 0) return null;
    const words = tail.subarray(p + 4, tailLength - 1).toString("utf8").split("\0");
    if (words.length !== unigrams) continue; // a coincidence inside the tries: keep looking
    return new Set(words);
  }
  return null;
}

/** ARPA text: the lines of the `\1-grams:` section are `logprob word [backoff]`. */
function arpaVocabulary(lmPath: string): Set<string> | null {
  const lines = readFileSync(lmPath, "utf8").split("\n");
  const start = lines.findIndex((l) => l.trim() === "\\1-grams:");
  if (start < 0) return null;
  const words = new Set<string>();
  for (let i = start + 1; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line.startsWith("\\")) break;
    const f = line.split(/\s+/);
    if (f.length >= 2) words.add(f[1]!);
  }
  return words.size > 0 ? words : null;
}

/** Keep the dictionary lines whose word (without a `(n)` variant suffix) the vocabulary holds. */
export function pruneDictionary(dictText: string, vocabulary: ReadonlySet<string>): { text: string; kept: number; total: number } {
  const out: string[] = [];
  let total = 0;
  for (const line of dictText.split("\n")) {
    const entry = line.trim();
    if (!entry) continue;
    total += 1;
    const word = entry.split(/\s/, 1)[0]!.replace(/\(\d+\)$/, "");
    if (vocabulary.has(word)) out.push(entry);
  }
  return { text: out.length ? `${out.join("\n")}\n` : "", kept: out.length, total };
}

export interface PrunedDictionary {
  path: string;
  kept: number;
  total: number;
}

/**
 * The dictionary to give the decoders: a cached copy cut to the language model's words, or
 * null (use the full one) when the vocabulary cannot be read or the cut would remove nothing.
 */
export function prunedDictionary(dictPath: string, lmPath: string, cacheDir: string): PrunedDictionary | null {
  let key: string;
  try {
    const d = statSync(dictPath);
    const l = statSync(lmPath);
    key = createHash("sha256")
      .update(`${path.resolve(dictPath)}\0${d.size}\0${d.mtimeMs}\0${path.resolve(lmPath)}\0${l.size}\0${l.mtimeMs}`)
      .digest("hex")
      .slice(0, 24);
  } catch {
    return null; // a missing file: let the decoder report it
  }
  const out = path.join(cacheDir, `dict-${key}.dict`);
  const meta = `${out}.json`;
  if (existsSync(out) && existsSync(meta)) {
    try {
      const m = JSON.parse(readFileSync(meta, "utf8")) as { kept: number; total: number };
      return { path: out, kept: m.kept, total: m.total };
    } catch {
      // rewritten below
    }
  }
  const vocabulary = readLmVocabulary(lmPath);
  if (!vocabulary) return null;
  const { text, kept, total } = pruneDictionary(readFileSync(dictPath, "utf8"), vocabulary);
  if (kept === 0 || kept === total) return null;
  mkdirSync(cacheDir, { recursive: true });
  // written aside and renamed, so a decoder starting meanwhile never reads half a file
  const tmp = `${out}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, out);
  writeFileSync(`${meta}.${process.pid}.tmp`, JSON.stringify({ kept, total, dict: dictPath, lm: lmPath }));
  renameSync(`${meta}.${process.pid}.tmp`, meta);
  return { path: out, kept, total };
}
