/** The Postgres event log: events come back in order and a replay of them equals the stored final state. */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { replay } from "../../pipeline/state/index.ts";
import { createMemoryEventLog, createPgEventLog, type EventLog } from "../../workers/bullmq/event-log.ts";
import { Driver } from "../state/driver.ts";
import { migratedSchema, type TestSchema } from "./db.ts";

let db: TestSchema;
before(async () => {
  db = await migratedSchema("eventlog");
});
after(async () => {
  await db?.drop();
});

/** Log a full run (with a duplicate and a retry) the way the shell does: handle, then append. */
async function logRun(log: EventLog, runId: string, recordingId: string) {
  const d = new Driver({ base_delay_ms: 5 });
  await log.createRun({ run_id: runId, recording_id: recordingId, namespace: "bullmq", engine: "bullmq" });
  const send = d.send.bind(d);
  d.send = (e) => {
    const r = send(e);
    pending.push(log.append(runId, r.state.seq, e, r.outcome, r.note));
    return r;
  };
  const pending: Promise<void>[] = [];
  d.accept(2);
  d.ok("prepare_track[0]");
  d.ok("prepare_track[0]");
  d.ok("prepare_track[1]");
  d.ok("plan_speech");
  d.fail("transcribe_track[1]", "flaky", true);
  d.timer("transcribe_track[1]", 2);
  d.finishFromTranscribe(2);
  await Promise.all(pending);
  await log.finishRun(runId, "succeeded", d.state, null);
  return d;
}

for (const kind of ["postgres", "memory"] as const) {
  test(`${kind} event log: events come back in order and replay to the stored final state exactly`, async () => {
    const log = kind === "postgres" ? createPgEventLog(db.pool) : createMemoryEventLog();
    const d = await logRun(log, `run-${kind}-1`, "rec-a");
    const run = await log.latestRun("rec-a", "bullmq");
    assert.equal(run?.run_id, `run-${kind}-1`);
    assert.equal(run?.status, "succeeded");
    const events = await log.events(run!.run_id);
    assert.deepEqual(events.map((e) => e.seq), Array.from({ length: d.state.seq }, (_, i) => i + 1));
    assert.deepEqual(events.map((e) => e.outcome).filter((o) => o !== "applied"), ["ignored"]);
    const rebuilt = replay(events.map((e) => e.event));
    assert.deepEqual(rebuilt.state, run!.final_state);
    assert.deepEqual(rebuilt.state, d.state);
    await assert.rejects(log.append(run!.run_id, 1, events[0]!.event, "applied", null));
  });
}

test("latestRun picks the newest run of a recording, optionally by namespace", async () => {
  const log = createPgEventLog(db.pool);
  await log.createRun({ run_id: "r-old", recording_id: "rec-b", namespace: "bullmq", engine: "bullmq" });
  await log.createRun({ run_id: "r-other", recording_id: "rec-b", namespace: "other", engine: "bullmq" });
  assert.equal((await log.latestRun("rec-b"))?.run_id, "r-other");
  assert.equal((await log.latestRun("rec-b", "bullmq"))?.run_id, "r-old");
  assert.equal(await log.latestRun("rec-none"), undefined);
});
