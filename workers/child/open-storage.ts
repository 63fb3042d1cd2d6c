/** The configured storage (local directory or S3), opened by whichever process needs it. */
import { configSection, type Config } from "../../pipeline/config.ts";
import type { Storage } from "../../pipeline/ports.ts";

export async function openStorage(config: Config): Promise<Storage> {
  const { createStorage } = await import("../../adapters/storage/index.ts");
  return createStorage(configSection(config, "storage"));
}
