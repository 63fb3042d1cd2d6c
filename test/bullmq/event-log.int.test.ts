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

/**
 * Found by `npm run chaos`: a Postgres restart while a shadow run logged an event ended the run
 * in error ("the database system is starting up"). Postgres is reached here through a TCP relay
 * that we take down (connections dropped, new ones refused) and bring back: the append waits
 * for it and lands once; a log given no time to wait fails as before.
 */
test("an append while Postgres is unreachable waits for it and lands once; without a wait it fails", async () => {
  const net = await import("node:net");
  const target = new URL(process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test");
  const sockets = new Set<import("node:net").Socket>();
  const relay = (): import("node:net").Server =>
    net.createServer((client) => {
      const upstream = net.connect(Number(target.port || 5432), target.hostname);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on("close", () => sockets.delete(s));
        s.on("error", () => {});
      }
      client.pipe(upstream).pipe(client);
    });
  let server = relay();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as import("node:net").AddressInfo).port;
  const url = new URL(db.url);
  url.host = `127.0.0.1:${port}`;
  const pgMod = (await import("pg")).default;
  const pool = new pgMod.Pool({ connectionString: url.toString(), max: 2 });
  pool.on("error", () => {});
  try {
    const patient = createPgEventLog(pool, { outageWaitMs: 30_000 });
    const impatient = createPgEventLog(pool, { outageWaitMs: 0 });
    const runId = `outage-${Date.now()}`;
    await patient.createRun({ run_id: runId, recording_id: "rec-outage", namespace: "shadow-bullmq", engine: "bullmq" });
    const event = { id: "e1", type: "accept", at: new Date().toISOString(), tracks: 1 } as unknown as Parameters<EventLog["append"]>[2];

    // down: listening stopped, every open connection dropped
    await new Promise<void>((r) => {
      server.close(() => r());
      for (const s of sockets) s.destroy();
    });
    await assert.rejects(impatient.append(runId, 1, event, "applied", null), "no wait: the outage is the caller's");
    const landed = patient.append(runId, 1, event, "applied", null);
    await new Promise((r) => setTimeout(r, 1500));
    server = relay();
    await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
    await landed;
    const rows = await db.pool.query(`SELECT seq, event_id FROM pipeline_events WHERE run_id = $1`, [runId]);
    assert.deepEqual(rows.rows, [{ seq: 1, event_id: "e1" }], "the event is logged once");
  } finally {
    await pool.end();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  }
});
