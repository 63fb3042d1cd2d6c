/**
 * Against the real Conductor server the test run started, as scripts/conductor.ts starts it:
 * removing workflows with many tasks leaves the server answering.
 *
 * Removing a workflow hands each of its tasks to the SQLite index's async executor (up to
 * 10 threads), and each of those holds one database connection while asking the pool for
 * another. With Spring's default pool of 10 that deadlocked: every other call waited 30 s
 * for a connection (it failed a CI run as a 503 on DELETE /recordings/:id). The server is
 * started with a larger pool (CONDUCTOR_DB_POOL_SIZE); this test fails with the default.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { createConductorApi } from "../../adapters/conductor/client.ts";

const url = process.env.CONDUCTOR_SERVER_URL;
const NAME = `trackscribe_test_many_tasks_${process.pid}`;
const TASKS = 25;
// a client timeout under Hikari's 30 s connection timeout, which is what a starved pool
// makes every call wait; a healthy server answers these in well under a second (a few
// seconds on a loaded CI machine, where SQLite serialises all these writes)
const api = createConductorApi(url ?? "http://127.0.0.1:1/api", { timeoutMs: 25000 });

before(async () => {
  assert.ok(url, "CONDUCTOR_SERVER_URL must point at the test run's Conductor (npm test starts it)");
  // SET_VARIABLE tasks are run by the decider itself, so a started workflow completes at
  // once with TASKS completed tasks and needs no worker
  await api.registerWorkflow({
    name: NAME,
    version: 1,
    schemaVersion: 2,
    ownerEmail: "tests@trackscribe.local",
    timeoutPolicy: "TIME_OUT_WF",
    timeoutSeconds: 60,
    tasks: Array.from({ length: TASKS }, (_, i) => ({
      name: "set_variable",
      taskReferenceName: `v${i}`,
      type: "SET_VARIABLE",
      inputParameters: { [`v${i}`]: i },
    })),
  });
});

after(async () => {
  await fetch(`${url}/metadata/workflow/${NAME}/1`, { method: "DELETE", signal: AbortSignal.timeout(10000) }).catch(() => undefined);
});

test("removing workflows with many tasks leaves the server answering (pool sized over the index removers)", async () => {
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) ids.push(await api.startWorkflow(NAME, 1, {}));
  for (const id of ids) {
    const wf = await api.getWorkflow(id);
    assert.equal(wf.status, "COMPLETED", `workflow ${id} should complete in its decide (${wf.reasonForIncompletion ?? ""})`);
    assert.equal(wf.tasks.length, TASKS);
  }

  // remove all three at once (3 × 25 index removals queued), and keep using the server
  const removals = ids.map((id) => api.remove(id));
  const others = Array.from({ length: 3 }, async () => {
    const id = await api.startWorkflow(NAME, 1, {});
    const wf = await api.getWorkflow(id);
    await api.remove(id);
    return wf.status;
  });
  const settled = await Promise.allSettled([...removals, ...others]);
  const failed = settled.flatMap((s) => (s.status === "rejected" ? [String((s.reason as Error).message)] : []));
  assert.deepEqual(failed, [], `calls failed while workflows were being removed: ${failed.join("; ")}`);
  for (const s of settled.slice(removals.length)) assert.equal((s as PromiseFulfilledResult<string>).value, "COMPLETED");

  // the removed workflows are gone, and the server still takes new work
  for (const id of ids) {
    const res = await fetch(`${url}/workflow/${id}?includeTasks=false`, { signal: AbortSignal.timeout(10000) });
    assert.equal(res.status, 404, `workflow ${id} should be removed`);
  }
  const last = await api.startWorkflow(NAME, 1, {});
  assert.equal((await api.getWorkflow(last)).status, "COMPLETED");
  await api.remove(last);
});
