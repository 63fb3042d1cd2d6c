/**
 * `npm run demo`: the whole product on this machine in one command. Brings up what is
 * missing (Conductor, the S3-compatible server, Postgres/Redis), starts the API and both
 * worker pools as real `trackscribe` processes with shadow mode on, uploads the bundled
 * sample meeting through the HTTP API, follows progress over SSE, prints the transcript by
 * speaker, topics, title, summaries and the shadow comparison, then shuts everything down.
 * First it checks the machine's tools (preflight.ts): as root it installs what is missing
 * with apt, otherwise it prints the apt command and exits 1. The sample meeting is made of
 * speech bundled in scripts/sample/.
 */
import { randomBytes } from "node:crypto";
import { spawn, type ChildProcess } from "node:child_process";
import { openAsBlob } from "node:fs";
import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { SingleBar } from "cli-progress";
import { ensureSupportedNode } from "../bin/node-runtime.mjs";
import { freePort, sleep, waitUntil } from "./lib.ts";
import { preflight } from "./preflight.ts";
import { startServices, stopServices } from "./services.ts";
import { NODE_MEMORY_FLAGS } from "../workers/node-flags.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const say = (s: string): void => {
  process.stdout.write(`${s}\n`);
};

interface Manifest {
  language: string;
  tracks: { path: string; participant: string; offset_seconds: number }[];
}

async function sampleMeeting(): Promise<{ manifest: Manifest; dir: string }> {
  const dir = path.join(root, "test", "fixtures", "out");
  const { buildFixtures } = (await import("./build-fixtures.ts")) as { buildFixtures: (d: string) => Promise<unknown> };
  await buildFixtures(dir);
  return { manifest: JSON.parse(readFileSync(path.join(dir, "manifest.json"), "utf8")) as Manifest, dir };
}

function startProcess(name: string, args: string[], env: NodeJS.ProcessEnv, logDir: string): ChildProcess {
  mkdirSync(logDir, { recursive: true });
  const child = spawn(process.execPath, [...NODE_MEMORY_FLAGS, path.join(root, "bin", "trackscribe.mjs"), ...args], {
    cwd: root,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const tail: string[] = [];
  const keep = (b: Buffer): void => {
    tail.push(...b.toString().split("\n").filter(Boolean));
    tail.splice(0, Math.max(0, tail.length - 40));
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  child.on("exit", (code, signal) => {
    if (!stopping) process.stderr.write(`demo: ${name} exited early (code ${code}, signal ${signal}); last log lines:\n${tail.join("\n")}\n`);
  });
  return child;
}
let stopping = false;

async function stopProcess(child: ChildProcess, graceMs = 30000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}

async function followEvents(api: string, id: string, headers: Record<string, string>): Promise<void> {
  const res = await fetch(`${api}/v1/recordings/${id}/events`, { headers: { ...headers, accept: "text/event-stream" } });
  if (!res.ok || !res.body) throw new Error(`events stream answered ${res.status}`);
  const tty = Boolean(process.stderr.isTTY);
  const bar = tty ? new SingleBar({ format: "processing [{bar}] {percentage}% | {step}", hideCursor: true }) : undefined;
  bar?.start(100, 0, { step: "queued" });
  const decoder = new TextDecoder();
  let buffer = "";
  let done = 0;
  let total = 1;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let idx;
    while ((idx = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, idx);
      buffer = buffer.slice(idx + 2);
      const data = block
        .split("\n")
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).trim())
        .join("\n");
      if (!data) continue;
      let ev: Record<string, unknown>;
      try {
        ev = JSON.parse(data) as Record<string, unknown>;
      } catch {
        continue;
      }
      if (typeof ev.total_steps === "number") total = ev.total_steps;
      if (typeof ev.completed_steps === "number") done = ev.completed_steps;
      else if (ev.status === "succeeded") done++;
      const label = `${String(ev.step ?? ev.status ?? "")}${ev.track_index !== undefined ? ` #${String(ev.track_index)}` : ""} ${String(ev.status ?? "")}`;
      if (bar) bar.update(Math.min(99, Math.round((done / Math.max(total, done + 1)) * 100)), { step: label });
      else process.stderr.write(`  · ${label}\n`);
    }
  }
  bar?.update(100, { step: "done" });
  bar?.stop();
}

const clock = (s: number): string => {
  const m = Math.floor(s / 60);
  return `${String(m).padStart(2, "0")}:${(s - m * 60).toFixed(1).padStart(4, "0")}`;
};

async function main(): Promise<number> {
  await ensureSupportedNode();
  const startedAt = Date.now();
  const reuse = Boolean(process.env.CONDUCTOR_SERVER_URL && process.env.DATABASE_URL && process.env.S3_ENDPOINT);
  if (preflight({ purpose: "demo", conductor: !reuse }) !== 0) return 1;
  say("trackscribe demo: bringing up services…");
  const serviceEnv = reuse ? {} : await startServices({ database: "trackscribe_demo" });
  const port = await freePort();
  const workDir = path.join(root, ".work", "demo");
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...serviceEnv,
    WORK_DIR: workDir,
    PORT: String(port),
    HOST: "127.0.0.1",
    // the API it starts has its own operator token (the caller's, or one made for this run):
    // the demo works whatever keys the database already holds, and nothing else can use it
    API_TOKEN: process.env.API_TOKEN || randomBytes(24).toString("hex"),
    SHADOW_MODE: "bullmq",
    SHADOW_SAMPLE_RATE: "1",
    LOG_LEVEL: process.env.LOG_LEVEL ?? "warn",
  };
  const api = `http://127.0.0.1:${port}`;
  const headers: Record<string, string> = { authorization: `Bearer ${env.API_TOKEN}` };
  const procs: ChildProcess[] = [];
  try {
    const { manifest, dir } = await sampleMeeting();
    procs.push(startProcess("api", ["serve"], env, workDir));
    procs.push(startProcess("conductor workers", ["workers", "--engine", "conductor"], { ...env, WORK_DIR: path.join(workDir, "cw") }, workDir));
    procs.push(startProcess("bullmq workers", ["workers", "--engine", "bullmq"], { ...env, WORK_DIR: path.join(workDir, "bw") }, workDir));
    await waitUntil(async () => (await fetch(`${api}/readyz`)).ok, { timeoutMs: 240000, what: "the trackscribe API (/readyz)" });
    say(`API ready at ${api}; uploading the sample meeting (${manifest.tracks.length} tracks)…`);

    const form = new FormData();
    form.append(
      "manifest",
      JSON.stringify({ language: manifest.language, tracks: manifest.tracks.map((t) => ({ participant: t.participant, offset_seconds: t.offset_seconds })) }),
    );
    for (const t of manifest.tracks) {
      const file = path.resolve(dir, t.path);
      form.append("track", await openAsBlob(file), path.basename(file));
    }
    const up = await fetch(`${api}/v1/recordings`, { method: "POST", body: form, headers: { ...headers, "idempotency-key": `demo-${startedAt}` } });
    const created = (await up.json()) as { id: string; status: string; message?: string };
    if (up.status !== 202) throw new Error(`upload answered ${up.status}: ${created.message ?? JSON.stringify(created)}`);
    say(`recording ${created.id} accepted (${created.status}); following progress…`);
    await followEvents(api, created.id, headers);

    const rec = (await (await fetch(`${api}/v1/recordings/${created.id}`, { headers })).json()) as {
      status: string;
      error?: string;
      result?: {
        duration: number;
        participants: { speaker: number; name: string }[];
        words: { text: string; start: number; end: number; speaker: number }[];
        topics: { title: string; timestamp: number; duration: number; summary: string }[];
        title: string;
        short_summary: string;
        long_summary: string;
      };
    };
    say(`\nrecording status: ${rec.status}`);
    if (rec.status !== "completed" || !rec.result) throw new Error(`recording ended ${rec.status}: ${rec.error ?? "no result"}`);
    const r = rec.result;
    const names = new Map(r.participants.map((p) => [p.speaker, p.name]));
    say(`\n# ${r.title}\n(${clock(r.duration)}, speakers: ${r.participants.map((p) => p.name).join(", ")})\n`);
    say("## Transcript");
    const text = await (await fetch(`${api}/v1/recordings/${created.id}/transcript?format=text`, { headers })).text();
    say(text.trim());
    say("\n## Topics");
    for (const t of r.topics) say(`- [${clock(t.timestamp)}] ${t.title} (${t.duration.toFixed(1)} s): ${t.summary}`);
    say(`\n## Summary\n${r.short_summary}\n\n${r.long_summary}`);
    say(`\nspeakers with words: ${[...new Set(r.words.map((w) => names.get(w.speaker)))].join(", ")}`);

    say("\n## Shadow comparison (Conductor vs BullMQ)");
    type Shadow = {
      status?: string;
      error?: string | null;
      counts?: Record<string, number>;
      report?: { verdict: string; items: { step: string; track_index: number | null; check: string; classification: string; summary: string }[] } | null;
    };
    let shadow: Shadow = {};
    await waitUntil(
      async () => {
        const res = await fetch(`${api}/v1/recordings/${created.id}/shadow`, { headers });
        if (!res.ok) return false;
        shadow = (await res.json()) as Shadow;
        return shadow.status !== undefined && shadow.status !== "running";
      },
      { timeoutMs: 300000, what: "the shadow comparison" },
    );
    for (const c of shadow.report?.items ?? []) {
      say(`  ${c.classification.padEnd(10)} ${c.step}${c.track_index !== null ? ` #${c.track_index}` : ""} ${c.check}: ${c.summary}`);
    }
    const counts = shadow.counts ?? {};
    say(`shadow comparison: ${shadow.status} (${counts.matched ?? 0} matched, ${counts.mismatched ?? 0} mismatched, ${counts.ignored ?? 0} ignored)${shadow.error ? `: ${shadow.error}` : ""}`);
    say(`\ndemo finished in ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
    return 0;
  } finally {
    stopping = true;
    await Promise.all(procs.map((p) => stopProcess(p)));
    if (!reuse) await stopServices(() => {});
  }
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`demo failed: ${err.message}\n`);
    process.exit(1);
  },
);
