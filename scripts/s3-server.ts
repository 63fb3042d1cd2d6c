/**
 * The S3-compatible server for tests and local runs: s3rver (npm) on loopback with one
 * bucket, speaking the real S3 protocol over HTTP so @aws-sdk/client-s3 runs unmodified.
 *
 * s3rver 3.7 lacks AbortMultipartUpload and ListMultipartUploads; both are added here
 * (a small Koa middleware in front of its router) so an aborted streaming upload leaves
 * nothing behind, and tests can assert that no multipart upload is left pending.
 *
 *   startS3Server({ dir })                      // a child process (default)
 *   startS3Server({ dir, inProcess: true })     // inside this process
 *   node --import tsx scripts/s3-server.ts --dir DIR [--port P] [--bucket B]   // foreground
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import S3rver from "s3rver";

export interface S3ServerHandle {
  endpoint: string;
  port: number;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** pid of the process serving S3 (this process when in-process) */
  pid: number;
  stop(): Promise<void>;
}

export interface S3ServerOptions {
  dir: string;
  port?: number;
  bucket?: string;
  /** run s3rver inside this process instead of a child (default false) */
  inProcess?: boolean;
}

/** s3rver accepts any credentials; these are the conventional ones. */
const ACCESS_KEY_ID = "S3RVER";
const SECRET_ACCESS_KEY = "S3RVER";

interface KoaContext {
  method: string;
  path: string;
  query: Record<string, string | string[] | undefined>;
  status: number;
  body: unknown;
  type: string;
}
type KoaMiddleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;

/** The directory where s3rver keeps a bucket's pending multipart uploads (see its FilesystemStore). */
const uploadsDir = (root: string, bucket: string): string => path.join(root, bucket, "._S3rver_uploads");

const xmlEscape = (s: string): string => s.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);

/** AbortMultipartUpload (DELETE /bucket/key?uploadId=) and ListMultipartUploads (GET /bucket?uploads). */
function multipartExtensions(root: string): KoaMiddleware {
  return async (ctx, next) => {
    const segments = ctx.path.split("/").filter(Boolean);
    const bucket = segments[0] ? decodeURIComponent(segments[0]) : undefined;
    if (bucket && ctx.method === "DELETE" && typeof ctx.query.uploadId === "string" && segments.length > 1) {
      const id = ctx.query.uploadId;
      if (!/^[0-9a-f]{1,64}$/.test(id)) {
        ctx.status = 400;
        return;
      }
      const dir = path.join(uploadsDir(root, bucket), id);
      if (!existsSync(dir)) {
        ctx.status = 404;
        ctx.type = "application/xml";
        ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message></Error>`;
        return;
      }
      rmSync(dir, { recursive: true, force: true });
      ctx.status = 204;
      ctx.body = "";
      return;
    }
    if (bucket && ctx.method === "GET" && segments.length === 1 && "uploads" in ctx.query) {
      const dir = uploadsDir(root, bucket);
      const ids = existsSync(dir) ? readdirSync(dir) : [];
      const uploads = ids
        .filter((id) => existsSync(path.join(dir, id, "key")))
        .map((id) => `<Upload><Key>${xmlEscape(readFileSync(path.join(dir, id, "key"), "utf8"))}</Key><UploadId>${id}</UploadId></Upload>`);
      ctx.status = 200;
      ctx.type = "application/xml";
      ctx.body =
        `<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult><Bucket>${xmlEscape(bucket)}</Bucket>` +
        `<IsTruncated>false</IsTruncated>${uploads.join("")}</ListMultipartUploadsResult>`;
      return;
    }
    await next();
  };
}

/** Run s3rver in this process; resolves once it listens. */
async function runInProcess(opts: Required<Pick<S3ServerOptions, "dir" | "bucket">> & { port: number }): Promise<{ port: number; close(): Promise<void> }> {
  mkdirSync(opts.dir, { recursive: true });
  const server = new S3rver({
    address: "127.0.0.1",
    port: opts.port,
    directory: opts.dir,
    silent: true,
    configureBuckets: [{ name: opts.bucket, configs: [] }],
  });
  // Koa composes its middleware list when the server starts: insert ours before the router
  const stack = (server as unknown as { middleware: KoaMiddleware[] }).middleware;
  stack.splice(Math.max(0, stack.length - 1), 0, multipartExtensions(path.resolve(opts.dir)));
  const addr = await server.run();
  return { port: addr.port, close: () => server.close() };
}

export async function startS3Server(opts: S3ServerOptions): Promise<S3ServerHandle> {
  const bucket = opts.bucket ?? "trackscribe";
  const dir = path.resolve(opts.dir);
  const base = { bucket, accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY };
  if (opts.inProcess) {
    const s = await runInProcess({ dir, bucket, port: opts.port ?? 0 });
    return { ...base, endpoint: `http://127.0.0.1:${s.port}`, port: s.port, pid: process.pid, stop: () => s.close() };
  }
  const script = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, ["--import", "tsx", script, "--dir", dir, "--port", String(opts.port ?? 0), "--bucket", bucket], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const port = await readPort(child);
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    child.kill("SIGTERM");
    const t = setTimeout(() => child.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(t);
  };
  return { ...base, endpoint: `http://127.0.0.1:${port}`, port, pid: child.pid!, stop };
}

function readPort(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`s3rver did not start within 30 s: ${err.slice(-2000)}`));
    }, 30000);
    child.stdout!.on("data", (b: Buffer) => {
      out += b.toString();
      const m = /S3_ENDPOINT=http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        child.stdout!.removeAllListeners("data");
        child.stdout!.resume();
        resolve(Number(m[1]));
      }
    });
    child.stderr!.on("data", (b: Buffer) => {
      err += b.toString();
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`s3rver exited before listening (code ${code}, signal ${signal}): ${err.slice(-2000)}`));
    });
  });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: { dir: { type: "string" }, port: { type: "string", default: "0" }, bucket: { type: "string", default: "trackscribe" } },
  });
  if (!values.dir) {
    process.stderr.write("usage: s3-server.ts --dir DIR [--port PORT] [--bucket NAME]\n");
    process.exit(2);
  }
  const s = await runInProcess({ dir: path.resolve(values.dir), bucket: values.bucket!, port: Number(values.port) });
  process.stdout.write(`S3_ENDPOINT=http://127.0.0.1:${s.port}\n`);
  const stop = (): void => {
    void s.close().finally(() => process.exit(0));
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
