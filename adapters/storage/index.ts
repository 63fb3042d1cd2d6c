/** The configured Storage: a local directory (STORAGE_DRIVER=local) or S3 (STORAGE_DRIVER=s3). */
import { access, mkdir } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { ConfigSection } from "../../pipeline/config.ts";
import type { Storage } from "../../pipeline/ports.ts";
import { createLocalStorage } from "./local.ts";
import { createGcHint } from "../memory.ts";
import { createS3Client, createS3Storage, type S3Storage } from "./s3.ts";

/** Storage plus what the API needs on top: a reachability probe and a way to release it. */
export interface ServiceStorage extends Storage {
  readonly driver: "local" | "s3";
  ping(signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
  /** the S3 storage when driver is s3 (streaming multipart uploads) */
  readonly s3?: S3Storage;
}

export function createStorage(config: ConfigSection<"storage">): ServiceStorage {
  if (config.STORAGE_DRIVER === "s3") {
    const client = createS3Client(config);
    const s3 = createS3Storage({
      client,
      bucket: config.S3_BUCKET,
      queueSize: config.S3_UPLOAD_QUEUE_SIZE,
      afterPart: createGcHint(),
      // streamed uploads go through part files on disk, not part buffers in memory
      ...(config.S3_SPOOL_DIR !== "" ? { spoolDir: config.S3_SPOOL_DIR ?? path.join(os.tmpdir(), "trackscribe-spool") } : {}),
    });
    return { ...s3, driver: "s3", s3, close: async () => client.destroy() };
  }
  const dir = config.LOCAL_STORAGE_DIR;
  const local = createLocalStorage(dir);
  return {
    ...local,
    exists: (key: string) => local.exists(key),
    driver: "local",
    async ping() {
      await mkdir(dir, { recursive: true });
      await access(dir);
    },
    async close() {},
  };
}

export { createS3Client, createS3Storage };
