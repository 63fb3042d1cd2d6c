/** Shadow comparisons in Postgres: the full report per recording and the summary across recordings. */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { compareRuns, type CompareRules } from "../../server/shadow/compare.ts";
import { createShadowStore } from "../../server/shadow/store.ts";
import { migratedSchema, type TestSchema } from "../bullmq/db.ts";
import { asPrimary, perturbTrack, runToEnd } from "./runs.ts";

const rules: CompareRules = { werTolerance: 0, timeToleranceSeconds: 0.05, ignore: [], waveformTolerance: 0.02 };
let db: TestSchema;
before(async () => {
  db = await migratedSchema("shadowstore");
});
after(async () => {
  await db?.drop();
});

test("reports are stored per recording and summarized: match rate, mismatches by step, p50/p95 per engine", async () => {
  const store = createShadowStore(db.pool);
  const primary = asPrimary(runToEnd());
  const good = compareRuns(primary, runToEnd(), rules);
  const bad = compareRuns(primary, runToEnd(perturbTrack(1)), rules);
  // durations as two engines would measure them (ms): conductor 100..400, bullmq 110..440
  const timed = (r: typeof good, k: number) => ({
    ...r,
    durations: r.durations.map((d, i) => ({ ...d, primary_ms: 100 * ((i % 4) + 1) * k, shadow_ms: 110 * ((i % 4) + 1) * k })),
  });
  await store.begin("rec-1");
  await store.saveReport("rec-1", timed(good, 1));
  await store.begin("rec-2");
  await store.saveReport("rec-2", timed(bad, 1));
  await store.begin("rec-3"); // still running

  const one = await store.get("rec-2");
  assert.equal(one?.status, "mismatched");
  assert.equal(one?.mismatched, bad.counts.mismatched);
  assert.equal(one?.bullmq_run_id, "run-b");
  assert.equal(one?.conductor_workflow_id, "wf-1");
  assert.deepEqual(one?.report?.items.find((i) => i.classification === "mismatched")?.step, "transcribe_track");

  const s = await store.summary();
  assert.equal(s.recordings, 3);
  assert.equal(s.running, 1);
  assert.equal(s.compared, 2);
  assert.equal(s.match_rate, 0.5);
  assert.deepEqual(
    s.mismatches_by_step.map((m) => [m.step, m.mismatches, m.recordings]),
    [
      ["finalize", 1, 1],
      ["merge_transcripts", 1, 1],
      ["suppress_bleed", 1, 1],
      ["transcribe_track", 1, 1],
    ],
  );
  const tt = s.durations.filter((d) => d.step === "transcribe_track");
  assert.deepEqual(tt.map((d) => d.engine), ["bullmq", "conductor"]);
  // transcribe_track rows are durations index 3 and 4 → 400 and 100 ms (conductor), twice each
  assert.deepEqual(tt.map((d) => [d.samples, d.p50_ms, d.p95_ms]), [
    [4, 275, 440],
    [4, 250, 400],
  ]);

  // re-comparing a recording replaces its rows instead of adding to them
  await store.begin("rec-2");
  await store.saveReport("rec-2", timed(good, 1));
  const again = await store.summary();
  assert.equal(again.match_rate, 1);
  assert.deepEqual(again.mismatches_by_step, []);
  assert.equal(again.durations.find((d) => d.step === "transcribe_track" && d.engine === "conductor")?.samples, 4);

  // deleting a recording forgets its comparison
  await store.forget("rec-2");
  assert.equal(await store.get("rec-2"), undefined);
  assert.equal((await store.summary()).recordings, 2);
});

test("a run left `running` by an API process that stopped is marked failed by any other, once its heartbeat is stale; live runs are not", async () => {
  const dead = createShadowStore(db.pool, { runner: "api-dead" });
  const alive = createShadowStore(db.pool, { runner: "api-alive" });
  await dead.begin("rec-orphan");
  await alive.begin("rec-live");
  // the dead process's heartbeat stopped two minutes ago; the live one keeps renewing its own
  await db.pool.query(`UPDATE shadow_runs SET heartbeat_at = clock_timestamp() - interval '2 minutes', started_at = clock_timestamp() - interval '3 minutes'
                        WHERE recording_id IN ('rec-orphan', 'rec-live')`);
  await alive.heartbeat(["rec-live", "rec-orphan"]); // a process renews only its own runs
  assert.equal(await alive.failAbandoned(60), 1);
  const orphan = await alive.get("rec-orphan");
  assert.equal(orphan?.status, "error");
  assert.match(orphan?.error ?? "", /API process running this shadow run stopped/);
  assert.equal((await alive.get("rec-live"))?.status, "running");
  assert.equal(await alive.failAbandoned(60), 0, "once");
});
