/**
 * `npm run bench:long`: a generated meeting of the length users record (bench/long/generate.ts:
 * real speech re-timed and re-gained per utterance, turns, offsets, −26 dB bleed, a WebM
 * track) through the in-process engine, Conductor and BullMQ, each in a process of its own,
 * with every process's peak RSS (VmHWM) sampled from /proc by kind (the engine host's is its
 * peak during the run: run-engine.ts resets it after staging and reads it before its own
 * analysis). Prints per engine: wall time, the CPU time stolen by the hypervisor during the
 * run (the engines run one after another: on a noisy host compare with care), peak RSS per kind, decoded / voiced seconds, speaker-attributed WER and bleed words
 * against the reference; and the engine limit measured in the same run: the decoder's CPU
 * seconds per audio second (each utterance decoded alone, bench/long/baseline.ts) × the
 * voiced seconds ÷ the cores. Targets (60 min, 4 tracks): in-process ≤ 1.20 × the limit,
 * Conductor and BullMQ ≤ 1.05 × in-process, decoded / voiced ≤ 1.15, SA-WER within 0.02
 * of the utterances decoded alone.
 *
 *   npm run bench:long -- --minutes 60 --tracks 4 [--speech 0.7] [--engines inprocess,conductor,bullmq]
 *   npm run bench:long -- --memory-only --minutes 180 --tracks 10      # long, quiet tracks: memory only
 *   npm run bench:long -- --concurrent 6 --minutes 10 [-j 2]           # K meetings at once (Conductor)
 *
 * --memory-only: speech 0.01 unless given, no baseline, no WER (the figures are the peaks).
 * --concurrent K: the whole stack started (bench/long/api-run.ts: Postgres, Redis, the S3
 * server, Conductor, `trackscribe serve`, `trackscribe workers --engine conductor -j N`), the
 * meeting uploaded through `POST /v1/recordings` once alone, then K copies at once; prints throughput (audio hours per wall hour) against one at a time, the cores
 * kept busy (CPU seconds of every process of the run ÷ wall seconds), and each recording's
 * completion time against its fair share (K × the time of one alone: what each gets when
 * the machine is shared evenly).
 *
 * Needs Redis (BullMQ) and Conductor (started with scripts/conductor.ts when none answers).
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { editDistance, tokens } from "../pipeline/metrics/wer.ts";
import { conductorUrl } from "./harness.ts";
import type { Utterance } from "./long/generate.ts";
import { NODE_MEMORY_FLAGS } from "../workers/node-flags.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");
const say = (s: string): void => void process.stderr.write(`${s}\n`);

interface Word {
  text: string;
  start: number;
  end: number;
  speaker: number;
}

/** The process kind a command line belongs to (decoders are listed, not counted in the targets). */
export function processKind(cmdline: string): string {
  if (/pocketsphinx/.test(cmdline)) return "decoder";
  if (/(^|\/)(ffmpeg|ffprobe)(\s|$)/.test(cmdline)) return "ffmpeg";
  if (/step-child/.test(cmdline)) return "step child";
  if (/child-main/.test(cmdline)) return "worker host";
  if (/trackscribe\.mjs serve/.test(cmdline)) return "api";
  if (/conductor-server/.test(cmdline)) return "conductor server";
  if (/s3-server/.test(cmdline)) return "s3 server";
  if (/(^|\/)postgres\b|redis-server/.test(cmdline)) return "postgres, redis";
  if (/trackscribe\.mjs workers/.test(cmdline)) return "worker host";
  if (/run-engine\.ts/.test(cmdline)) return "engine host";
  return "other";
}

/** Every descendant of `pid` (and itself) with its command line, VmHWM in kB and CPU time so far in clock ticks. */
function processTree(pid: number): { pid: number; cmd: string; hwm: number; cpu: number }[] {
  const parent = new Map<number, number>();
  const cpu = new Map<number, number>();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const f = readFileSync(`/proc/${d}/stat`, "utf8");
      const fields = f.slice(f.lastIndexOf(")") + 2).split(" ");
      parent.set(Number(d), Number(fields[1]));
      // utime + stime
      cpu.set(Number(d), Number(fields[11]) + Number(fields[12]));
    } catch {
      // gone meanwhile
    }
  }
  const inTree = (p: number): boolean => {
    for (let q: number | undefined = p, n = 0; q && n < 64; q = parent.get(q), n++) if (q === pid) return true;
    return false;
  };
  const out: { pid: number; cmd: string; hwm: number; cpu: number }[] = [];
  for (const p of parent.keys()) {
    if (!inTree(p)) continue;
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0").join(" ").trim();
      const hwm = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, "utf8"))?.[1] ?? 0);
      out.push({ pid: p, cmd, hwm, cpu: cpu.get(p) ?? 0 });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * Run a tsx script; its last stdout line as JSON, the peak VmHWM per process kind (MB) of its
 * tree, and the CPU seconds per kind (each process's last reading, sampled every 250 ms: a
 * short-lived process's last quarter second may be missed).
 */
export async function runMeasured<T>(script: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ out: T; peaks: Record<string, number>; cpu: Record<string, number> }> {
  // the flags `trackscribe` runs with (its shebang, the npm script): the engine host stands for `trackscribe process`
  const child = spawn(process.execPath, [...NODE_MEMORY_FLAGS, "--import", "tsx", path.join(root, script), ...args], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let tail = "";
  child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
  child.stderr.on("data", (b: Buffer) => (tail = (tail + b.toString()).slice(-4000)));
  const peaks: Record<string, number> = {};
  const ticks = new Map<number, { kind: string; cpu: number }>();
  const sample = (): void => {
    if (!child.pid) return;
    for (const p of processTree(child.pid)) {
      const kind = processKind(p.cmd);
      peaks[kind] = Math.max(peaks[kind] ?? 0, Math.round(p.hwm / 1024));
      ticks.set(p.pid, { kind, cpu: p.cpu });
    }
  };
  const timer = setInterval(sample, 250);
  const code = await new Promise<number>((resolve) => child.once("exit", (c) => resolve(c ?? 1)));
  clearInterval(timer);
  if (code !== 0) throw new Error(`${script} exited with ${code}: ${tail}`);
  const perKind: Record<string, number> = {};
  for (const { kind, cpu: t } of ticks.values()) perKind[kind] = (perKind[kind] ?? 0) + t;
  // clock ticks (100 a second) → seconds
  const cpu = Object.fromEntries(Object.entries(perKind).map(([k, t]) => [k, Math.round(t) / 100]));
  return { out: JSON.parse(stdout.trim().split("\n").pop()!) as T, peaks, cpu };
}

/** The Conductor server answering on `url`'s port (a JVM started by scripts/conductor.ts, not one of our descendants). */
function conductorServerPid(url: string): number | null {
  const port = /:(\d+)\//.exec(url)?.[1];
  if (!port) return null;
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, "utf8");
      if (cmd.includes("conductor-server") && cmd.includes(`--server.port=${port}\0`)) return Number(d);
    } catch {
      // gone meanwhile
    }
  }
  return null;
}

/** The Conductor server's resident memory now and its peak, MB, and its CPU seconds so far (null when it is not on this machine). */
export function conductorServerMemory(url: string): { rss_mb: number; hwm_mb: number; cpu_s: number } | null {
  const pid = conductorServerPid(url);
  if (pid === null) return null;
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // utime + stime, in clock ticks (100 per second on Linux)
    return { rss_mb: Math.round(kb("VmRSS") / 1024), hwm_mb: Math.round(kb("VmHWM") / 1024), cpu_s: (Number(f[11]) + Number(f[12])) / 100 };
  } catch {
    return null;
  }
}

/** The machine's CPU time so far from /proc/stat, in ticks: all of it, what the hypervisor stole, and idle (with iowait). */
function cpuTicks(): { total: number; steal: number; idle: number } {
  try {
    const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal
    return { total: f.slice(0, 8).reduce((a, b) => a + b, 0), steal: f[7] ?? 0, idle: (f[3] ?? 0) + (f[4] ?? 0) };
  } catch {
    return { total: 0, steal: 0, idle: 0 };
  }
}

/** Speaker-attributed WER (each track's reference words against the words given that speaker) and bleed words. */
export function score(utterances: readonly Utterance[], words: readonly Word[], tracks: number): { saWer: number; bleedWords: number; refWords: number } {
  let errors = 0;
  let refWords = 0;
  let bleedWords = 0;
  for (let k = 0; k < tracks; k++) {
    const own = utterances.filter((u) => u.track === k).sort((a, b) => a.start - b.start);
    const ref = tokens(own.map((u) => u.text).join(" "));
    const hypWords = words.filter((w) => w.speaker === k).sort((a, b) => a.start - b.start);
    errors += editDistance(ref, tokens(hypWords.map((w) => w.text)));
    refWords += ref.length;
    for (const w of hypWords) {
      const mid = (w.start + w.end) / 2;
      const mine = own.some((u) => mid >= u.start - 0.3 && mid <= u.end + 0.3);
      if (!mine && utterances.some((u) => u.track !== k && mid >= u.start && mid <= u.end)) bleedWords++;
    }
  }
  return { saWer: errors / Math.max(1, refWords), bleedWords, refWords };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      minutes: { type: "string", default: "60" },
      tracks: { type: "string", default: "4" },
      speech: { type: "string" },
      engines: { type: "string", default: "inprocess,conductor,bullmq" },
      "memory-only": { type: "boolean", default: false },
      concurrent: { type: "string" },
      jobs: { type: "string", short: "j", default: "0" },
      keep: { type: "boolean", default: false },
    },
  });
  const minutes = Number(values.minutes);
  const tracks = Number(values.tracks);
  const memoryOnly = values["memory-only"];
  const speech = Number(values.speech ?? (memoryOnly ? 0.01 : 0.7));
  const concurrent = values.concurrent ? Number(values.concurrent) : 0;
  const jobs = Number(values.jobs);
  const engines = (concurrent ? ["conductor"] : values.engines!.split(",")) as ("inprocess" | "conductor" | "bullmq")[];
  const bad = [
    !(minutes > 0 && minutes <= 600) && "--minutes must be from 0 to 600",
    !(Number.isInteger(tracks) && tracks >= 1 && tracks <= 32) && "--tracks must be a whole number from 1 to 32",
    !(speech > 0 && speech < 1) && "--speech must be a fraction between 0 and 1",
    values.concurrent !== undefined && !(Number.isInteger(concurrent) && concurrent >= 1 && concurrent <= 32) && "--concurrent must be a whole number from 1 to 32",
    !(Number.isInteger(jobs) && jobs >= 0 && jobs <= 16) && "-j must be a whole number from 0 to 16",
    engines.some((e) => !["inprocess", "conductor", "bullmq"].includes(e)) && "--engines takes inprocess, conductor, bullmq",
  ].filter(Boolean);
  if (bad.length) {
    say(`bench:long: ${bad.join("; ")}`);
    process.exit(2);
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), "bench-long-"));
  const meetingDir = path.join(dir, "meeting");
  const cores = os.availableParallelism();
  let stopConductor: (() => Promise<void>) | undefined;
  try {
    say(`generating a ${minutes}-minute, ${tracks}-track meeting (speech ${speech}) in ${meetingDir}`);
    const t0 = performance.now();
    const gen = await runMeasured<{ manifestPath: string; referencePath: string; voicedSeconds: number; utterances: number }>("bench/long/generate.ts", [meetingDir, String(minutes), String(tracks), String(speech)]);
    say(`generated in ${((performance.now() - t0) / 1000).toFixed(0)} s: ${gen.out.utterances} utterances, ${gen.out.voicedSeconds.toFixed(0)} s voiced`);
    const ref = JSON.parse(readFileSync(gen.out.referencePath, "utf8")) as { utterances: Utterance[] };
    const voiced = gen.out.voicedSeconds;

    let limitSeconds: number | undefined;
    let baseline: { saWer: number; bleedWords: number } | undefined;
    if (!memoryOnly && !concurrent) {
      say("baseline: every utterance decoded alone (and the decoder's CPU per audio second)");
      const b = await runMeasured<{ cpu_per_audio_second: number; audio_seconds: number; cpu_seconds: number; words: Word[] }>("bench/long/baseline.ts", [meetingDir]);
      limitSeconds = (b.out.cpu_per_audio_second * voiced) / cores;
      baseline = score(ref.utterances, b.out.words, tracks);
      say(`decoder: ${b.out.cpu_per_audio_second.toFixed(3)} CPU-s per audio second; engine limit ${limitSeconds.toFixed(1)} s on ${cores} cores; alone SA-WER ${baseline.saWer.toFixed(3)}`);
    }

    const conductor = engines.includes("conductor") && !concurrent ? await conductorUrl(process.env.CONDUCTOR_SERVER_URL ?? "http://127.0.0.1:8080/api", say) : { url: "" };
    stopConductor = conductor.stop;
    const rows: Record<string, unknown>[] = [];
    const runEngine = async (engine: string, count: number) => {
      const work = path.join(dir, `${engine}-${count}`);
      const args = JSON.stringify({ engine, manifest: gen.out.manifestPath, dir: work, conductorUrl: conductor.url, count, jobs });
      const r = await runMeasured<{
        wall_ms: number;
        completion_ms: number[];
        decoded_seconds: number;
        words: Word[];
        tasks?: { ref: string; at_s: number; wait_s: number; run_s: number }[];
        phase_peaks_mb?: Record<string, number>;
      }>("bench/long/run-engine.ts", [args]);
      // the engine host's figure is its peak during the run; staging the meeting and the
      // bench's analysis after it are the bench's own work, shown apart
      const phases = r.out.phase_peaks_mb;
      if (phases?.run) {
        r.peaks["engine host"] = phases.run;
        r.peaks["bench staging, analysis"] = Math.max(phases.staging ?? 0, phases.analysis ?? 0);
      }
      if (r.out.tasks) say(`${engine} tasks (scheduled at, queue wait, run, s): ${r.out.tasks.map((t) => `${t.ref} ${t.at_s.toFixed(1)}+${t.wait_s.toFixed(1)}+${t.run_s.toFixed(1)}`).join("; ")}`);
      rmSync(work, { recursive: true, force: true });
      return r;
    };
    if (concurrent) {
      say(`the stack (API, Conductor, ${jobs ? `-j ${jobs}` : "one worker process"}) with one meeting uploaded alone, then ${concurrent} at once`);
      const work = path.join(dir, "api-stack");
      const r = await runMeasured<{
        one: { wall_ms: number; upload_ms: number; words: number };
        many: { wall_ms: number; completion_ms: number[]; upload_ms: number[] };
        cores_busy: number;
        same_words: boolean;
      }>("bench/long/api-run.ts", [JSON.stringify({ manifest: gen.out.manifestPath, dir: work, count: concurrent, jobs })]);
      const { one, many } = r.out;
      const audioHours = (n: number): number => (n * minutes) / 60;
      const throughputOne = audioHours(1) / (one.wall_ms / 3600_000);
      const throughputMany = audioHours(concurrent) / (many.wall_ms / 3600_000);
      // each recording's fair share: the time all K take when they share the machine evenly (K × one alone)
      const fair = concurrent * one.wall_ms;
      const sorted = [...many.completion_ms].sort((x, y) => x - y);
      const worst = sorted[sorted.length - 1]! / fair;
      process.stdout.write(`\n${concurrent} × ${minutes}-minute, ${tracks}-track meetings uploaded through the API to Conductor workers (${jobs ? `-j ${jobs}` : "one worker process"}), ${cores} cores\n`);
      process.stdout.write(`one alone: ${(one.wall_ms / 1000).toFixed(1)} s (upload ${(one.upload_ms / 1000).toFixed(1)} s); ${concurrent} at once: ${(many.wall_ms / 1000).toFixed(1)} s; cores busy ${r.out.cores_busy.toFixed(2)} of ${cores}\n`);
      process.stdout.write(`throughput: ${throughputMany.toFixed(2)} audio h / wall h vs ${throughputOne.toFixed(2)} one at a time (×${(throughputMany / throughputOne).toFixed(2)}, target ≥ 0.9)\n`);
      process.stdout.write(`completions (s): ${sorted.map((ms) => (ms / 1000).toFixed(0)).join(", ")}; fair share ${(fair / 1000).toFixed(0)} s each; latest / fair share = ${worst.toFixed(2)} (target ≤ 1.5)\n`);
      process.stdout.write(`every copy has the words of the one alone: ${r.out.same_words ? "yes" : "NO"}\n`);
      process.stdout.write(`peak RSS MB by kind: ${JSON.stringify(r.peaks)}\n`);
      process.stdout.write(`${JSON.stringify({ minutes, tracks, concurrent, jobs, one_ms: one.wall_ms, many_ms: many.wall_ms, throughput_ratio: throughputMany / throughputOne, worst_over_fair: worst, cores_busy: r.out.cores_busy, completion_ms: many.completion_ms, same_words: r.out.same_words, peaks: r.peaks })}\n`);
      return;
    }
    for (const engine of engines) {
      say(`running ${engine}`);
      // the Conductor server's heap must not grow with the meeting (words travel as storage keys): its RSS before and after
      const serverBefore = engine === "conductor" ? conductorServerMemory(conductor.url) : null;
      const stealBefore = cpuTicks();
      const r = await runEngine(engine, 1);
      const stealAfter = cpuTicks();
      const serverAfter = engine === "conductor" ? conductorServerMemory(conductor.url) : null;
      const s = memoryOnly ? undefined : score(ref.utterances, r.out.words, tracks);
      rows.push({
        engine,
        wall_s: Math.round(r.out.wall_ms / 100) / 10,
        peaks_mb: r.peaks,
        decoded_over_voiced: Math.round((r.out.decoded_seconds / voiced) * 100) / 100,
        // the share of the machine's CPU time the hypervisor gave to others during the run:
        // runs of one engine after another are compared, and a run with much stolen time is slower for it
        steal_pct: Math.round((1000 * (stealAfter.steal - stealBefore.steal)) / Math.max(1, stealAfter.total - stealBefore.total)) / 10,
        // how many of the cores were busy during the run (anything, not only ours), and our
        // processes' CPU seconds by kind: where a slower engine's time went
        cores_busy: Math.round((100 * cores * (1 - (stealAfter.idle - stealBefore.idle + stealAfter.steal - stealBefore.steal) / Math.max(1, stealAfter.total - stealBefore.total)))) / 100,
        cpu_s: r.cpu,
        ...(s ? { sa_wer: Math.round(s.saWer * 1000) / 1000, bleed_words: s.bleedWords } : {}),
        ...(limitSeconds ? { over_limit: Math.round((r.out.wall_ms / 1000 / limitSeconds) * 100) / 100 } : {}),
        ...(serverBefore && serverAfter ? { conductor_server_mb: { rss_before: serverBefore.rss_mb, rss_after: serverAfter.rss_mb, peak: serverAfter.hwm_mb }, conductor_server_cpu_s: Math.round((serverAfter.cpu_s - serverBefore.cpu_s) * 10) / 10 } : {}),
      });
      say(JSON.stringify(rows[rows.length - 1]));
    }
    const inproc = rows.find((r) => r.engine === "inprocess") as { wall_s: number } | undefined;
    process.stdout.write(`\n${minutes}-minute, ${tracks}-track meeting, ${voiced.toFixed(0)} s voiced (speech ${speech}), ${cores} cores${memoryOnly ? ", memory only" : ""}\n`);
    if (limitSeconds !== undefined) process.stdout.write(`engine limit: ${limitSeconds.toFixed(1)} s (decoder CPU per audio second × voiced seconds ÷ cores); utterances decoded alone: SA-WER ${baseline!.saWer.toFixed(3)}, ${baseline!.bleedWords} bleed words\n`);
    for (const r of rows) {
      const peaks = Object.entries(r.peaks_mb as Record<string, number>)
        .map(([k, v]) => `${k} ${v}`)
        .join(", ");
      const vsIn = inproc && r.engine !== "inprocess" ? ` ×${((r.wall_s as number) / inproc.wall_s).toFixed(2)} in-process` : "";
      const server = r.conductor_server_mb as { rss_before: number; rss_after: number; peak: number } | undefined;
      process.stdout.write(
        `${String(r.engine).padEnd(10)} ${String(r.wall_s).padStart(7)} s${r.over_limit !== undefined ? ` (×${String(r.over_limit)} limit)` : ""}${vsIn}  decoded/voiced ${String(r.decoded_over_voiced)}${r.sa_wer !== undefined ? `  SA-WER ${String(r.sa_wer)}  bleed words ${String(r.bleed_words)}` : ""}  steal ${String(r.steal_pct)} %${(r.steal_pct as number) > 5 ? " (noisy host: compare with care)" : ""}\n           peak RSS MB: ${peaks}\n           CPU s: ${Object.entries(r.cpu_s as Record<string, number>).map(([k, v]) => `${k} ${v}`).join(", ")}; cores busy ${String(r.cores_busy)} of ${cores}\n` +
          (server ? `           Conductor server RSS MB: ${server.rss_before} before, ${server.rss_after} after (peak ${server.peak}); its CPU during the run ${String(r.conductor_server_cpu_s)} s\n` : ""),
      );
    }
    process.stdout.write(`${JSON.stringify({ minutes, tracks, speech, voiced_seconds: voiced, limit_seconds: limitSeconds, baseline, rows })}\n`);
  } finally {
    await stopConductor?.();
    if (!values.keep) rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url.endsWith(path.basename(process.argv[1]))) {
  main().catch((err: unknown) => {
    say(`bench:long failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  });
}
