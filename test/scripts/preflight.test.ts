/**
 * The fresh-machine check as it runs: real processes on a PATH that holds only a stand-in
 * apt-get/apt-cache (the real ones would change this machine). The stand-in apt-get records
 * its arguments and, for `install`, puts the packages' programs and model files where the
 * check looks, so the check's second look is real too. Then the command line, `npm run demo`
 * and `npm test` as a user who is not root.
 */
import assert from "node:assert/strict";
import { spawnSync, type SpawnSyncOptions } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test, type TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import { CONDUCTOR_VERSION } from "../../scripts/conductor.ts";
import { preflight } from "../../scripts/preflight.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const LOCK = "-o DPkg::Lock::Timeout=300";

const FAKE_APT_GET = `#!/bin/sh
PATH=/usr/sbin:/usr/bin:/sbin:/bin
echo "$*" >> "$FAKE_APT_LOG"
case " $* " in *" update "*) [ "$FAKE_APT_FAIL" = update ] && { echo "E: could not reach the mirror" >&2; exit 100; }; exit 0;; esac
tool() { printf '#!/bin/sh\\nexit 0\\n' > "$FAKE_TOOLS/$1"; chmod +x "$FAKE_TOOLS/$1"; }
for p in "$@"; do
  case "$p" in
    ffmpeg) tool ffmpeg; tool ffprobe;;
    sox) tool sox;;
    pocketsphinx) tool pocketsphinx_batch;;
    maven) tool mvn;;
    pocketsphinx-en-us) mkdir -p "$POCKETSPHINX_HMM"; touch "$POCKETSPHINX_DICT" "$POCKETSPHINX_LM";;
    openjdk-21-jre-headless)
      mkdir -p "$FAKE_JVM/java-21/bin"
      printf '#!/bin/sh\\necho "openjdk version \\\\"21.0.9\\\\" 2025-10-21" >&2\\n' > "$FAKE_JVM/java-21/bin/java"
      chmod +x "$FAKE_JVM/java-21/bin/java";;
  esac
done
`;
const FAKE_APT_CACHE = `#!/bin/sh
for p in $FAKE_APT_KNOWS; do printf '%s:\\n  Installed: (none)\\n  Candidate: 1.0\\n' "$p"; done
`;

interface Machine {
  dir: string;
  env: NodeJS.ProcessEnv;
  jvmRoot: string;
  aptLog: string;
  aptCalls(): string[];
}

/** A machine with nothing installed: PATH = the stand-in apt and an empty tools directory. */
function freshMachine(t: TestContext, over: NodeJS.ProcessEnv = {}): Machine {
  const dir = mkdtempSync(path.join(os.tmpdir(), "ts-preflight-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const bin = path.join(dir, "bin");
  const tools = path.join(dir, "tools");
  const jvmRoot = path.join(dir, "jvm");
  for (const d of [bin, tools, jvmRoot, path.join(dir, "cache"), path.join(dir, "model")]) mkdirSync(d);
  writeFileSync(path.join(bin, "apt-get"), FAKE_APT_GET, { mode: 0o755 });
  writeFileSync(path.join(bin, "apt-cache"), FAKE_APT_CACHE, { mode: 0o755 });
  // readable and writable by a user who is not root (the command-line tests run as one)
  for (const d of [dir, bin, tools, jvmRoot, path.join(dir, "cache"), path.join(dir, "model")]) chmodSync(d, 0o777);
  const aptLog = path.join(dir, "apt.log");
  const env: NodeJS.ProcessEnv = {
    PATH: [bin, tools].join(path.delimiter),
    HOME: dir,
    TRACKSCRIBE_CACHE: path.join(dir, "cache"),
    POCKETSPHINX_HMM: path.join(dir, "model", "en-us"),
    POCKETSPHINX_DICT: path.join(dir, "model", "cmudict-en-us.dict"),
    POCKETSPHINX_LM: path.join(dir, "model", "en-us.lm.bin"),
    FAKE_APT_LOG: aptLog,
    FAKE_TOOLS: tools,
    FAKE_JVM: jvmRoot,
    FAKE_APT_KNOWS: "openjdk-21-jre-headless",
    ...over,
  };
  return { dir, env, jvmRoot, aptLog, aptCalls: () => (existsSync(aptLog) ? readFileSync(aptLog, "utf8").trim().split("\n") : []) };
}

const INSTALL_ALL = `install -y --no-install-recommends ffmpeg sox pocketsphinx pocketsphinx-en-us openjdk-21-jre-headless maven`;

test("not root: prints the exact apt command and fails, running nothing", (t) => {
  const m = freshMachine(t);
  const lines: string[] = [];
  const code = preflight({ purpose: "demo", uid: 1000, env: m.env, jvmRoot: m.jvmRoot, log: (l) => lines.push(l) });
  assert.equal(code, 1);
  const out = lines.join("\n");
  assert.ok(out.includes(`Install them with:\n  sudo apt-get ${LOCK} update && sudo apt-get ${LOCK} ${INSTALL_ALL}`), out);
  for (const what of ["ffmpeg and ffprobe", "sox", "pocketsphinx_batch", "US English model", "Java 21+", "Maven"]) assert.ok(out.includes(what), what);
  assert.deepEqual(m.aptCalls(), []);
});

test("root: apt-get update, then one install of what is missing; the second look finds everything", (t) => {
  const m = freshMachine(t);
  const lines: string[] = [];
  const code = preflight({ purpose: "demo", uid: 0, env: m.env, jvmRoot: m.jvmRoot, log: (l) => lines.push(l) });
  assert.equal(code, 0, lines.join("\n"));
  assert.deepEqual(m.aptCalls(), [`${LOCK} update`, `${LOCK} ${INSTALL_ALL}`]);
  // nothing left to do: no apt at all
  assert.equal(preflight({ purpose: "demo", uid: 0, env: m.env, jvmRoot: m.jvmRoot, log: (l) => lines.push(l) }), 0);
  assert.equal(m.aptCalls().length, 2);
});

test("root, tests: also espeak-ng and the LibriVox clips; a cached Conductor jar needs no Maven", (t) => {
  const m = freshMachine(t);
  mkdirSync(path.join(m.dir, "cache", "conductor"));
  writeFileSync(path.join(m.dir, "cache", "conductor", `conductor-server-${CONDUCTOR_VERSION}-boot.jar`), "");
  const lines: string[] = [];
  const code = preflight({ purpose: "test", uid: 0, env: m.env, jvmRoot: m.jvmRoot, log: (l) => lines.push(l) });
  // the stand-in apt gives no espeak-ng: the second look still misses it and says so
  assert.equal(code, 1);
  const install = m.aptCalls()[1] ?? "";
  assert.match(install, /install -y --no-install-recommends ffmpeg sox pocketsphinx pocketsphinx-en-us openjdk-21-jre-headless espeak-ng( pocketsphinx-testdata)? chromium$/);
  assert.doesNotMatch(install, /maven/);
  assert.match(lines.join("\n"), /Missing on this machine:\n {2}- espeak-ng/);
});

test("root without a JDK 21+ in the apt sources: the rest is installed, Java is reported", (t) => {
  const m = freshMachine(t, { FAKE_APT_KNOWS: "" });
  const lines: string[] = [];
  assert.equal(preflight({ purpose: "demo", uid: 0, env: m.env, jvmRoot: m.jvmRoot, log: (l) => lines.push(l) }), 1);
  assert.deepEqual(m.aptCalls(), [`${LOCK} update`, `${LOCK} install -y --no-install-recommends ffmpeg sox pocketsphinx pocketsphinx-en-us maven`]);
  const out = lines.join("\n");
  assert.match(out, /Missing on this machine:\n {2}- Java 21\+ \(runs the Conductor server\)\n/);
  assert.match(out, /no Java 21\+ package .*CONDUCTOR_JAVA/);
});

test("root, apt-get update fails: nothing installed, the failure shown", (t) => {
  const m = freshMachine(t, { FAKE_APT_FAIL: "update" });
  const lines: string[] = [];
  assert.equal(preflight({ purpose: "demo", uid: 0, env: m.env, jvmRoot: m.jvmRoot, log: (l) => lines.push(l) }), 1);
  assert.deepEqual(m.aptCalls(), [`${LOCK} update`]);
  assert.match(lines.join("\n"), /apt-get update failed \(exit 100\):\nE: could not reach the mirror/);
});

/** Runs a script of this repository as a user who is not root (nobody, when the tests run as root). */
function asUser(m: Machine, args: string[], over: NodeJS.ProcessEnv = {}) {
  const opts: SpawnSyncOptions = { cwd: root, env: { ...m.env, ...over }, encoding: "utf8", timeout: 120000 };
  if (process.getuid?.() === 0) Object.assign(opts, { uid: 65534, gid: 65534 });
  return spawnSync(process.execPath, args, opts) as { status: number | null; stdout: string; stderr: string };
}
const services = { CONDUCTOR_SERVER_URL: "http://127.0.0.1:9/api", DATABASE_URL: "postgres://x@127.0.0.1:9/x", S3_ENDPOINT: "http://127.0.0.1:9" };
const INSTALL_DEMO = `sudo apt-get ${LOCK} update && sudo apt-get ${LOCK} install -y --no-install-recommends ffmpeg sox pocketsphinx pocketsphinx-en-us`;

test("the command line, not root, PATH without any tool: the command printed, exit 1", (t) => {
  const m = freshMachine(t);
  const r = asUser(m, ["--import", "tsx", "scripts/preflight.ts", "--for", "demo", "--no-conductor"]);
  assert.equal(r.status, 1, r.stderr);
  assert.ok(r.stderr.split("\n").includes(`  ${INSTALL_DEMO}`), r.stderr);
  assert.deepEqual(m.aptCalls(), []);
  const usage = asUser(m, ["--import", "tsx", "scripts/preflight.ts", "--for", "party"]);
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /usage: preflight.ts --for demo\|test/);
});

test("npm run demo, not root, tools missing: the command printed, exit 1, no services started", (t) => {
  const m = freshMachine(t);
  // with services named (the demo reuses them) it needs no Conductor server of its own
  const r = asUser(m, ["--import", "tsx", "scripts/demo.ts"], services);
  assert.equal(r.status, 1, r.stderr);
  assert.ok(r.stderr.split("\n").includes(`  ${INSTALL_DEMO}`), r.stderr);
  assert.doesNotMatch(r.stdout, /bringing up services/);
  assert.deepEqual(m.aptCalls(), []);
});

test("npm test, not root, tools missing: the command printed, exit 1, no test run", (t) => {
  const m = freshMachine(t);
  const r = asUser(m, ["scripts/run-tests.mjs", "test/docs.test.ts"]);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /^ {2}sudo apt-get .* install -y --no-install-recommends ffmpeg sox pocketsphinx pocketsphinx-en-us espeak-ng( pocketsphinx-testdata)? chromium$/m);
  assert.doesNotMatch(r.stderr, /running \d+ test file/);
  assert.deepEqual(m.aptCalls(), []);
});
