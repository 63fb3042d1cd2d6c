/**
 * One engine of `npm run bench:long`, in a process of its own so that its peak memory is its
 * own: stages the generated meeting `count` times, runs the copies at once, and prints one
 * JSON line (wall time, each recording's completion time, the words with their speakers,
 * the seconds the speech planner sent to the decoder). Conductor's workers run in a
 * `trackscribe workers --engine conductor [-j N]` process, BullMQ's inside this one.
 *
 *   node --import tsx bench/long/run-engine.ts '{"engine":…,"manifest":…,"dir":…,"conductorUrl":…,"count":1,"jobs":0}'
 */
import type { ChildProcess } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { pino } from "pino";
import { loadConfig } from "../../pipeline/config.ts";
import type { PipelineEngine } from "../../pipeline/runner/engine.ts";
import { createInProcessEngine } from "../../workers/inprocess/inprocess.ts";
import { createLocalStorage } from "../../adapters/storage/local.ts";
import { createBullmqEngine, createBullmqRedis } from "../../workers/bullmq/engine.ts";
import { dropPrefix } from "../../workers/bullmq/queues.ts";
import { buildInfo, workerIdentity } from "../../workers/identity.ts";
import { createStepPorts } from "../../workers/step-ports.ts";
import { envelopeFromBytes } from "../../pipeline/audio/envelope.ts";
import { planSpeechSpans, totalSeconds } from "../../pipeline/audio/planner.ts";
import { derivedKey } from "../../pipeline/steps/keys.ts";
import { stageRecording, startConductorWorkers } from "../harness.ts";

interface Args {
  engine: "inprocess" | "conductor" | "bullmq";
  manifest: string;
  dir: string;
  conductorUrl: string;
  count: number;
  jobs: number;
}

const a = JSON.parse(process.argv[2]!) as Args;

/**
 * This process's peak RSS phase by phase: staging the meeting, the engine's run, the bench's
 * own analysis after it (each phase's peak read from /proc/self/status after the peak is
 * reset with clear_refs 5). The run's is the engine's figure; staging and analysis are the
 * bench's. BENCH_MEMORY_TRACE=1 also prints each phase with the largest V8 heap / external /
 * array-buffer figures sampled every 200 ms, on stderr.
 */
const trace = process.env.BENCH_MEMORY_TRACE === "1";
const hwmMb = (): number => Math.round(Number(/VmHWM:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? 0) / 1024);
const phasePeaks: Record<string, number> = {};
let maxima = { rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 };
const sampler = trace
  ? setInterval(() => {
      const m = process.memoryUsage();
      for (const k of Object.keys(maxima) as (keyof typeof maxima)[]) maxima[k] = Math.max(maxima[k], Math.round(m[k] / 1048576));
    }, 200)
  : undefined;
sampler?.unref();
const phase = (name: string): void => {
  phasePeaks[name] = hwmMb();
  if (trace) process.stderr.write(`memory ${name}: peak RSS ${phasePeaks[name]} MB, maxima ${JSON.stringify(maxima)}\n`);
  maxima = { rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 };
  try {
    writeFileSync("/proc/self/clear_refs", "5");
  } catch {
    // not Linux, or not allowed: the peaks then accumulate
  }
};

const config = loadConfig({
  ...process.env,
  LOG_LEVEL: process.env.LOG_LEVEL ?? "warn",
  STORAGE_DRIVER: "local",
  LOCAL_STORAGE_DIR: path.join(a.dir, "storage"),
  WORK_DIR: path.join(a.dir, "work"),
  CONDUCTOR_SERVER_URL: a.conductorUrl,
  BULLMQ_PREFIX: `bench-long-${process.pid}`,
  DATABASE_URL: "",
});
const log = pino({ level: config.LOG_LEVEL }, pino.destination(2));
const storage = createLocalStorage(config.LOCAL_STORAGE_DIR);
let engine: PipelineEngine | undefined;
let workers: ChildProcess | undefined;
let redis: ReturnType<typeof createBullmqRedis> | undefined;
try {
  if (a.engine === "inprocess") {
    const stepDeps = createStepPorts(config, { storage, log });
    engine = createInProcessEngine({ stepDeps, scratchRoot: path.join(a.dir, "scratch"), concurrency: config.ASR_CONCURRENCY, log, workerId: workerIdentity(config.WORKER_SLOT, buildInfo().build).worker_id });
  } else if (a.engine === "bullmq") {
    const stepDeps = createStepPorts(config, { storage, log });
    redis = createBullmqRedis(config.REDIS_URL);
    engine = createBullmqEngine(config, { storage, log, stepDeps, redis, startWorkers: true });
  } else {
    const conductorModule = new URL("../../workers/conductor/engine.ts", import.meta.url);
    if (!existsSync(conductorModule)) throw new Error("workers/conductor/engine.ts is not in this build");
    const { createConductorEngine } = (await import(conductorModule.href)) as {
      createConductorEngine: (c: typeof config, o: { storage: typeof storage; log: typeof log; startWorkers: boolean }) => PipelineEngine | Promise<PipelineEngine>;
    };
    workers = await startConductorWorkers(
      {
        ...process.env,
        LOG_LEVEL: "info",
        STORAGE_DRIVER: "local",
        LOCAL_STORAGE_DIR: config.LOCAL_STORAGE_DIR,
        WORK_DIR: path.join(a.dir, "conductor-worker"),
        CONDUCTOR_SERVER_URL: a.conductorUrl,
        DATABASE_URL: "",
        RECONCILER_ENABLED: "false",
      },
      a.jobs > 0 ? ["-j", String(a.jobs)] : [],
    );
    engine = await createConductorEngine(config, { storage, log, startWorkers: false });
  }
  const inputs = [];
  for (let i = 0; i < a.count; i++) inputs.push(await stageRecording(storage, a.manifest, `long-${a.engine}-${i}-${process.pid}`, a.engine));
  phase("staging");
  const t0 = performance.now();
  const runs = await Promise.all(inputs.map(async (input) => ({ input, ...(await engine!.run(input)), ms: performance.now() - t0 })));
  const wall_ms = performance.now() - t0;
  phase("run");
  // what the planner sent to the decoder, from the stored envelopes (the plan is not kept)
  const first = runs[0]!.input;
  const envelopes = await Promise.all(
    first.tracks.map(async (t) => ({
      track_index: t.track_index,
      offset_seconds: t.offset_seconds,
      frame_seconds: 0.02,
      envelope: envelopeFromBytes(await storage.get(derivedKey(first.recording_id, first.namespace, "envelope", `${t.track_index}.f32`))),
    })),
  );
  const spans = await planSpeechSpans(envelopes, { bleedDb: config.BLEED_THRESHOLD_DB });
  const decoded_seconds = [...spans.values()].reduce((s, x) => s + totalSeconds(x), 0);
  // under Conductor: where the time went, task by task (queue wait: scheduled → polled)
  let tasks: { ref: string; at_s: number; wait_s: number; run_s: number }[] | undefined;
  const wfId = (runs[0]! as { run?: { workflow_id?: string } }).run?.workflow_id;
  if (a.engine === "conductor" && wfId) {
    const wf = (await (await fetch(`${a.conductorUrl}/workflow/${wfId}?includeTasks=true`)).json()) as { startTime: number; tasks: { referenceTaskName: string; taskType: string; scheduledTime: number; startTime: number; endTime: number }[] };
    tasks = wf.tasks
      .filter((t) => !["FORK", "JOIN", "FORK_JOIN_DYNAMIC", "DECISION", "SWITCH", "INLINE"].includes(t.taskType))
      .map((t) => ({ ref: t.referenceTaskName, at_s: (t.scheduledTime - wf.startTime) / 1000, wait_s: (t.startTime - t.scheduledTime) / 1000, run_s: (t.endTime - t.startTime) / 1000 }));
  }
  const out = {
    engine: a.engine,
    ...(tasks ? { tasks } : {}),
    wall_ms,
    completion_ms: runs.map((r) => r.ms),
    decoded_seconds,
    words: runs[0]!.result.words.map((w) => ({ text: w.text, start: w.start, end: w.end, speaker: w.speaker })),
  };
  phase("analysis");
  process.stdout.write(`${JSON.stringify({ ...out, phase_peaks_mb: phasePeaks })}\n`);
} finally {
  await engine?.close().catch(() => {});
  if (redis) {
    await dropPrefix(redis, config.BULLMQ_PREFIX);
    await redis.quit();
  }
  if (workers && workers.exitCode === null) {
    workers.kill("SIGTERM");
    await new Promise((r) => workers!.once("exit", r));
  }
}
