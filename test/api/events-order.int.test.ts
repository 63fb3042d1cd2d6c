/**
 * Progress events are read by id (the SSE replay and its Last-Event-ID). Two workers write
 * events of one recording at the same time; a reader that has seen an event must never
 * later find an event of that recording with a lower id, or it would skip it for good.
 * Against a fresh Postgres schema: one writer's event sits uncommitted in its transaction
 * while a second writer appends; a reader tails in between, as an SSE stream does.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { appendEvent, eventsAfter } from "../../adapters/postgres/events.ts";
import { createRecordingsRepo } from "../../adapters/postgres/recordings-repo.ts";
import type { ProgressEvent } from "../../pipeline/contracts/index.ts";
import { startApiServices, type ApiServices } from "./harness.ts";

let svc: ApiServices;
before(async () => {
  svc = await startApiServices();
});
after(async () => {
  await svc?.close();
});

const event = (recording_id: string, track_index: number, engine = "conductor"): ProgressEvent => ({
  recording_id,
  engine,
  step: "prepare_track",
  track_index,
  status: "succeeded",
  at: new Date().toISOString(),
});

describe("event order", () => {
  test("a recording's events commit in id order: a tail that saw one event still gets every earlier one", async () => {
    // a shadow engine's events (they leave the recording's status alone) show it plainly:
    // nothing else orders the two writers
    const id = "rec-events-order";
    await svc.pool.query(`INSERT INTO recordings (id, status, language, source) VALUES ($1, 'processing', 'en', 'upload')`, [id]);
    const tail = async (afterId: number) => eventsAfter(svc.pool, id, afterId, "bullmq");

    // writer A: its event has drawn an id but is not committed yet
    const a = await svc.pool.connect();
    let second: Promise<unknown> | undefined;
    try {
      await a.query("BEGIN");
      const first = await appendEvent(a, event(id, 0, "bullmq"));
      assert.ok(first, "writer A's event was inserted");

      // writer B appends meanwhile; a reader tails while A is still open
      let bDone = false;
      second = appendEvent(svc.pool, event(id, 1, "bullmq")).then((e) => {
        bDone = true;
        return e;
      });
      await sleep(300);
      const early = await tail(0);
      assert.equal(bDone, false, "writer B waits for writer A's event to commit");
      assert.deepEqual(early, [], "nothing committed yet");

      await a.query("COMMIT");
      await second;
      const seen = [...early, ...(await tail(0))];
      assert.deepEqual(
        seen.map((e) => e.track_index),
        [0, 1],
        "both events reach the reader, in commit order",
      );
      assert.ok(seen[0]!.id < seen[1]!.id);
    } finally {
      await a.query("ROLLBACK").catch(() => undefined);
      a.release();
      await second?.catch(() => undefined);
    }
  });

  test("many concurrent writers: a reader tailing by id meanwhile receives every event exactly once", async () => {
    const id = "rec-events-many";
    await svc.pool.query(`INSERT INTO recordings (id, status, language, source) VALUES ($1, 'processing', 'en', 'upload')`, [id]);
    const repo = createRecordingsRepo(svc.pool);
    const n = 60;
    const received: number[] = [];
    let lastId = 0;
    let writing = true;
    const reader = (async () => {
      for (;;) {
        const done = !writing;
        const { events } = await repo.tail(id, lastId);
        for (const e of events) received.push(e.track_index!);
        lastId = events.at(-1)?.id ?? lastId;
        if (done) return;
      }
    })();
    // each writer holds its own transaction open a little while, as a busy pool would
    await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const c = await svc.pool.connect();
        try {
          await c.query("BEGIN");
          await appendEvent(c, event(id, i));
          await sleep(i % 3);
          await c.query("COMMIT");
        } finally {
          c.release();
        }
      }),
    );
    writing = false;
    await reader;
    assert.deepEqual([...received].sort((x, y) => x - y), Array.from({ length: n }, (_, i) => i));
  });
});
