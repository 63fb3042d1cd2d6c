/**
 * scripts/conductor.ts on Postgres without a server: the JDBC URL and credentials taken from
 * a postgres:// URL, the properties that switch every store, a caller's lock choice kept
 * without a second value for the same property, and `conductor:start -- --postgres` refusing
 * a URL that is not one (CLI message, non-zero exit, nothing started).
 * The servers themselves run in test/conductor/shared-db.int.test.ts.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { CONDUCTOR_PG_POOL_MIN_IDLE, CONDUCTOR_PG_POOL_SIZE, jdbcOf, postgresProperties } from "../../scripts/conductor.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

test("a postgres:// URL becomes the server's JDBC URL and credentials", () => {
  assert.deepEqual(jdbcOf("postgres://conductor:s%40cret@db.internal:6543/wf?sslmode=require"), {
    jdbcUrl: "jdbc:postgresql://db.internal:6543/wf?sslmode=require",
    user: "conductor",
    password: "s@cret",
    database: "wf",
  });
  assert.deepEqual(jdbcOf("postgresql://127.0.0.1/conductor"), { jdbcUrl: "jdbc:postgresql://127.0.0.1:5432/conductor", user: "postgres", password: "", database: "conductor" });
  assert.throws(() => jdbcOf("mysql://h/db"), /not a postgres:\/\/ URL/);
  assert.throws(() => jdbcOf("postgres://h:5432/"), /names no database/);
});

const asMap = (args: string[]): Map<string, string[]> => {
  const m = new Map<string, string[]>();
  for (const a of args) {
    const [k, v] = a.replace(/^--/, "").split(/=(.*)/s) as [string, string];
    m.set(k, [...(m.get(k) ?? []), v]);
  }
  return m;
};

test("every store on Postgres, the pool sized for several servers, locks in Postgres unless the caller chose", () => {
  const props = asMap(postgresProperties("postgres://postgres@127.0.0.1:5432/conductor"));
  assert.deepEqual(props.get("conductor.db.type"), ["postgres"]);
  assert.deepEqual(props.get("conductor.queue.type"), ["postgres"]);
  assert.deepEqual(props.get("conductor.indexing.type"), ["postgres"]);
  assert.deepEqual(props.get("conductor.workflow-execution-lock.type"), ["postgres"]);
  assert.deepEqual(props.get("spring.datasource.url"), ["jdbc:postgresql://127.0.0.1:5432/conductor"]);
  assert.deepEqual(props.get("spring.datasource.hikari.maximum-pool-size"), [String(CONDUCTOR_PG_POOL_SIZE)]);
  assert.deepEqual(props.get("spring.datasource.hikari.minimum-idle"), [String(CONDUCTOR_PG_POOL_MIN_IDLE)]);
  // two servers and the app's pools under Postgres' default 100 connections
  assert.ok(2 * CONDUCTOR_PG_POOL_SIZE + 2 * 10 < 100);

  // Spring joins repeated command-line values with a comma: a caller's lock must be the only one
  const extra = ["--conductor.workflow-execution-lock.type=redis"];
  const withRedis = asMap([...postgresProperties("postgres://postgres@127.0.0.1:5432/conductor", extra), ...extra]);
  assert.deepEqual(withRedis.get("conductor.workflow-execution-lock.type"), ["redis"]);
});

test("conductor:start -- --postgres with a URL that is not one: a message and exit 1, no server", () => {
  const work = mkdtempSync(path.join(os.tmpdir(), "ts-conductor-pg-"));
  try {
    const r = spawnSync(process.execPath, ["--import", "tsx", path.join(root, "scripts", "conductor.ts"), "start", "--postgres", "mysql://h/db"], {
      cwd: root,
      env: { ...process.env, WORK_DIR: work },
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /conductor:start failed: not a postgres:\/\/ URL: mysql:\/\/h\/db/);
    assert.doesNotMatch(r.stdout, /CONDUCTOR_SERVER_URL/);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
