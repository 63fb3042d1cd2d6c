/**
 * `bench:long --concurrent K`, the way users run it: the real stack in processes of its own
 * (bench/chaos-stack.ts without shadow mode or faults: Postgres, Redis, the S3 server, a
 * Conductor server, `trackscribe serve`, `trackscribe workers --engine conductor -j N`), the
 * generated meeting uploaded through `POST /v1/recordings` once alone, then K times at once.
 * A recording's time runs from the start of its upload to `completed` (polled each 0.5 s).
 * Prints one JSON line: both phases' wall and completion times, the machine's busy cores
 * during the K (from /proc/stat), and whether every copy has the words of the one alone.
 *
 *   node --import tsx bench/long/api-run.ts '{"manifest":…,"dir":…,"count":6,"jobs":2}'
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { startStack, type Stack } from "../chaos-stack.ts";
import { FileManifest } from "../../pipeline/contracts/manifest.ts";

interface Args {
  manifest: string;
  dir: string;
  count: number;
  jobs: number;
}

const a = JSON.parse(process.argv[2]!) as Args;
const say = (s: string): void => void process.stderr.write(`${s}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** jiffies the machine spent busy and in all, from /proc/stat's first line */
function cpuJiffies(): { busy: number; total: number } {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((s, x) => s + x, 0);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return { busy: total - idle, total };
}

async function multipart(): Promise<{ body: Buffer; contentType: string }> {
  const manifest = FileManifest.parse(JSON.parse(readFileSync(a.manifest, "utf8")));
  const dir = path.dirname(a.manifest);
  const form = new FormData();
  form.append("manifest", JSON.stringify({ language: manifest.language, tracks: manifest.tracks.map((t) => ({ participant: t.participant, offset_seconds: t.offset_seconds })) }));
  for (const t of manifest.tracks) form.append("track", new Blob([readFileSync(path.resolve(dir, t.path))]), path.basename(t.path));
  const res = new Response(form);
  return { body: Buffer.from(await res.arrayBuffer()), contentType: res.headers.get("content-type")! };
}

/** upload one copy and wait for it: ms from the upload's start to `completed`, and its words */
async function submit(stack: Stack, upload: { body: Buffer; contentType: string }, t0: number, n: number): Promise<{ id: string; upload_ms: number; ms: number; words: string[] }> {
  const auth = { authorization: `Bearer ${stack.token}` };
  const res = await fetch(`${stack.apiUrl}/v1/recordings`, {
    method: "POST",
    headers: { ...auth, "content-type": upload.contentType, "idempotency-key": `bench-long-${process.pid}-${n}` },
    body: upload.body,
  });
  const created = (await res.json()) as { id?: string; message?: string };
  if (res.status !== 201 && res.status !== 202) throw new Error(`upload ${n} answered ${res.status}: ${created.message ?? ""}`);
  const id = created.id!;
  const upload_ms = performance.now() - t0;
  for (;;) {
    const r = await fetch(`${stack.apiUrl}/v1/recordings/${id}`, { headers: auth });
    const rec = (await r.json()) as { status?: string; error?: string };
    if (rec.status === "completed") break;
    if (rec.status === "failed") throw new Error(`recording ${n} failed: ${rec.error ?? ""}`);
    if (!stack.conductorWorkers.alive()) throw new Error(`the Conductor workers exited (${stack.logs.conductorWorkers})`);
    await sleep(500);
  }
  const ms = performance.now() - t0;
  const t = (await (await fetch(`${stack.apiUrl}/v1/recordings/${id}/transcript`, { headers: auth })).json()) as { words?: { text: string; speaker: number }[] };
  return { id, upload_ms, ms, words: (t.words ?? []).map((w) => `${w.speaker}:${w.text}`) };
}

const stack = await startStack({
  workDir: a.dir,
  database: `trackscribe_bench_long_${process.pid}`,
  log: say,
  responseTimeoutSeconds: Number.MAX_SAFE_INTEGER,
  shadow: false,
  jobs: a.jobs,
  apiEnv: { MAX_CONCURRENT_UPLOADS: String(Math.max(4, a.count)), LOG_LEVEL: "warn" },
});
try {
  const upload = await multipart();
  say(`stack up; uploading ${(upload.body.length / 1e6).toFixed(0)} MB once alone`);
  const t1 = performance.now();
  const one = await submit(stack, upload, t1, 0);
  say(`one alone: ${(one.ms / 1000).toFixed(1)} s (upload ${(one.upload_ms / 1000).toFixed(1)} s); now ${a.count} at once`);
  const cpu0 = cpuJiffies();
  const t0 = performance.now();
  const many = await Promise.all(Array.from({ length: a.count }, (_, i) => submit(stack, upload, t0, i + 1)));
  const wall_ms = performance.now() - t0;
  const cpu1 = cpuJiffies();
  // busy share of all jiffies × the cores: how many cores were kept busy on average
  const cores_busy = ((cpu1.busy - cpu0.busy) / (cpu1.total - cpu0.total)) * (await import("node:os")).availableParallelism();
  const same = many.every((m) => m.words.length === one.words.length && m.words.every((w, i) => w === one.words[i]));
  process.stdout.write(
    `${JSON.stringify({
      one: { wall_ms: one.ms, upload_ms: one.upload_ms, words: one.words.length },
      many: { wall_ms, completion_ms: many.map((m) => m.ms), upload_ms: many.map((m) => m.upload_ms) },
      cores_busy,
      same_words: same,
    })}\n`,
  );
} finally {
  await stack.stop();
}
