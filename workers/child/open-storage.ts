/** The configured storage (local directory or S3), opened by whichever process needs it. */
import { existsSync } from "node:fs";
import type { Config } from "../../pipeline/config.ts";
import type { Storage } from "../../pipeline/ports.ts";
import { createLocalStorage } from "../../server/storage/local.ts";

export async function openStorage(config: Config): Promise<Storage> {
  if (config.STORAGE_DRIVER === "local") return createLocalStorage(config.LOCAL_STORAGE_DIR);
  const url = new URL("../../server/storage/s3.ts", import.meta.url);
  if (!existsSync(url)) throw new Error("STORAGE_DRIVER=s3 but server/storage/s3.ts is not in this build");
  const mod = (await import(url.href)) as { createS3Storage?: (c: Config) => Storage | Promise<Storage> };
  if (typeof mod.createS3Storage !== "function") throw new Error("server/storage/s3.ts does not export createS3Storage(config)");
  return await mod.createS3Storage(config);
}
