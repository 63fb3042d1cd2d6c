/** The S3 Storage port against a real S3-compatible server (s3rver over HTTP). */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { ListMultipartUploadsCommand } from "@aws-sdk/client-s3";
import { StorageKeyNotFoundError } from "../../pipeline/ports.ts";
import { createS3Client, createS3Storage, type S3Storage } from "../../adapters/storage/s3.ts";
import { startS3Server, type S3ServerHandle } from "../../scripts/s3-server.ts";

let dir: string;
let s3: S3ServerHandle;
let storage: S3Storage;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "ts-s3-"));
  s3 = await startS3Server({ dir: path.join(dir, "data"), inProcess: true });
  const client = createS3Client({
    S3_ENDPOINT: s3.endpoint,
    S3_REGION: "us-east-1",
    S3_ACCESS_KEY_ID: s3.accessKeyId,
    S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
    S3_FORCE_PATH_STYLE: true,
  });
  storage = createS3Storage({ client, bucket: s3.bucket, partSize: 5 * 1024 * 1024 });
});
after(async () => {
  storage?.client.destroy();
  await s3?.stop();
  await rm(dir, { recursive: true, force: true });
});

const pending = async (): Promise<number> =>
  (await storage.client.send(new ListMultipartUploadsCommand({ Bucket: storage.bucket }))).Uploads?.length ?? 0;

test("put, get, size, range stream, list and deletePrefix round-trip", async () => {
  await storage.ping();
  await storage.put("a/one.bin", Buffer.from("hello world"));
  await storage.put("a/b/two.bin", Readable.from([Buffer.from("streamed "), Buffer.from("body")]));
  assert.equal((await storage.get("a/one.bin")).toString(), "hello world");
  assert.equal((await storage.get("a/b/two.bin")).toString(), "streamed body");
  assert.equal(await storage.size("a/one.bin"), 11);
  assert.equal(await storage.size("a/missing"), undefined);
  assert.equal(await storage.exists("a/one.bin"), true);
  const part: Buffer[] = [];
  for await (const c of await storage.stream("a/one.bin", { start: 6, end: 10 })) part.push(c as Buffer);
  assert.equal(Buffer.concat(part).toString(), "world");
  assert.deepEqual(await storage.list("a/"), ["a/b/two.bin", "a/one.bin"]);
  const local = path.join(dir, "dl", "x.bin");
  await storage.getToFile("a/b/two.bin", local);
  assert.equal(await readFile(local, "utf8"), "streamed body");
  await writeFile(path.join(dir, "src.bin"), "from a file");
  await storage.putFile("a/file.bin", path.join(dir, "src.bin"));
  assert.equal((await storage.get("a/file.bin")).toString(), "from a file");
  assert.equal(await storage.deletePrefix("a/"), 3);
  assert.deepEqual(await storage.list("a/"), []);
  await assert.rejects(storage.get("a/one.bin"), StorageKeyNotFoundError);
  await assert.rejects(storage.stream("a/one.bin"), StorageKeyNotFoundError);
});

test("a stream larger than a part goes up as a multipart upload and arrives intact", async () => {
  const chunk = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < chunk.length; i++) chunk[i] = i % 251;
  const body = Readable.from((function* () {
    for (let i = 0; i < 12; i++) yield chunk;
  })());
  const { bytes } = await storage.upload("big/x.bin", body);
  assert.equal(bytes, 12 * chunk.length);
  assert.equal(await storage.size("big/x.bin"), 12 * chunk.length);
  const tail: Buffer[] = [];
  for await (const c of await storage.stream("big/x.bin", { start: 12 * chunk.length - 4, end: 12 * chunk.length - 1 })) tail.push(c as Buffer);
  assert.deepEqual([...Buffer.concat(tail)], [...chunk.subarray(chunk.length - 4)]);
  assert.equal(await pending(), 0);
  await storage.deletePrefix("big/");
});

test("a stream that fails after some parts aborts its multipart upload: no object, no pending parts", async () => {
  const chunk = Buffer.alloc(1024 * 1024, 7);
  const body = Readable.from((async function* () {
    for (let i = 0; i < 11; i++) yield chunk;
    throw new Error("client went away");
  })());
  await assert.rejects(storage.upload("broken/x.bin", body), /client went away/);
  assert.equal(await storage.exists("broken/x.bin"), false);
  assert.equal(await pending(), 0);
});

test("spooled through part files (S3_SPOOL_DIR): an odd-sized stream arrives intact; a failing one is aborted; no part file stays", async () => {
  const spoolDir = path.join(dir, "spool");
  const spooled = createS3Storage({ client: storage.client, bucket: storage.bucket, partSize: 5 * 1024 * 1024, queueSize: 2, spoolDir });
  // 12.5 MiB in chunks of a size that does not divide the part size: parts split chunks
  const chunk = Buffer.alloc(700 * 1024 + 3);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 7) % 253;
  const total = Math.ceil((12.5 * 1024 * 1024) / chunk.length) * chunk.length;
  const body = Readable.from((function* () {
    for (let sent = 0; sent < total; sent += chunk.length) yield chunk;
  })());
  const { bytes } = await spooled.upload("spool/x.bin", body, { contentType: "audio/wav" });
  assert.equal(bytes, total);
  const back = await spooled.get("spool/x.bin");
  assert.equal(back.length, total);
  for (let at = 0; at < total; at += chunk.length) assert.ok(back.subarray(at, at + chunk.length).equals(chunk), `bytes at ${at}`);
  // an empty stream is an empty object
  await spooled.upload("spool/empty.bin", Readable.from([]));
  assert.equal(await spooled.size("spool/empty.bin"), 0);
  // a stream that fails after two parts: aborted, nothing stored, no part file left
  const failing = Readable.from((async function* () {
    for (let i = 0; i < 12; i++) yield Buffer.alloc(1024 * 1024, 1);
    throw new Error("client went away");
  })());
  await assert.rejects(spooled.upload("spool/broken.bin", failing), /client went away/);
  assert.equal(await spooled.size("spool/broken.bin"), undefined);
  assert.equal(await pending(), 0);
  const { readdir } = await import("node:fs/promises");
  assert.deepEqual(await readdir(spoolDir), []);
  await spooled.deletePrefix("spool/");
});
