/**
 * `trackscribe` runs with the V8 flags its forks get (workers/node-flags.ts) however it is
 * started: by its shebang (npx, a global install, ./bin/trackscribe.mjs) or the npm script;
 * the image's entrypoint names its own young-generation size (the API's, docs/api.md).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { NODE_MEMORY_FLAGS } from "../../workers/node-flags.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

test("the bin's shebang and the npm script carry the memory flags; the image sets a young-generation size", () => {
  const shebang = readFileSync(path.join(root, "bin/trackscribe.mjs"), "utf8").split("\n")[0]!;
  assert.equal(shebang, `#!/usr/bin/env -S node ${NODE_MEMORY_FLAGS.join(" ")}`);
  const scripts = (JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;
  assert.equal(scripts.trackscribe, `node ${NODE_MEMORY_FLAGS.join(" ")} bin/trackscribe.mjs`);
  const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(readFileSync(path.join(root, "Dockerfile"), "utf8"))?.[1];
  assert.ok(entrypoint && (JSON.parse(entrypoint) as string[]).some((a) => /^--max-semi-space-size=\d+$/.test(a)), `ENTRYPOINT ${entrypoint}`);
});

test("started by its shebang, trackscribe runs (env -S splits the flags)", () => {
  // the pinned Node first on PATH, as npm puts it; `env -S` hands node the flag and the script
  const bin = path.join(root, "node_modules", ".bin");
  const out = execFileSync(path.join(root, "bin/trackscribe.mjs"), ["--help"], { encoding: "utf8", env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
  assert.match(out, /trackscribe/);
  assert.match(out, /\bprocess\b/);
});
