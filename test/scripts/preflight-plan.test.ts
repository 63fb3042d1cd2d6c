/** The fresh-machine plan: which tools a purpose needs, which apt packages give them, the command. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { describe, parseAptPolicy, parseJavaMajor, planInstall, requirements, type Needs } from "../../scripts/preflight-plan.ts";

const needs = (over: Partial<Needs> = {}): Needs => ({
  purpose: "demo",
  conductor: true,
  fetchJar: true,
  pocketsphinx: true,
  model: ["/m/hmm", "/m/dict", "/m/lm"],
  testdata: "/t/librivox",
  ...over,
});
const ids = (n: Needs): string[] => requirements(n).map((r) => r.id);
const byId = (n: Needs, wanted: string[]) => requirements(n).filter((r) => wanted.includes(r.id));

test("the demo needs the audio tools, pocketsphinx and its model, Java and Maven; tests also espeak-ng, the LibriVox clips and Chromium", () => {
  assert.deepEqual(ids(needs()), ["ffmpeg", "sox", "pocketsphinx", "pocketsphinx-model", "java", "maven"]);
  assert.deepEqual(ids(needs({ purpose: "test" })), ["ffmpeg", "sox", "pocketsphinx", "pocketsphinx-model", "java", "maven", "espeak-ng", "pocketsphinx-testdata", "chromium"]);
  const model = requirements(needs()).find((r) => r.id === "pocketsphinx-model")!;
  assert.deepEqual(model.files, ["/m/hmm", "/m/dict", "/m/lm"]);
  assert.deepEqual(requirements(needs({ purpose: "test" })).find((r) => r.id === "pocketsphinx-testdata")!.files, ["/t/librivox"]);
});

test("Maven only while the Conductor jar is not cached, Java and Maven only when a Conductor server is started here", () => {
  assert.deepEqual(ids(needs({ fetchJar: false })), ["ffmpeg", "sox", "pocketsphinx", "pocketsphinx-model", "java"]);
  assert.deepEqual(ids(needs({ conductor: false })), ["ffmpeg", "sox", "pocketsphinx", "pocketsphinx-model"]);
  assert.deepEqual(ids(needs({ purpose: "test", conductor: false })), ["ffmpeg", "sox", "pocketsphinx", "pocketsphinx-model", "espeak-ng", "pocketsphinx-testdata", "chromium"]);
});

test("a demo on the HTTP ASR engine needs no pocketsphinx; the tests always do", () => {
  assert.deepEqual(ids(needs({ pocketsphinx: false, conductor: false })), ["ffmpeg", "sox"]);
  assert.ok(ids(needs({ purpose: "test", pocketsphinx: false })).includes("pocketsphinx-model"));
});

test("not root: one pasteable line with sudo, apt-get update first, packages in requirement order", () => {
  const missing = byId(needs(), ["ffmpeg", "pocketsphinx-model", "java", "maven"]);
  const plan = planInstall(missing, { root: false, aptKnows: (p) => p === "openjdk-25-jre-headless" });
  assert.deepEqual(plan.packages, ["ffmpeg", "pocketsphinx-en-us", "openjdk-25-jre-headless", "maven"]);
  assert.deepEqual(plan.unresolved, []);
  assert.equal(
    plan.command,
    "sudo apt-get -o DPkg::Lock::Timeout=300 update && " +
      "sudo apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends ffmpeg pocketsphinx-en-us openjdk-25-jre-headless maven",
  );
  assert.deepEqual(plan.install, ["apt-get", "-o", "DPkg::Lock::Timeout=300", "install", "-y", "--no-install-recommends", "ffmpeg", "pocketsphinx-en-us", "openjdk-25-jre-headless", "maven"]);
  const text = describe(plan, { apt: true });
  assert.match(text, /^Missing on this machine:\n {2}- ffmpeg and ffprobe/);
  assert.ok(text.endsWith(`Install them with:\n  ${plan.command}`), text);
});

test("root: the same command without sudo; Java takes the first JDK apt has, in order of preference", () => {
  const missing = byId(needs(), ["java"]);
  const plan = planInstall(missing, { root: true, aptKnows: () => true });
  assert.deepEqual(plan.packages, ["openjdk-21-jre-headless"]);
  assert.equal(plan.command, "apt-get -o DPkg::Lock::Timeout=300 update && apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends openjdk-21-jre-headless");
});

test("no JDK 21+ in the apt sources (Debian 12): the rest is planned, Java is reported with what to do", () => {
  const missing = byId(needs(), ["sox", "java"]);
  const plan = planInstall(missing, { root: false, aptKnows: () => false });
  assert.deepEqual(plan.packages, ["sox"]);
  assert.deepEqual(plan.unresolved.map((r) => r.id), ["java"]);
  const text = describe(plan, { apt: true });
  assert.match(text, /install -y --no-install-recommends sox\n/);
  assert.match(text, /Java 21\+ \(runs the Conductor server\): this machine's apt sources have no Java 21\+ package .*CONDUCTOR_JAVA/);

  const onlyJava = planInstall(byId(needs(), ["java"]), { root: true, aptKnows: () => false });
  assert.equal(onlyJava.command, undefined);
  assert.equal(onlyJava.install, undefined);
});

test("without apt nothing is planned and every missing tool is named with its Debian package", () => {
  const plan = planInstall(byId(needs(), ["ffmpeg", "maven"]), { root: true });
  assert.deepEqual(plan.packages, []);
  assert.equal(plan.command, undefined);
  const text = describe(plan, { apt: false });
  assert.doesNotMatch(text, /apt-get/);
  assert.match(text, /ffmpeg and ffprobe .*: install it with this system's package manager \(Debian\/Ubuntu package: ffmpeg\)/);
  assert.match(text, /Maven .*\(Debian\/Ubuntu package: maven\)/);
});

test("a package that gives two requirements is installed once", () => {
  const twice = [...byId(needs(), ["sox"]), ...byId(needs(), ["sox"])];
  assert.deepEqual(planInstall(twice, { root: true, aptKnows: () => true }).packages, ["sox"]);
});

test("apt-cache policy: packages with a candidate; Java version banners", () => {
  const policy = [
    "openjdk-21-jre-headless:",
    "  Installed: (none)",
    "  Candidate: 21.0.9+10-1~deb13u1",
    "  Version table:",
    "     21.0.9+10-1~deb13u1 500",
    "openjdk-25-jre-headless:amd64:",
    "  Installed: (none)",
    "  Candidate: (none)",
    "temurin-21-jdk:",
    "  Installed: 21.0.5.0.0+11",
    "  Candidate: 21.0.5.0.0+11",
    "",
  ].join("\n");
  assert.deepEqual([...parseAptPolicy(policy)].sort(), ["openjdk-21-jre-headless", "temurin-21-jdk"]);
  assert.deepEqual([...parseAptPolicy("")], []);

  assert.equal(parseJavaMajor('openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime Environment'), 17);
  assert.equal(parseJavaMajor('openjdk version "25" 2025-09-16'), 25);
  assert.equal(parseJavaMajor('java version "1.8.0_292"'), 8);
  assert.equal(parseJavaMajor("bash: java: command not found"), 0);
});
