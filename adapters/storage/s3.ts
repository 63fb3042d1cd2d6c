/**
 * Storage port on S3 (AWS, MinIO, s3rver): @aws-sdk/client-s3 for single requests and
 * @aws-sdk/lib-storage `Upload` for streams, so an upload of any size is sent as a
 * multipart upload with a bounded number of parts in memory (queueSize × partSize). A
 * stream that fails part-way aborts its multipart upload: no parts are left behind.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, mkdtemp, open, rm, stat } from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  ListMultipartUploadsCommand,
  UploadPartCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import type { Config } from "../../pipeline/config.ts";
import { StorageKeyNotFoundError, type Storage } from "../../pipeline/ports.ts";

export interface S3StorageOptions {
  client: S3Client;
  bucket: string;
  /** bytes per multipart part (≥ 5 MiB, the S3 minimum, and the default) */
  partSize?: number;
  /** parts uploaded concurrently per stream (default 2) */
  queueSize?: number;
  /** called each time a part of a streamed upload has been sent (its buffer is now garbage) */
  afterPart?: () => void;
  /**
   * Spool each part of a streamed upload to a file here and send it from the file, instead
   * of building it in memory: an upload then holds a few stream chunks, not
   * (queueSize + 2) × partSize of buffers (what the API's memory per upload was).
   */
  spoolDir?: string;
}

export interface S3Storage extends Storage {
  readonly bucket: string;
  readonly client: S3Client;
  /** HeadBucket: resolves when the bucket is reachable */
  ping(signal?: AbortSignal): Promise<void>;
  /** Stream `body` to `key` as a multipart upload; resolves with the bytes written. */
  upload(key: string, body: Readable, opts?: { contentType?: string }): Promise<{ bytes: number }>;
}

const MIN_PART = 5 * 1024 * 1024;

/** The S3 client for the configured endpoint (path-style for MinIO/s3rver, checksums only when required). */
export function createS3Client(config: Pick<Config, "S3_ENDPOINT" | "S3_REGION" | "S3_ACCESS_KEY_ID" | "S3_SECRET_ACCESS_KEY" | "S3_FORCE_PATH_STYLE">): S3Client {
  return new S3Client({
    region: config.S3_REGION,
    ...(config.S3_ENDPOINT ? { endpoint: config.S3_ENDPOINT } : {}),
    forcePathStyle: config.S3_FORCE_PATH_STYLE,
    ...(config.S3_ACCESS_KEY_ID && config.S3_SECRET_ACCESS_KEY
      ? { credentials: { accessKeyId: config.S3_ACCESS_KEY_ID, secretAccessKey: config.S3_SECRET_ACCESS_KEY } }
      : {}),
    // S3-compatible servers (s3rver, older MinIO) reject the CRC32 trailers sent by default
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    maxAttempts: 3,
  });
}

const isNotFound = (err: unknown): boolean => {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === "NoSuchKey" || e?.name === "NotFound" || e?.$metadata?.httpStatusCode === 404;
};

/**
 * `createS3Storage({client, bucket})`, or `createS3Storage(config)` (builds its own client
 * from S3_* variables; what `trackscribe process --engine conductor|bullmq` calls).
 */
export function createS3Storage(opts: S3StorageOptions | Config): S3Storage {
  const o: S3StorageOptions = "client" in opts ? opts : { client: createS3Client(opts), bucket: opts.S3_BUCKET, queueSize: opts.S3_UPLOAD_QUEUE_SIZE };
  const { client, bucket } = o;
  const partSize = Math.max(MIN_PART, o.partSize ?? MIN_PART);
  const queueSize = Math.max(1, o.queueSize ?? 2);
  const endpoint = typeof client.config.endpoint === "function" ? "configured endpoint" : "AWS";
  const where = `s3://${bucket} (${endpoint})`;

  /**
   * A multipart upload whose parts go through files in `spoolDir`: the stream is written to
   * the current part's file (its back-pressure kept), a full part is sent from its file
   * with a known length while the next one fills (at most `queueSize` parts in flight), and
   * the file is removed once sent. Any failure aborts the upload and removes the files.
   */
  const spooledUpload = async (dir: string, key: string, body: Readable, contentType?: string): Promise<{ bytes: number }> => {
    await mkdir(dir, { recursive: true });
    const work = await mkdtemp(path.join(dir, "up-"));
    let uploadId: string | undefined;
    let bytes = 0;
    const done: { PartNumber: number; ETag: string }[] = [];
    const sending = new Set<Promise<void>>();
    let failure: unknown;
    let fh: Awaited<ReturnType<typeof open>> | undefined;
    const send = (n: number, file: string, size: number): void => {
      const p = (async () => {
        const res = await client.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: n, Body: createReadStream(file), ContentLength: size }));
        done.push({ PartNumber: n, ETag: res.ETag! });
        await rm(file, { force: true });
        o.afterPart?.();
      })().catch((err: unknown) => {
        failure ??= err;
      });
      sending.add(p);
      void p.finally(() => sending.delete(p));
    };
    try {
      uploadId = (await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ...(contentType ? { ContentType: contentType } : {}) }))).UploadId;
      let n = 1;
      let file = path.join(work, `part-${n}`);
      fh = await open(file, "w");
      let filled = 0;
      for await (const c of body) {
        let chunk = c as Buffer;
        bytes += chunk.length;
        while (chunk.length > 0) {
          if (failure) throw failure;
          const take = Math.min(chunk.length, partSize - filled);
          await fh.write(chunk, 0, take);
          filled += take;
          chunk = chunk.subarray(take);
          if (filled === partSize) {
            await fh.close();
            // bounded: no more than queueSize parts on their way at once
            while (sending.size >= queueSize) await Promise.race(sending);
            send(n, file, filled);
            n++;
            file = path.join(work, `part-${n}`);
            fh = await open(file, "w");
            filled = 0;
          }
        }
      }
      await fh.close();
      // the last part may be short (or empty, when the stream was: S3 takes one empty part)
      if (filled > 0 || n === 1) send(n, file, filled);
      while (sending.size) await Promise.race(sending);
      if (failure) throw failure;
      done.sort((a, b) => a.PartNumber - b.PartNumber);
      await client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: done } }));
      return { bytes };
    } catch (err) {
      await Promise.allSettled([...sending]);
      if (uploadId) await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId })).catch(() => undefined);
      throw err;
    } finally {
      await fh?.close().catch(() => undefined);
      await rm(work, { recursive: true, force: true });
    }
  };

  const upload = async (key: string, body: Readable, contentType?: string): Promise<{ bytes: number }> => {
    if (o.spoolDir) return spooledUpload(o.spoolDir, key, body, contentType);
    let bytes = 0;
    // counted while lib-storage pulls (async iteration keeps back-pressure and passes errors on)
    const counted = Readable.from(
      (async function* () {
        for await (const chunk of body) {
          bytes += (chunk as Buffer).length;
          yield chunk as Buffer;
        }
      })(),
      { objectMode: false },
    );
    const u = new Upload({
      client,
      params: { Bucket: bucket, Key: key, Body: counted, ...(contentType ? { ContentType: contentType } : {}) },
      partSize,
      queueSize,
      leavePartsOnError: false,
    });
    if (o.afterPart) u.on("httpUploadProgress", o.afterPart);
    await u.done();
    return { bytes };
  };

  /** Abort every multipart upload in progress under `prefix` (ListMultipartUploads, page by page). */
  const abortUploads = async (prefix: string): Promise<number> => {
    let aborted = 0;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (let page = 0; page < 1000; page++) {
      let res;
      try {
        res = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }));
      } catch (err) {
        // a server without multipart listing (HTTP 501) has nothing we could abort
        if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 501) return aborted;
        throw err;
      }
      for (const u of res.Uploads ?? []) {
        // a server that ignores Prefix must not make us touch anything else
        if (!u.Key?.startsWith(prefix) || !u.UploadId) continue;
        await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }));
        aborted++;
      }
      if (!res.IsTruncated) break;
      keyMarker = res.NextKeyMarker;
      uploadIdMarker = res.NextUploadIdMarker;
    }
    return aborted;
  };
  const list = async (prefix: string): Promise<string[]> => {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
      for (const o of page.Contents ?? []) if (o.Key) keys.push(o.Key);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return keys.sort();
  };

  const size = async (key: string): Promise<number | undefined> => {
    try {
      const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return head.ContentLength ?? 0;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  };

  const getBody = async (key: string, range?: { start: number; end: number }): Promise<Readable> => {
    try {
      const res = await client.send(
        new GetObjectCommand({ Bucket: bucket, Key: key, ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}) }),
      );
      if (!res.Body) throw new Error(`S3 returned no body for ${key}`);
      return res.Body as Readable;
    } catch (err) {
      if (isNotFound(err)) throw new StorageKeyNotFoundError(key, where);
      throw err;
    }
  };

  return {
    describe: where,
    bucket,
    client,
    async ping(signal) {
      await client.send(new HeadBucketCommand({ Bucket: bucket }), signal ? { abortSignal: signal } : {});
    },
    async upload(key, body, opts = {}) {
      return upload(key, body, opts.contentType);
    },
    async put(key, body, contentType) {
      if (Buffer.isBuffer(body)) {
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ...(contentType ? { ContentType: contentType } : {}) }));
      } else await upload(key, body, contentType);
    },
    async putFile(key, file, contentType) {
      const { size } = await stat(file);
      if (size < partSize) {
        await client.send(
          new PutObjectCommand({ Bucket: bucket, Key: key, Body: createReadStream(file), ContentLength: size, ...(contentType ? { ContentType: contentType } : {}) }),
        );
      } else await upload(key, createReadStream(file), contentType);
    },
    async get(key) {
      const body = await getBody(key);
      const chunks: Buffer[] = [];
      for await (const c of body) chunks.push(c as Buffer);
      return Buffer.concat(chunks);
    },
    async getToFile(key, dest) {
      const body = await getBody(key);
      await mkdir(path.dirname(dest), { recursive: true });
      try {
        await pipeline(body, createWriteStream(dest));
      } catch (err) {
        await rm(dest, { force: true });
        throw err;
      }
    },
    async exists(key) {
      return (await size(key)) !== undefined;
    },
    size,
    async stream(key, range) {
      return getBody(key, range);
    },
    async deletePrefix(prefix) {
      const keys = await list(prefix);
      for (let i = 0; i < keys.length; i += 1000) {
        const batch = keys.slice(i, i + 1000);
        try {
          const res = await client.send(
            new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }),
          );
          if (res.Errors?.length) throw new Error(`S3 could not delete ${res.Errors.length} object(s): ${res.Errors[0]?.Key} ${res.Errors[0]?.Message}`);
        } catch (err) {
          // servers without DeleteObjects (or a partial failure): one by one
          if ((err as Error).message.startsWith("S3 could not delete")) throw err;
          for (const Key of batch) await client.send(new DeleteObjectCommand({ Bucket: bucket, Key }));
        }
      }
      // and multipart uploads never completed under it (an API that died mid-upload): their
      // parts are invisible to a listing but take space until aborted
      await abortUploads(prefix);
      return keys.length;
    },
    list,
  };
}
