/**
 * Runs the S3-compatible test server (s3rver, from npm) in the foreground on loopback with
 * one bucket; `scripts/services.ts` starts it detached. Real S3 protocol over HTTP, so the
 * app's @aws-sdk/client-s3 code runs unmodified against it.
 *
 *   node --import tsx scripts/s3rver-daemon.ts --dir DIR --port PORT --bucket NAME
 */
import { mkdirSync } from "node:fs";
import { parseArgs } from "node:util";
import S3rver from "s3rver";

const { values } = parseArgs({
  options: { dir: { type: "string" }, port: { type: "string", default: "0" }, bucket: { type: "string", default: "trackscribe" } },
});
if (!values.dir) {
  process.stderr.write("usage: s3rver-daemon.ts --dir DIR [--port PORT] [--bucket NAME]\n");
  process.exit(2);
}
mkdirSync(values.dir, { recursive: true });
const server = new S3rver({
  address: "127.0.0.1",
  port: Number(values.port),
  directory: values.dir,
  silent: true,
  configureBuckets: [{ name: values.bucket, configs: [] }],
});
const addr = (await server.run()) as { address: string; port: number };
process.stdout.write(`S3_ENDPOINT=http://127.0.0.1:${addr.port}\n`);
const stop = (): void => {
  void server.close().finally(() => process.exit(0));
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
