/**
 * `npm run bench:api`: the API's two budgets, measured on a real `trackscribe serve` process
 * (child process; its memory is read from /proc) against Postgres, the S3-compatible server
 * and Conductor:
 *   1. peak RSS of the API while one 500 MB track is uploaded (generated on the fly: a WAV
 *      header and samples, streamed as a chunked multipart request)   target < 150 MB
 *   2. GET /v1/recordings/:id latency at a steady 200 requests/s (open loop, keep-alive)
 *                                                                       target p99 < 20 ms
 *   3. 20 uploads of 50 MB at once: each accepted (202) or refused at admission (503 with
 *      Retry-After, MAX_CONCURRENT_UPLOADS), and the API's peak RSS     target < 150 MB
 * Uses running services when CONDUCTOR_SERVER_URL, DATABASE_URL and S3_ENDPOINT are set,
 * otherwise brings them up with scripts/services.ts (and stops them afterwards).
 *
 *   npm run bench:api [-- --mb 500] [-- --seconds 10] [-- --rate 200]
 *   BENCH_API_CMD="--import tsx path/to/entry.ts" npm run bench:api   # measure another API entry point
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import pg from "pg";
import { wavHeader } from "../pipeline/audio/wav.ts";
import { freePort, sleep, waitUntil } from "../scripts/lib.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { values: args } = parseArgs({
  options: {
    mb: { type: "string", default: "500" },
    seconds: { type: "string", default: "10" },
    rate: { type: "string", default: "200" },
    concurrent: { type: "string", default: "20" },
    "concurrent-mb": { type: "string", default: "50" },
  },
});
const UPLOAD_MB = Number(args.mb);
const GET_SECONDS = Number(args.seconds);
const RATE = Number(args.rate);
const CONCURRENT = Number(args.concurrent);
const CONCURRENT_MB = Number(args["concurrent-mb"]);
const RSS_TARGET_MB = 150;
/** the API's MAX_CONCURRENT_UPLOADS in this run (its default unless set here) */
const UPLOADS_AT_ONCE = Number(process.env.MAX_CONCURRENT_UPLOADS ?? 4);
const P99_TARGET_MS = 20;
const TOKEN = "bench-token-0123456789";
/** V8 flags the API runs with (the Dockerfile's entrypoint): a 1 MB semi-space keeps ~25 MB of young generation out of RSS */
const API_NODE_FLAGS = ["--max-semi-space-size=1"];

const say = (s: string): void => void process.stdout.write(`${s}\n`);
const mb = (bytes: number): string => (bytes / 1024 / 1024).toFixed(1);

/** Resident set of a process from /proc: current and peak (VmHWM), bytes. */
function rssOf(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0) * 1024;
  return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
}

/** Stream a multipart upload of one generated WAV track of `bytes` (chunked, never in memory as a whole). */
function uploadGenerated(base: string, bytes: number): Promise<{ status: number; body: string; seconds: number; retryAfter?: string }> {
  const boundary = `----bench${randomBytes(6).toString("hex")}`;
  const url = new URL(`${base}/v1/recordings`);
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: url.hostname,
      port: url.port,
      path: url.pathname,
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": `multipart/form-data; boundary=${boundary}`, "transfer-encoding": "chunked" },
    });
    let answered = false;
    req.on("response", (res) => {
      answered = true;
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => {
        const retryAfter = res.headers["retry-after"];
        resolve({ status: res.statusCode ?? 0, body, seconds: Number(process.hrtime.bigint() - started) / 1e9, ...(typeof retryAfter === "string" ? { retryAfter } : {}) });
        req.destroy();
      });
    });
    // an upload refused at admission is answered with its body unread: the rest of the write fails
    req.on("error", (err) => {
      if (!answered) reject(err);
    });
    const write = (b: Buffer): Promise<void> => {
      if (req.destroyed || answered) return Promise.reject(new Error("answered"));
      if (req.write(b)) return Promise.resolve();
      return new Promise((r, j) => {
        const drained = (): void => {
          req.off("close", closed);
          r();
        };
        const closed = (): void => {
          req.off("drain", drained);
          j(new Error("closed"));
        };
        req.once("drain", drained);
        req.once("close", closed);
      });
    };
    void (async () => {
      await write(Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="manifest"\r\n\r\n`));
      await write(Buffer.from(`${JSON.stringify({ language: "en", tracks: [{ participant: "Bench", offset_seconds: 0 }] })}\r\n`));
      await write(Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="track"; filename="bench.wav"\r\ncontent-type: audio/wav\r\n\r\n`));
      const data = bytes - 44;
      await write(wavHeader(data, 16000));
      // one second of a 440 Hz tone, repeated
      const chunk = Buffer.alloc(32000);
      for (let i = 0; i < 16000; i++) chunk.writeInt16LE(Math.round(4000 * Math.sin((2 * Math.PI * 440 * i) / 16000)), i * 2);
      let sent = 0;
      while (sent < data) {
        const n = Math.min(chunk.length, data - sent);
        await write(n === chunk.length ? chunk : chunk.subarray(0, n));
        sent += n;
      }
      await write(Buffer.from(`\r\n--${boundary}--\r\n`));
      req.end();
    })().catch((err: unknown) => {
      if (!answered) reject(err as Error);
    });
  });
}

/** Open-loop load: one GET every 1/rate s (not waiting for answers); latency from send to full body. */
async function steadyGets(url: string, rate: number, seconds: number): Promise<{ latencies: number[]; errors: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const target = new URL(url);
  const latencies: number[] = [];
  let errors = 0;
  const total = Math.round(rate * seconds);
  const interval = 1000 / rate;
  const start = performance.now();
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = start + i * interval;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    inflight.push(
      new Promise<void>((resolve) => {
        const t0 = performance.now();
        const req = http.get({ host: target.hostname, port: target.port, path: target.pathname, agent, headers: { authorization: `Bearer ${TOKEN}` } }, (res) => {
          res.resume();
          res.on("end", () => {
            if (res.statusCode === 200) latencies.push(performance.now() - t0);
            else errors++;
            resolve();
          });
        });
        req.on("error", () => {
          errors++;
          resolve();
        });
      }),
    );
  }
  await Promise.all(inflight);
  agent.destroy();
  return { latencies: latencies.sort((a, b) => a - b), errors };
}

const pct = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;

async function main(): Promise<number> {
  const reuse = Boolean(process.env.CONDUCTOR_SERVER_URL && process.env.DATABASE_URL && process.env.S3_ENDPOINT);
  let serviceEnv: Record<string, string> = {};
  let stopServices: (() => Promise<void>) | undefined;
  if (!reuse) {
    say("bringing up services (Conductor, S3, Postgres, Redis)…");
    const services = await import("../scripts/services.ts");
    serviceEnv = await services.startServices({ database: "trackscribe_bench", log: () => undefined });
    stopServices = () => services.stopServices(() => undefined);
  }
  const env: NodeJS.ProcessEnv = { ...process.env, ...serviceEnv };
  const schema = `bench_${randomBytes(4).toString("hex")}`;
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  let api: ChildProcess | undefined;
  const pool = new pg.Pool({ connectionString: env.DATABASE_URL, max: 1 });
  try {
    const { createConductorApi } = await import("../adapters/conductor/client.ts");
    const { registerDefinitions } = await import("../workers/conductor/definitions.ts");
    await registerDefinitions(createConductorApi(env.CONDUCTOR_SERVER_URL!));

    // the API as deployed: `trackscribe serve` with a small V8 young generation (see docs/api.md)
    const apiArgs = process.env.BENCH_API_CMD ? process.env.BENCH_API_CMD.split(" ") : [...API_NODE_FLAGS, path.join(root, "bin", "trackscribe.mjs"), "serve"];
    say(`API: node ${apiArgs.map((a) => path.relative(root, a) || a).join(" ")}`);
    api = spawn(process.execPath, apiArgs, {
      cwd: root,
      env: {
        ...env,
        PORT: String(port),
        HOST: "127.0.0.1",
        API_TOKEN: TOKEN,
        DATABASE_SCHEMA: schema,
        MAX_TRACK_BYTES: String(2 * 1024 * 1024 * 1024),
        // the generated 500 MB track is 4.6 h of 16 kHz audio: above the default track limit
        MAX_TRACK_SECONDS: String(12 * 3600),
        MAX_RECORDING_SECONDS: String(12 * 3600),
        MAX_CONCURRENT_UPLOADS: String(UPLOADS_AT_ONCE),
        // all the uploads come from one key in a burst
        CREATE_RATE_PER_MINUTE: "1000",
        LOG_LEVEL: "warn",
        SHADOW_MODE: "off",
        NODE_ENV: "production",
      },
      stdio: ["ignore", "inherit", "inherit"],
    });
    await waitUntil(async () => (await fetch(`${base}/readyz`)).ok, { timeoutMs: 120000, what: "the API (/readyz)" });
    const pid = api.pid!;
    const idle = rssOf(pid);
    say(`API pid ${pid} ready; idle RSS ${mb(idle.rss)} MB (peak so far ${mb(idle.hwm)} MB)`);

    // 1. upload
    let maxRss = idle.rss;
    const sampler = setInterval(() => {
      try {
        maxRss = Math.max(maxRss, rssOf(pid).rss);
      } catch {
        /* exited */
      }
    }, 20);
    const bytes = UPLOAD_MB * 1024 * 1024;
    say(`uploading one ${UPLOAD_MB} MB track…`);
    const up = await uploadGenerated(base, bytes);
    clearInterval(sampler);
    if (up.status !== 202) throw new Error(`upload answered ${up.status}: ${up.body}`);
    const { id } = JSON.parse(up.body) as { id: string };
    const after = rssOf(pid);
    // the peak while uploading (sampled every 20 ms); VmHWM also holds the start-up transient
    const peak = maxRss;
    const stored = await fetch(`${base}/v1/recordings/${id}`, { headers: { authorization: `Bearer ${TOKEN}` } }).then((r) => r.json() as Promise<{ tracks: { size_bytes: number }[] }>);
    if (stored.tracks[0]?.size_bytes !== bytes) throw new Error(`stored ${stored.tracks[0]?.size_bytes} bytes, sent ${bytes}`);

    // 2. GET latency
    say(`GET /v1/recordings/${id} at ${RATE} req/s for ${GET_SECONDS} s…`);
    await steadyGets(`${base}/v1/recordings/${id}`, 50, 1); // warm-up
    const { latencies, errors } = await steadyGets(`${base}/v1/recordings/${id}`, RATE, GET_SECONDS);
    const p50 = pct(latencies, 50);
    const p99 = pct(latencies, 99);

    await fetch(`${base}/v1/recordings/${id}`, { method: "DELETE", headers: { authorization: `Bearer ${TOKEN}` } });

    // 3. many uploads at once: admission keeps the API inside its memory budget
    say(`${CONCURRENT} uploads of ${CONCURRENT_MB} MB at once…`);
    const before = rssOf(pid).rss;
    let manyPeak = before;
    const manySampler = setInterval(() => {
      try {
        manyPeak = Math.max(manyPeak, rssOf(pid).rss);
      } catch {
        /* exited */
      }
    }, 20);
    type Answer = { status: number; body: string; seconds: number; retryAfter?: string };
    const many = await Promise.all(
      Array.from({ length: CONCURRENT }, () => uploadGenerated(base, CONCURRENT_MB * 1024 * 1024).catch((err: Error): Answer => ({ status: 0, body: err.message, seconds: 0 }))),
    );
    clearInterval(manySampler);
    const accepted = many.filter((r) => r.status === 202);
    const refused = many.filter((r) => r.status === 503 && r.retryAfter !== undefined && /too_many_uploads/.test(r.body));
    const other = many.filter((r) => !accepted.includes(r) && !refused.includes(r));
    for (const r of accepted) await fetch(`${base}/v1/recordings/${(JSON.parse(r.body) as { id: string }).id}`, { method: "DELETE", headers: { authorization: `Bearer ${TOKEN}` } });
    const manyOk = other.length === 0 && accepted.length > 0 && manyPeak < RSS_TARGET_MB * 1024 * 1024;
    const atOnce = Math.min(accepted.length, UPLOADS_AT_ONCE);

    const rssOk = peak < RSS_TARGET_MB * 1024 * 1024;
    const latOk = p99 < P99_TARGET_MS && errors === 0;
    say("");
    say("bench:api results");
    say(
      `  upload ${UPLOAD_MB} MB track: peak RSS ${mb(peak)} MB (target < ${RSS_TARGET_MB} MB) ${rssOk ? "OK" : "MISSED"}` +
        `  [idle ${mb(idle.rss)} MB; VmHWM ${mb(after.hwm)} MB incl. start-up; ${(UPLOAD_MB / up.seconds).toFixed(1)} MB/s, ${up.seconds.toFixed(1)} s]`,
    );
    say(
      `  GET /v1/recordings/:id at ${RATE} req/s: p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms (target p99 < ${P99_TARGET_MS} ms) ${latOk ? "OK" : "MISSED"}` +
        `  [${latencies.length} ok, ${errors} errors, max ${latencies.at(-1)?.toFixed(2)} ms]`,
    );
    say(
      `  ${CONCURRENT} × ${CONCURRENT_MB} MB uploads at once: ${accepted.length} accepted, ${refused.length} refused 503 with Retry-After, ${other.length} otherwise; ` +
        `peak RSS ${mb(manyPeak)} MB (target < ${RSS_TARGET_MB} MB) ${manyOk ? "OK" : "MISSED"}` +
        `  [${mb(before)} MB before; ≈ ${atOnce ? mb((manyPeak - before) / atOnce) : "?"} MB more per upload streaming at once, ${UPLOADS_AT_ONCE} at most (MAX_CONCURRENT_UPLOADS)]` +
        (other.length ? `  [unexpected: ${other.map((r) => `${r.status} ${r.body.slice(0, 80)}`).join("; ")}]` : ""),
    );
    return rssOk && latOk && manyOk ? 0 : 1;
  } finally {
    if (api && api.exitCode === null) {
      const exited = new Promise((r) => api!.once("exit", r));
      api.kill("SIGTERM");
      const t = setTimeout(() => api!.kill("SIGKILL"), 15000);
      await exited;
      clearTimeout(t);
    }
    await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
    await pool.end();
    await stopServices?.();
  }
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`bench:api failed: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
