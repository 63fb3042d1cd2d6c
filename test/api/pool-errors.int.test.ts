/**
 * A Postgres connection that dies while a process holds it (Postgres restarted, the backend
 * terminated) fails the query in flight and nothing else: before the pool guard, pg emitted
 * `error` on the checked-out client with no listener, which ended the process (the chaos run:
 * both worker hosts died at a Postgres restart with a finalize in flight). If the guard were
 * missing, the unlistened error would end this test process and the test would fail.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createPool } from "../../adapters/postgres/pool.ts";
import { testDatabaseUrl } from "../bullmq/db.ts";

const until = async (f: () => boolean, ms = 10_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 20));
  }
};

test("a backend terminated under a checked-out client (idle in a transaction, or mid-query) fails that client's query; the process and the pool live on", async () => {
  const idleErrors: Error[] = [];
  const pool = createPool({ DATABASE_URL: testDatabaseUrl(), DATABASE_POOL_MAX: 3 }, { onError: (err) => idleErrors.push(err) });
  const admin = createPool({ DATABASE_URL: testDatabaseUrl(), DATABASE_POOL_MAX: 1 });
  try {
    // 1. idle in a transaction: nothing is running on the client when its backend goes
    const held = await pool.connect();
    await held.query("BEGIN");
    const pid = (await held.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
    let ended = false;
    held.once("end", () => (ended = true));
    await admin.query("SELECT pg_terminate_backend($1)", [pid]);
    await until(() => ended);
    await assert.rejects(held.query("COMMIT"), "the dead client's next query fails");
    held.release();

    // 2. mid-query: the query in flight rejects with the termination
    const busy = await pool.connect();
    const pid2 = (await busy.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
    const slow = busy.query("SELECT pg_sleep(30)").then(
      () => undefined,
      (err: Error & { code?: string }) => err,
    );
    await new Promise((r) => setTimeout(r, 200));
    await admin.query("SELECT pg_terminate_backend($1)", [pid2]);
    const err = await slow;
    assert.ok(err && (err.code === "57P01" || /terminat/i.test(err.message)), `the query in flight failed with the termination (${err?.message})`);
    // as the repositories do after a failed statement: ROLLBACK (it fails too), then release
    await busy.query("ROLLBACK").catch(() => undefined);
    busy.release();
    assert.equal(pool.totalCount, 0, "neither dead client went back into the pool");

    // 3. an idle pooled client whose backend goes: reported through onError, not thrown
    const idle = await pool.connect();
    const pid3 = (await idle.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
    idle.release();
    await admin.query("SELECT pg_terminate_backend($1)", [pid3]);
    await until(() => idleErrors.length > 0);

    // the pool hands out working connections afterwards
    assert.equal((await pool.query<{ one: number }>("SELECT 1 AS one")).rows[0]!.one, 1);
  } finally {
    await pool.end();
    await admin.end();
  }
});
