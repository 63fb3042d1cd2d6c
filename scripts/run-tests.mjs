#!/usr/bin/env node
/**
 * `npm test`: starts the services the integration tests need (a fresh Conductor with its
 * own SQLite file, a fresh S3 directory and database for this run, Postgres/Redis if they
 * are down), runs every *.test.ts with node's test runner, then stops what it started.
 *
 *   npm test                 # everything
 *   npm test -- --unit       # only tests that need no services (*.test.ts, not *.int.test.ts)
 *   npm test -- path/a.test.ts …   # just these files (services started if any is .int)
 *
 * It runs under the pinned Node (bin/node-runtime.mjs) and first checks the machine's tools
 * (scripts/preflight.ts): as root it installs what is missing with apt, otherwise it prints
 * the apt command and exits 1.
 */
import { spawn, spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ensureSupportedNode } from "../bin/node-runtime.mjs";

await ensureSupportedNode();
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const unitOnly = args.includes("--unit");
const explicit = args.filter((a) => a.endsWith(".ts"));

function findTests(dir, out = []) {
  for (const name of readdirSync(dir)) {
    if (name === "node_modules" || name.startsWith(".")) continue;
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) findTests(p, out);
    else if (name.endsWith(".test.ts")) out.push(path.relative(root, p));
  }
  return out;
}

let files = explicit.length ? explicit : findTests(root).sort();
if (unitOnly) files = files.filter((f) => !f.endsWith(".int.test.ts"));
const needsServices = files.some((f) => f.endsWith(".int.test.ts"));

const testWorkDir = path.join(root, ".work", "test");
const env = { ...process.env, WORK_DIR: testWorkDir, NODE_ENV: "test", LOG_LEVEL: process.env.LOG_LEVEL ?? "warn" };

function tsx(script, scriptArgs, extraEnv = {}) {
  return spawnSync(process.execPath, ["--import", "tsx", path.join(root, script), ...scriptArgs], {
    cwd: root,
    env: { ...env, ...extraEnv },
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
}

const checked = spawnSync(
  process.execPath,
  ["--import", "tsx", path.join(root, "scripts", "preflight.ts"), "--for", "test", ...(needsServices ? [] : ["--no-conductor"])],
  { cwd: root, env: process.env, stdio: "inherit" },
);
if (checked.status !== 0) process.exit(checked.status ?? 1);

if (needsServices) {
  process.stderr.write("starting services for this test run (fresh Conductor, S3 and database)…\n");
  // TEST_DATABASE: another checkout on the same machine can run its suite beside this one
  const database = process.env.TEST_DATABASE ?? "trackscribe_test";
  const r = tsx("scripts/services.ts", ["start", "--fresh", "--redis-lock", "--database", database]);
  if (r.status !== 0) {
    process.stderr.write("could not start the services the integration tests need\n");
    process.exit(1);
  }
  for (const line of r.stdout.split("\n")) {
    const m = /^export ([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) env[m[1]] = m[2];
  }
}

process.stderr.write(`running ${files.length} test file(s)${needsServices ? " (with services)" : ""}\n`);
const child = spawn(
  process.execPath,
  ["--import", "tsx", "--test", "--test-concurrency=1", "--test-timeout=900000", "--test-reporter=spec", ...files],
  { cwd: root, env, stdio: "inherit" },
);
const code = await new Promise((resolve) => child.on("exit", (c, sig) => resolve(c ?? (sig ? 1 : 0))));
if (needsServices) tsx("scripts/services.ts", ["stop"]);
process.exit(code);
