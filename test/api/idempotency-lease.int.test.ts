/**
 * Found by `npm run chaos`: the API SIGKILLed while an upload with an Idempotency-Key
 * streamed in left the key `pending`, and every retry of the client with that key was
 * refused (409 upload_in_progress) for an hour. Now the key is a lease the upload renews
 * while it runs: after the API's death it lapses (KEY_LEASE_SECONDS) and the retry goes
 * through, once; a live upload's key is never taken over.
 * The API as its own process (`trackscribe serve`), killed with SIGKILL mid-body.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { createRecordingsRepo } from "../../adapters/postgres/recordings-repo.ts";
import { multipartBody, spawnServe, startApiServices, wavBytes, type ApiServices } from "./harness.ts";

const TOKEN = "lease-test-token-0123";
const auth = { authorization: `Bearer ${TOKEN}` };
let svc: ApiServices;
const children: ChildProcess[] = [];

before(async () => {
  svc = await startApiServices({ API_TOKEN: TOKEN });
});
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await svc?.close();
});

test("a live upload's key is renewed and never taken over; an abandoned one is after the lease", async () => {
  const repo = createRecordingsRepo(svc.pool, { keyLeaseSeconds: 1 });
  assert.deepEqual(await repo.reserveKey("o", "k-live", "h"), { state: "reserved" });
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setTimeout(r, 600));
    await repo.touchKey("o", "k-live");
    assert.deepEqual(await repo.reserveKey("o", "k-live", "h"), { state: "pending" }, "renewed: still held");
  }
  await new Promise((r) => setTimeout(r, 1300));
  assert.deepEqual(await repo.reserveKey("o", "k-live", "h"), { state: "reserved" }, "not renewed past the lease: taken over");
});

test("the API SIGKILLed mid-upload: the client's retry with the same key is accepted once the lease lapses, and creates one recording", async () => {
  const manifest = { tracks: [{ participant: "Ann" }] };
  const { body, contentType } = await multipartBody(manifest, [{ name: "a.wav", data: wavBytes(2) }]);
  const doomed = await spawnServe(svc, TOKEN);
  children.push(doomed.child);
  // send the manifest and part of the file, then stop sending: the upload is in progress
  const half = body.subarray(0, Math.floor(body.length / 2));
  let push!: (c: Uint8Array | null) => void;
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      push = (x) => (x ? c.enqueue(x) : c.close());
    },
  });
  const pending = fetch(`${doomed.url}/v1/recordings`, {
    method: "POST",
    body: stream,
    duplex: "half",
    headers: { ...auth, "content-type": contentType, "content-length": String(body.length), "idempotency-key": "lease-1" },
  } as RequestInit).catch((e: Error) => e);
  push(half);
  const held = async () => Number((await svc.pool.query(`SELECT count(*) AS n FROM idempotency_keys WHERE key = 'lease-1' AND state = 'pending'`)).rows[0].n);
  for (let i = 0; i < 100 && (await held()) === 0; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(await held(), 1, "the key is reserved while the body arrives");
  doomed.child.kill("SIGKILL");
  await doomed.exited;
  assert.ok((await pending) instanceof Error, "the client saw its connection die");

  const api = await spawnServe(svc, TOKEN);
  children.push(api.child);
  const send = () => fetch(`${api.url}/v1/recordings`, { method: "POST", body, headers: { ...auth, "content-type": contentType, "idempotency-key": "lease-1" } });
  // right away the key still looks held…
  assert.equal((await send()).status, 409);
  // …and within the lease (30 s) and a renewal it is not any more
  let status = 0;
  let id = "";
  for (let i = 0; i < 60 && status !== 202; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    const res = await send();
    status = res.status;
    if (status === 202) id = ((await res.json()) as { id: string }).id;
    else await res.text();
  }
  assert.equal(status, 202, "the retry went through after the lease");
  const again = await send();
  assert.equal(again.status, 202);
  assert.equal(again.headers.get("idempotent-replayed"), "true");
  assert.equal(((await again.json()) as { id: string }).id, id, "the same recording, not a second one");
  api.child.kill("SIGTERM");
  await api.exited;
});
