/**
 * The web app's component tests (Vitest, jsdom, @testing-library/react: web/src/**\/*.spec.tsx)
 * run as part of `npm test`: node's runner picks up *.test.ts only, so this file runs
 * `vitest run` and passes when every spec passes (no spec found fails too).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

test("vitest: the web app's component specs pass (transcript, upload form, shadow table, SSE parser)", async () => {
  const child = spawn(process.execPath, [path.join(root, "node_modules", "vitest", "vitest.mjs"), "run", "--config", "web/vite.config.ts", "--reporter=verbose", "--color=false"], {
    cwd: root,
    env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== "FORCE_COLOR")), NODE_ENV: "test", CI: "true", NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (b: Buffer) => (out += b.toString()));
  child.stderr.on("data", (b: Buffer) => (out += b.toString()));
  const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
  out = out.replace(/\x1b\[[0-9;]*m/g, "");
  assert.equal(code, 0, `vitest failed:\n${out.slice(-6000)}`);
  for (const spec of ["Transcript.spec.tsx", "UploadForm.spec.tsx", "ShadowTable.spec.tsx", "sse.spec.ts"]) assert.match(out, new RegExp(spec.replace(".", "\\.")), `${spec} ran`);
  const passed = /Tests\s+(\d+) passed/.exec(out);
  assert.ok(passed && Number(passed[1]) >= 18, `the specs' tests ran: ${passed?.[0] ?? out.slice(-500)}`);
});
