/**
 * End to end: `trackscribe process --json` on the fixture meeting (real audio, real
 * pocketsphinx, real NLP) as a child process. Asserts the Result contract, at least one
 * topic, a non-empty title, every participant present and speaking, words in time order,
 * exactly one JSON document on stdout, and an empty work directory afterwards. A second
 * run prints the readable transcript for one track of the same meeting.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";
import { FileManifest, Result } from "../../pipeline/contracts/index.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const cli = path.join(root, "bin", "trackscribe.mjs");
const tmp = mkdtempSync(path.join(os.tmpdir(), "process-e2e-"));
const fixtureDir = path.join(tmp, "fixture");
const workDir = path.join(tmp, "work");
let manifestPath = "";
let manifest: FileManifest;

before(async () => {
  const { buildFixtures } = (await import("../../scripts/build-fixtures.ts")) as {
    buildFixtures: (dir: string) => Promise<{ manifestPath?: string; manifest?: string } | unknown>;
  };
  const built = (await buildFixtures(fixtureDir)) as { manifestPath?: string } | undefined;
  manifestPath = built?.manifestPath ?? path.join(fixtureDir, "manifest.json");
  manifest = FileManifest.parse(JSON.parse(readFileSync(manifestPath, "utf8")));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], {
      cwd: tmp,
      env: { ...process.env, WORK_DIR: workDir, LOG_LEVEL: "info", TEXT_ENGINE: "offline", ASR_ENGINE: "pocketsphinx" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr, ms: performance.now() - started }));
  });
}

const leftovers = (): string[] => (existsSync(workDir) ? readdirSync(workDir, { recursive: true }).map(String) : []);

test("process --json on the fixture meeting prints one valid Result", { timeout: 240_000 }, async () => {
  const r = await run(["process", "--manifest", manifestPath, "--json"]);
  assert.equal(r.code, 0, `exit ${r.code}\n${r.stderr.slice(-3000)}`);
  // exactly one JSON document: the whole of stdout parses
  const doc = JSON.parse(r.stdout) as Record<string, unknown>;
  assert.ok(!("run" in doc), "the in-process engine adds no run block");
  const result = Result.parse(doc);
  assert.deepEqual(Object.keys(doc).sort(), ["action_items", "duration", "long_summary", "participants", "short_summary", "title", "topics", "tracks", "words"]);
  // every track made it (partial results: a failed one would be listed so)
  assert.deepEqual(result.tracks, manifest.tracks.map((t, i) => ({ speaker: i, name: t.participant, status: "ok" })));
  // every action item is owned by a participant and starts at one of that participant's words
  for (const a of result.action_items) assert.ok(result.words.some((w) => w.speaker === a.speaker && w.start === a.start), JSON.stringify(a));

  assert.deepEqual(
    result.participants,
    manifest.tracks.map((t, i) => ({ speaker: i, name: t.participant })),
  );
  for (const p of result.participants) {
    assert.ok(result.words.some((w) => w.speaker === p.speaker), `${p.name} has no words`);
  }
  for (let i = 1; i < result.words.length; i++) {
    const a = result.words[i - 1]!;
    const b = result.words[i]!;
    assert.ok(a.start < b.start || (a.start === b.start && a.speaker <= b.speaker), `words out of order at ${i}`);
  }
  assert.ok(result.words.every((w) => w.end >= w.start && w.end <= result.duration + 0.05));
  assert.ok(result.topics.length >= 1);
  assert.ok(result.title.trim().length > 0);
  assert.ok(result.short_summary.length > 0 && result.long_summary.length > 0);
  // topics partition the transcript
  assert.deepEqual(result.topics.flatMap((t) => t.words), result.words);
  assert.deepEqual(leftovers(), []);
  process.stderr.write(`# e2e --json: ${result.words.length} words, ${result.topics.length} topic(s), "${result.title}", ${(r.ms / 1000).toFixed(1)} s\n`);
});

test("process without --json prints a readable transcript, topics, title and summaries", { timeout: 240_000 }, async () => {
  // one track of the meeting, shifted by 5 s, keeps this run short
  const first = manifest.tracks[0]!;
  const one = path.join(tmp, "one.json");
  writeFileSync(
    one,
    JSON.stringify({ language: manifest.language, tracks: [{ ...first, path: path.resolve(path.dirname(manifestPath), first.path), offset_seconds: first.offset_seconds + 5 }] }),
  );
  const r = await run(["process", "--manifest", one]);
  assert.equal(r.code, 0, `exit ${r.code}\n${r.stderr.slice(-3000)}`);
  const name = first.participant.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const lines = r.stdout.split("\n").filter((l) => /^\[\d\d:\d\d\.\d\] /.test(l));
  assert.ok(lines.length >= 1, r.stdout);
  assert.ok(lines.every((l) => new RegExp(`^\\[\\d\\d:\\d\\d\\.\\d\\] ${name}: \\S`).test(l)), lines.join("\n"));
  // nothing before the 5 s shift
  assert.ok(lines.every((l) => Number(l.slice(1, 3)) * 60 + Number(l.slice(4, 8)) >= 5), lines[0]);
  assert.match(r.stdout, /^Title: \S/m);
  assert.match(r.stdout, /^Topics:\n\[\d\d:\d\d\.\d–\d\d:\d\d\.\d\] \S/m);
  assert.match(r.stdout, /^Short summary:\n\S/m);
  assert.match(r.stdout, /^Long summary:\n\S/m);
  assert.match(r.stdout, /^Action items:\n(- \[\d\d:\d\d\.\d\] \S|  \(none\))/m);
  // logs go to stderr, never to stdout
  assert.doesNotMatch(r.stdout, /"level":/);
  assert.deepEqual(leftovers(), []);
});
