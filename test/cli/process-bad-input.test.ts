/**
 * `trackscribe process` refuses bad input with one clear message on stderr, a non-zero
 * exit code, nothing on stdout and nothing left in the work directory. Every case runs
 * the real CLI as a child process.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const cli = path.join(root, "bin", "trackscribe.mjs");
const dir = mkdtempSync(path.join(os.tmpdir(), "process-bad-"));
const workDir = path.join(dir, "work");
/** as root, an unreadable file is only unreadable for another user: run the CLI as `nobody` */
const asNobody = process.getuid?.() === 0;

before(() => {
  chmodSync(dir, 0o755);
  execFileSync("ffmpeg", ["-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=0.5", "-ar", "16000", "-ac", "1", path.join(dir, "ok.wav")]);
  writeFileSync(path.join(dir, "empty.wav"), "");
  writeFileSync(path.join(dir, "notes.wav"), "these are meeting notes, not audio\n".repeat(20));
  writeFileSync(path.join(dir, "locked.wav"), "RIFF");
  chmodSync(path.join(dir, "locked.wav"), 0o000);
  mkdirSync(path.join(dir, "folder.wav"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  mkdirSync(workDir, { recursive: true });
  if (asNobody) chownSync(workDir, 65534, 65534);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], {
      cwd: dir,
      env: { ...process.env, WORK_DIR: workDir, HOME: workDir, LOG_LEVEL: "warn", TEXT_ENGINE: "offline" },
      stdio: ["ignore", "pipe", "pipe"],
      ...(asNobody ? { uid: 65534, gid: 65534 } : {}),
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

function filesUnder(d: string): string[] {
  if (!existsSync(d)) return [];
  return readdirSync(d, { recursive: true }).map(String);
}

function manifest(name: string, body: unknown): string {
  writeFileSync(path.join(dir, name), typeof body === "string" ? body : JSON.stringify(body));
  return name;
}

const cases: { name: string; manifest: () => string; json?: boolean; error: RegExp }[] = [
  {
    name: "a track file that does not exist",
    manifest: () => manifest("missing.json", { tracks: [{ path: "ok.wav", participant: "Alice" }, { path: "nope.wav", participant: "Bob" }] }),
    error: /track 1 \(Bob\): nope\.wav does not exist/,
  },
  {
    name: "a track file that cannot be read",
    manifest: () => manifest("locked.json", { tracks: [{ path: "locked.wav", participant: "Alice" }] }),
    error: /track 0 \(Alice\): locked\.wav is not readable \(EACCES\)/,
  },
  {
    name: "a track path that is a directory",
    manifest: () => manifest("folder.json", { tracks: [{ path: "folder.wav", participant: "Alice" }] }),
    error: /folder\.wav is not a regular file/,
  },
  {
    name: "a zero-byte track file",
    manifest: () => manifest("empty.json", { tracks: [{ path: "ok.wav", participant: "Alice" }, { path: "empty.wav", participant: "Bob" }] }),
    json: true,
    error: /track 1 \(Bob\): empty\.wav is empty \(0 bytes\)/,
  },
  {
    name: "a track file that is not audio",
    manifest: () => manifest("text.json", { tracks: [{ path: "notes.wav", participant: "Alice" }] }),
    json: true,
    error: /notes\.wav is not an audio file ffmpeg can read/,
  },
  {
    name: "a negative offset",
    manifest: () => manifest("negative.json", { tracks: [{ path: "ok.wav", participant: "Alice", offset_seconds: -1.5 }] }),
    error: /tracks\.0\.offset_seconds: offset_seconds must be ≥ 0/,
  },
  {
    name: "a non-numeric offset",
    manifest: () => manifest("nan.json", { tracks: [{ path: "ok.wav", participant: "Alice", offset_seconds: "ten" }] }),
    error: /tracks\.0\.offset_seconds: offset_seconds must be a number/,
  },
  {
    name: "duplicate participant names",
    manifest: () => manifest("dup.json", { tracks: [{ path: "ok.wav", participant: "Alice" }, { path: "ok.wav", participant: "alice" }] }),
    error: /duplicate participant name 'alice'/,
  },
  {
    name: "an empty track list",
    manifest: () => manifest("none.json", { language: "en", tracks: [] }),
    json: true,
    error: /the manifest has no tracks/,
  },
  {
    name: "a manifest that is not valid JSON",
    manifest: () => manifest("broken.json", '{"tracks": [{"path": "ok.wav",'),
    error: /manifest broken\.json is not valid JSON/,
  },
  {
    name: "unknown fields in the manifest",
    manifest: () => manifest("unknown.json", { tracks: [{ path: "ok.wav", participant: "Alice", volume: 3 }], speakers: 2 }),
    error: /Unrecognized key.*volume[\s\S]*Unrecognized key.*speakers|Unrecognized key.*speakers[\s\S]*Unrecognized key.*volume/,
  },
  {
    name: "a manifest file that does not exist",
    manifest: () => "no-such-manifest.json",
    error: /manifest no-such-manifest\.json does not exist/,
  },
];

for (const c of cases) {
  test(`refuses ${c.name}`, async () => {
    const r = await run(["process", "--manifest", c.manifest(), ...(c.json ? ["--json"] : [])]);
    assert.notEqual(r.code, 0, `exit code ${r.code}; stderr: ${r.stderr}`);
    assert.match(r.stderr, /^trackscribe: /);
    assert.match(r.stderr, c.error);
    assert.doesNotMatch(r.stderr, /\n\s+at /, "a user error must not print a stack trace");
    assert.equal(r.stdout, "");
    assert.deepEqual(filesUnder(workDir), [], "nothing may be left in the work directory");
  });
}

test("every unusable file is reported at once", async () => {
  const m = manifest("many.json", {
    tracks: [
      { path: "nope.wav", participant: "A" },
      { path: "empty.wav", participant: "B" },
      { path: "notes.wav", participant: "C" },
      { path: "ok.wav", participant: "D" },
    ],
  });
  const r = await run(["process", "--manifest", m]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /3 track files are unusable/);
  for (const re of [/nope\.wav does not exist/, /empty\.wav is empty/, /notes\.wav is not an audio file/]) assert.match(r.stderr, re);
  assert.doesNotMatch(r.stderr, /ok\.wav/);
  assert.deepEqual(filesUnder(workDir), []);
});

test("an unknown engine is refused by the argument parser", async () => {
  const r = await run(["process", "--manifest", manifest("fine.json", { tracks: [{ path: "ok.wav", participant: "A" }] }), "--engine", "spark"]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /spark/);
  assert.deepEqual(filesUnder(workDir), []);
});
