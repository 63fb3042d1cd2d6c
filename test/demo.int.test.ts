/**
 * `npm run demo` end to end, against the services this test run started: the API and
 * both worker pools as real processes, the sample meeting uploaded over HTTP, followed
 * over SSE, transcript by speaker, and a matched shadow comparison.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { createBullmqRedis } from "../workers/bullmq/engine.ts";
import { dropPrefix } from "../workers/bullmq/queues.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

test("npm run demo completes a recording with every speaker and a matched shadow comparison", async (t) => {
  assert.ok(process.env.CONDUCTOR_SERVER_URL && process.env.DATABASE_URL, "run through npm test (services started)");
  // the shadow run's BullMQ keys under a prefix of this test's own, removed at the end
  const prefix = `tsdemo-${randomBytes(4).toString("hex")}`;
  t.after(async () => {
    const redis = createBullmqRedis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
    await dropPrefix(redis, prefix).catch(() => 0);
    await redis.quit();
  });
  const child = spawn(process.execPath, ["--import", "tsx", path.join(root, "scripts", "demo.ts")], {
    cwd: root,
    env: { ...process.env, LOG_LEVEL: "warn", BULLMQ_PREFIX: prefix },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout.on("data", (b: Buffer) => (out += b.toString()));
  child.stderr.on("data", (b: Buffer) => (err += b.toString()));
  const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
  assert.equal(code, 0, `demo failed:\n${out.slice(-3000)}\n${err.slice(-3000)}`);
  assert.match(out, /recording status: completed/);
  assert.match(out, /^\[\d\d:\d\d\.\d\] Alice: /m);
  assert.match(out, /speakers with words: .*Alice.*/);
  for (const name of ["Alice", "Bob", "Carol"]) assert.match(out.split("speakers with words:")[1] ?? "", new RegExp(name));
  assert.match(out, /## Topics\n- \[/);
  assert.match(out, /shadow comparison: matched \(\d+ matched, 0 mismatched/);
});
