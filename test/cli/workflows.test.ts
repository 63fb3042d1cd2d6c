/** `trackscribe workflows build --check` and `workflows check` on the committed workflow: both pass, and say so. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "bin", "trackscribe.mjs");
const run = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });

test("workflows build --check: the committed workflow JSON is what the graph generates", async () => {
  const r = await run(["workflows", "build", "--check"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /multitrack_diarization\.json: up to date/);
});

test("workflows check: the wiring check passes on the generated workflow", async () => {
  const r = await run(["workflows", "check"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "workflow wiring check: OK\n");
});
