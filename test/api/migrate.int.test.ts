/** `trackscribe migrate` against the running Postgres, in a schema of its own. */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const schema = `mig_${randomBytes(4).toString("hex")}`;
const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
after(async () => {
  await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await pool.end();
});

const cli = (...args: string[]) =>
  spawnSync(process.execPath, [path.join(root, "bin", "trackscribe.mjs"), "migrate", ...args], {
    cwd: root,
    env: { ...process.env, DATABASE_URL, DATABASE_SCHEMA: schema, LOG_LEVEL: "warn" },
    encoding: "utf8",
  });

const tables = async (): Promise<string[]> =>
  (await pool.query<{ t: string }>(`SELECT table_name AS t FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1`, [schema])).rows.map((r) => r.t);

test("migrate applies every migration once, is idempotent, and rolls back one at a time", async () => {
  const first = cli();
  assert.equal(first.status, 0, first.stderr);
  assert.match(first.stdout, /^applied: .*recordings-tracks-results-events/m);
  const t = await tables();
  for (const name of ["recordings", "tracks", "results", "events", "step_runs", "idempotency_keys", "pgmigrations"]) assert.ok(t.includes(name), `${name} in ${t}`);

  const again = cli();
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stdout, /nothing to apply/);

  const applied = async (): Promise<string[]> => (await pool.query<{ name: string }>(`SELECT name FROM ${schema}.pgmigrations ORDER BY run_on, id`)).rows.map((r) => r.name);
  const before = await applied();
  const down = cli("--down");
  assert.equal(down.status, 0, down.stderr);
  assert.equal(down.stdout.trim(), `rolled back: ${before.at(-1)}`);
  assert.deepEqual(await applied(), before.slice(0, -1));
  const up = cli();
  assert.equal(up.status, 0, up.stderr);
  assert.deepEqual(await applied(), before);

  const bad = spawnSync(process.execPath, [path.join(root, "bin", "trackscribe.mjs"), "migrate"], {
    cwd: root,
    env: { ...process.env, DATABASE_URL: "", DATABASE_SCHEMA: schema },
    encoding: "utf8",
  });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /DATABASE_URL/);
});
