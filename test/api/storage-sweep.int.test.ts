/**
 * The storage sweeper (adapters/storage/sweeper.ts) against a fresh Postgres schema, a real
 * s3rver over HTTP and the real Conductor server:
 *  - objects written under a deleted recording after its DELETE (a step that was already
 *    running) are removed on the schedule kept in the database, and the schedule ends;
 *  - an upload the API never finished (it stopped mid-upload) is removed once stale, not
 *    before;
 *  - nothing else in the bucket is touched: live recordings, a client's own objects, and
 *    prefixes the database knows nothing of;
 *  - the API's timer runs the sweeper (STORAGE_SWEEP_SECONDS) and counts what it removed.
 * Time passing is played by moving a schedule row's time back, never by faking an outcome.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import type { FastifyInstance } from "fastify";
import { AbortMultipartUploadCommand, CreateMultipartUploadCommand, ListMultipartUploadsCommand, UploadPartCommand } from "@aws-sdk/client-s3";
import { build } from "../../server/app.ts";
import { createConductorGateway, type WorkflowGateway } from "../../adapters/conductor/gateway.ts";
import { createRecordingsRepo } from "../../adapters/postgres/recordings-repo.ts";
import { createStorageSweeper, DELETED_SWEEPS_AFTER_SECONDS } from "../../adapters/storage/sweeper.ts";
import { multipartBody, startApiServices, wavBytes, type ApiServices } from "./harness.ts";

const TOKEN = "test-token-sweeper-1";
const auth = { authorization: `Bearer ${TOKEN}` };
let svc: ApiServices;
let app: FastifyInstance;
let workflows: WorkflowGateway;

before(async () => {
  svc = await startApiServices({ API_TOKEN: TOKEN });
  workflows = await createConductorGateway({ serverUrl: svc.conductorUrl, log: svc.log });
  app = await build({ config: svc.config, log: svc.log, pool: svc.pool, storage: svc.storage, workflows });
});
after(async () => {
  await app?.close();
  await svc?.close();
});

async function uploadOne(): Promise<string> {
  const { body, contentType } = await multipartBody({ language: "en", tracks: [{ participant: "Alice" }] }, [{ name: "a.wav", data: wavBytes(0.25) }]);
  const res = await app.inject({ method: "POST", url: "/v1/recordings", payload: body, headers: { ...auth, "content-type": contentType } });
  assert.equal(res.statusCode, 202, res.body);
  return res.json().id as string;
}

const tombstone = async (id: string): Promise<{ sweeps: number; due_in: number } | undefined> =>
  (
    await svc.pool.query<{ sweeps: number; due_in: number }>(
      `SELECT sweeps, extract(epoch FROM next_sweep_at - deleted_at)::float8 AS due_in FROM deleted_recordings WHERE id = $1`,
      [id],
    )
  ).rows[0];

describe("storage sweeper", () => {
  test("a deleted recording's prefix is swept again on its schedule: late writes go, then the schedule ends", async () => {
    const removed: [string, number][] = [];
    const sweeper = createStorageSweeper({ pool: svc.pool, storage: svc.storage, log: svc.log, uploadStaleSeconds: 3600, onRemoved: (r, n) => removed.push([r, n]) });
    const id = await uploadOne();
    const live = await uploadOne();
    assert.equal((await app.inject({ method: "DELETE", url: `/v1/recordings/${id}`, headers: auth })).statusCode, 204);
    assert.deepEqual(await svc.storage.list(`recordings/${id}/`), []);
    assert.deepEqual(await tombstone(id), { sweeps: 0, due_in: DELETED_SWEEPS_AFTER_SECONDS[0] });

    // a step that was already running finishes and writes its derived audio
    const late = `recordings/${id}/conductor/mixdown/mixdown.mp3`;
    await svc.storage.put(late, Buffer.from("late mp3"), "audio/mpeg");
    // not due yet: nothing happens
    assert.deepEqual(await sweeper.sweep(), { deleted: 0, abandoned: 0, objects: 0 });
    assert.deepEqual(await svc.storage.list(`recordings/${id}/`), [late]);

    for (const [i, after] of DELETED_SWEEPS_AFTER_SECONDS.entries()) {
      await svc.pool.query(`UPDATE deleted_recordings SET next_sweep_at = clock_timestamp() WHERE id = $1`, [id]);
      const out = await sweeper.sweep();
      assert.equal(out.deleted, 1, `sweep ${i + 1} (due ${after} s after the deletion)`);
      assert.equal(out.objects, i === 0 || i === 2 ? 1 : 0); // the first late write, and the one put after sweep 2
      const next = DELETED_SWEEPS_AFTER_SECONDS[i + 1];
      assert.deepEqual(await tombstone(id), next === undefined ? undefined : { sweeps: i + 1, due_in: next });
      if (i === 1) await svc.storage.put(late, Buffer.from("later still"), "audio/mpeg"); // swept by the next one
      if (i === 2) assert.deepEqual(removed.at(-1), ["deleted_recording", 1]);
    }
    assert.deepEqual(await svc.storage.list(`recordings/${id}/`), []);
    assert.deepEqual(removed, [
      ["deleted_recording", 1],
      ["deleted_recording", 1],
    ]);
    // the live recording kept everything
    assert.equal((await svc.storage.list(`recordings/${live}/`)).length, 1);
    assert.equal((await app.inject({ method: "DELETE", url: `/v1/recordings/${live}`, headers: auth })).statusCode, 204);
    await svc.pool.query(`DELETE FROM deleted_recordings`);
  });

  test("an upload the API never finished is removed once stale; what the database does not know is never touched", async () => {
    const removed: [string, number][] = [];
    const sweeper = createStorageSweeper({ pool: svc.pool, storage: svc.storage, log: svc.log, uploadStaleSeconds: 3600, onRemoved: (r, n) => removed.push([r, n]) });
    const repo = createRecordingsRepo(svc.pool);
    // what an upload in progress has done when its process stops: the intent, then track objects
    const abandoned = randomUUID();
    await repo.addUploadIntent(abandoned);
    const parts = [`recordings/${abandoned}/tracks/0-alice.wav`, `recordings/${abandoned}/tracks/1-bob.wav`];
    for (const k of parts) await svc.storage.put(k, wavBytes(0.1), "audio/wav");
    // and the third track was mid-way: an S3 multipart upload with a part, never completed
    const s3 = svc.storage.s3!.client;
    const bucket = svc.config.S3_BUCKET;
    const third = `recordings/${abandoned}/tracks/2-carol.wav`;
    const mpu = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: third }));
    await s3.send(new UploadPartCommand({ Bucket: bucket, Key: third, UploadId: mpu.UploadId, PartNumber: 1, Body: Buffer.alloc(5 * 1024 * 1024 + 1) }));
    // a client's own multipart upload elsewhere in the bucket is not ours to abort
    const foreign = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: "incoming/team/big.wav" }));
    const pending = async () => ((await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).map((u) => u.Key).sort();
    assert.deepEqual(await pending(), ["incoming/team/big.wav", third]);
    // neighbours: a client's own objects, a prefix nobody recorded (the CLI stages runs there), a live recording
    const clientKey = "incoming/team/alice.wav";
    const unknownKey = `recordings/${randomUUID()}/tracks/0-x.wav`;
    await svc.storage.put(clientKey, wavBytes(0.1));
    await svc.storage.put(unknownKey, wavBytes(0.1));
    const live = await uploadOne();
    const liveKeys = await svc.storage.list(`recordings/${live}/`);
    // an intent that outlived its commit (its row exists): the objects are the row's
    await repo.addUploadIntent(live);

    // fresh: an upload may still be arriving
    assert.deepEqual(await sweeper.sweep(), { deleted: 0, abandoned: 0, objects: 0 });
    assert.deepEqual(await svc.storage.list(`recordings/${abandoned}/`), parts);

    await svc.pool.query(`UPDATE upload_intents SET started_at = clock_timestamp() - interval '2 hours'`);
    assert.deepEqual(await sweeper.sweep(), { deleted: 0, abandoned: 1, objects: 2 });
    assert.deepEqual(removed, [["abandoned_upload", 2]]);
    assert.deepEqual(await svc.storage.list(`recordings/${abandoned}/`), []);
    // the dead API's multipart upload is aborted (ListMultipartUploads on the prefix), the client's is not
    assert.deepEqual(await pending(), ["incoming/team/big.wav"]);
    await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: "incoming/team/big.wav", UploadId: foreign.UploadId }));
    assert.equal(Number((await svc.pool.query(`SELECT count(*) AS n FROM upload_intents`)).rows[0].n), 0);
    assert.deepEqual(await svc.storage.list(`recordings/${live}/`), liveKeys);
    assert.deepEqual(await svc.storage.list("incoming/"), [clientKey]);
    assert.deepEqual(await svc.storage.list(unknownKey), [unknownKey]);
    // nothing left to do
    assert.deepEqual(await sweeper.sweep(), { deleted: 0, abandoned: 0, objects: 0 });

    assert.equal((await app.inject({ method: "DELETE", url: `/v1/recordings/${live}`, headers: auth })).statusCode, 204);
    await svc.storage.deletePrefix("incoming/");
    await svc.storage.deletePrefix(unknownKey);
    await svc.pool.query(`DELETE FROM deleted_recordings`);
  });

  test("the API runs the sweeper every STORAGE_SWEEP_SECONDS and counts what it removed", async () => {
    const swept = await build({
      config: { ...svc.config, STORAGE_SWEEP_SECONDS: 0.2, STORAGE_SWEEP_UPLOAD_STALE_SECONDS: 60 },
      log: svc.log,
      pool: svc.pool,
      storage: svc.storage,
      workflows,
    });
    try {
      await swept.ready();
      const id = randomUUID();
      await createRecordingsRepo(svc.pool).addUploadIntent(id);
      await svc.storage.put(`recordings/${id}/tracks/0-a.wav`, wavBytes(0.1), "audio/wav");
      await svc.pool.query(`UPDATE upload_intents SET started_at = clock_timestamp() - interval '2 minutes' WHERE id = $1`, [id]);
      const deadline = Date.now() + 10_000;
      while ((await svc.storage.list(`recordings/${id}/`)).length > 0) {
        assert.ok(Date.now() < deadline, "the API's sweeper did not remove the abandoned upload within 10 s");
        await new Promise((r) => setTimeout(r, 100));
      }
      // the sweep counts its removals once the prefix is gone: the counter may trail the listing by a moment
      const counted = /trackscribe_storage_swept_objects_total\{reason="abandoned_upload"\} 1\b/;
      let body = "";
      while (!counted.test((body = (await swept.inject({ method: "GET", url: "/metrics", headers: auth })).body)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert.match(body, counted);
    } finally {
      await swept.close();
    }
  });
});
