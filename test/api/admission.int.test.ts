/**
 * Admission control over real HTTP (Postgres, s3rver, Conductor): one upload more than
 * MAX_CONCURRENT_UPLOADS is answered 503 with Retry-After without its body being read and
 * leaves nothing behind; creates beyond CREATE_RATE_PER_MINUTE get 429 with Retry-After;
 * one event stream more than MAX_SSE_PER_RECORDING gets 503 with Retry-After, and a closed
 * stream frees its place.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import { build } from "../../server/app.ts";
import { createConductorGateway, type WorkflowGateway } from "../../adapters/conductor/gateway.ts";
import { multipartBody, startApiServices, wavBytes, type ApiServices } from "./harness.ts";

const TOKEN = "admission-token-0123456789";
const auth = { authorization: `Bearer ${TOKEN}` };
let svc: ApiServices;
let app: FastifyInstance;
let workflows: WorkflowGateway;
let port: number;
const started: string[] = [];

before(async () => {
  svc = await startApiServices({ API_TOKEN: TOKEN, MAX_CONCURRENT_UPLOADS: "1", CREATE_RATE_PER_MINUTE: "5", MAX_SSE_PER_RECORDING: "1", MAX_SSE_STREAMS: "5" });
  workflows = await createConductorGateway({ serverUrl: svc.conductorUrl, log: svc.log });
  app = await build({ config: svc.config, log: svc.log, pool: svc.pool, storage: svc.storage, workflows });
  await app.listen({ port: 0, host: "127.0.0.1" });
  port = (app.server.address() as AddressInfo).port;
});
after(async () => {
  for (const id of started) {
    const wf = (await svc.pool.query(`SELECT workflow_id FROM recordings WHERE id = $1`, [id])).rows[0]?.workflow_id;
    if (wf) await workflows.remove(wf, "test over").catch(() => undefined);
  }
  await app?.close();
  await svc?.close();
});

const waitFor = async (what: string, f: () => Promise<boolean>): Promise<void> => {
  for (let i = 0; i < 100; i++) {
    if (await f()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
};

/** every POST counts against CREATE_RATE_PER_MINUTE, whatever its answer */
let posts = 0;

async function post(): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  posts++;
  const { body, contentType } = await multipartBody({ language: "en", tracks: [{ participant: "A", offset_seconds: 0 }] }, [{ name: "a.wav", data: wavBytes(0.3) }]);
  const res = await fetch(`http://127.0.0.1:${port}/v1/recordings`, { method: "POST", body, headers: { ...auth, "content-type": contentType } });
  return { status: res.status, headers: Object.fromEntries(res.headers), body: await res.text() };
}

test("uploads over the cap get 503 + Retry-After unread; creates over the rate get 429 + Retry-After; SSE streams over the cap get 503", async () => {
  // 1. a slow upload holds the only place: manifest sent, the track's first bytes, then nothing
  const boundary = "----admission";
  const slow = http.request({ host: "127.0.0.1", port, path: "/v1/recordings", method: "POST", headers: { ...auth, "content-type": `multipart/form-data; boundary=${boundary}`, "transfer-encoding": "chunked" } });
  slow.on("error", () => undefined);
  slow.write(`--${boundary}\r\ncontent-disposition: form-data; name="manifest"\r\n\r\n${JSON.stringify({ language: "en", tracks: [{ participant: "A", offset_seconds: 0 }] })}\r\n`);
  slow.write(`--${boundary}\r\ncontent-disposition: form-data; name="track"; filename="a.wav"\r\ncontent-type: audio/wav\r\n\r\n`);
  slow.write(wavBytes(0.2));
  posts++;
  await waitFor("the slow upload's intent row", async () => Number((await svc.pool.query(`SELECT count(*) FROM upload_intents`)).rows[0].count) === 1);

  const before = await svc.rowCounts();
  const busy = await post();
  assert.equal(busy.status, 503, busy.body);
  assert.equal(JSON.parse(busy.body).error, "too_many_uploads");
  assert.ok(Number(busy.headers["retry-after"]) > 0, "Retry-After");
  assert.equal(busy.headers.connection, "close", "the refused body is not read");
  assert.deepEqual(await svc.rowCounts(), before, "nothing written for the refused upload");

  // the slow client goes away: its place is free again, and it leaves nothing
  slow.destroy();
  await waitFor("the slow upload to be discarded", async () => Number((await svc.pool.query(`SELECT count(*) FROM upload_intents`)).rows[0].count) === 0);
  let ok: Awaited<ReturnType<typeof post>> | undefined;
  for (let i = 0; i < 40 && ok?.status !== 202; i++) {
    ok = await post();
    if (ok.status !== 202) await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(ok?.status, 202, ok?.body);
  const id = JSON.parse(ok!.body).id as string;
  started.push(id);

  // 2. creates within the minute beyond CREATE_RATE_PER_MINUTE=5 (every POST so far counts)
  let limited = await post();
  while (limited.status === 202) {
    started.push(JSON.parse(limited.body).id as string);
    limited = await post();
  }
  assert.equal(limited.status, 429, limited.body);
  assert.equal(posts, 6, "the sixth POST of the minute is the first refused");
  assert.equal(JSON.parse(limited.body).error, "rate_limited");
  assert.ok(Number(limited.headers["retry-after"]) > 0, "Retry-After");

  // 3. one event stream per recording
  const open = (): Promise<{ status: number; headers: http.IncomingHttpHeaders; res: http.IncomingMessage; req: http.ClientRequest }> =>
    new Promise((resolve, reject) => {
      const req = http.get({ host: "127.0.0.1", port, path: `/v1/recordings/${id}/events`, headers: auth }, (res) => resolve({ status: res.statusCode!, headers: res.headers, res, req }));
      req.on("error", reject);
    });
  const first = await open();
  assert.equal(first.status, 200);
  const second = await open();
  assert.equal(second.status, 503);
  assert.ok(Number(second.headers["retry-after"]) > 0);
  let body = "";
  for await (const c of second.res) body += c;
  assert.equal(JSON.parse(body).error, "too_many_streams");
  first.req.destroy();
  let third: Awaited<ReturnType<typeof open>> | undefined;
  for (let i = 0; i < 40 && third?.status !== 200; i++) {
    third?.req.destroy();
    await new Promise((r) => setTimeout(r, 50));
    third = await open();
  }
  assert.equal(third?.status, 200, "a closed stream frees its place");
  third?.req.destroy();
});

test("a client that stops sending mid-upload is cut off after UPLOAD_IDLE_SECONDS, and nothing of its upload remains", async () => {
  const idleSvc = await startApiServices({ API_TOKEN: TOKEN, UPLOAD_IDLE_SECONDS: "1" });
  const idleApp = await build({ config: idleSvc.config, log: idleSvc.log, pool: idleSvc.pool, storage: idleSvc.storage, workflows });
  try {
    await idleApp.listen({ port: 0, host: "127.0.0.1" });
    const idlePort = (idleApp.server.address() as AddressInfo).port;
    const boundary = "----slowloris";
    const started = Date.now();
    const closed = new Promise<number>((resolve) => {
      const req = http.request({ host: "127.0.0.1", port: idlePort, path: "/v1/recordings", method: "POST", headers: { ...auth, "content-type": `multipart/form-data; boundary=${boundary}`, "transfer-encoding": "chunked" } });
      req.on("error", () => resolve(Date.now() - started));
      req.on("response", (res) => res.on("close", () => resolve(Date.now() - started)).resume());
      req.write(`--${boundary}\r\ncontent-disposition: form-data; name="manifest"\r\n\r\n${JSON.stringify({ language: "en", tracks: [{ participant: "A", offset_seconds: 0 }] })}\r\n`);
      req.write(`--${boundary}\r\ncontent-disposition: form-data; name="track"; filename="a.wav"\r\ncontent-type: audio/wav\r\n\r\n`);
      req.write(wavBytes(0.5)); // then nothing more, ever
    });
    const after = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(-1), 20_000))]);
    assert.ok(after > 0, "the server closed the stalled upload");
    await waitFor("the stalled upload to be removed", async () => Number((await idleSvc.pool.query(`SELECT count(*) FROM upload_intents`)).rows[0].count) === 0);
    const counts = await idleSvc.rowCounts();
    assert.deepEqual(Object.entries(counts).filter(([, n]) => n > 0), []);
    assert.deepEqual(await idleSvc.bucketState(), { keys: [], pendingUploads: 0 });
  } finally {
    await idleApp.close();
    await idleSvc.close();
  }
});
