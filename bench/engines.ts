/**
 * `npm run bench:engines`: the same 3-track recording through the in-process runner,
 * Conductor and BullMQ, in one run; BullMQ's workers inside this process, Conductor's in a
 * `trackscribe workers --engine conductor` process (as deployed). Engines are created (workers started, models loaded) before timing;
 * each engine runs the recording BENCH_ROUNDS times (default 3) in interleaved order
 * and its median wall time is compared with the in-process median.
 * Target: BullMQ ≤ 1.05 × in-process.
 *
 * Needs Redis, and a Conductor server at CONDUCTOR_SERVER_URL (started with
 * scripts/conductor.ts when none answers). Postgres is used for the BullMQ event log
 * when DATABASE_URL is set (as in production), else the in-memory log.
 */
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { loadConfig } from "../pipeline/config.ts";
import type { Result } from "../pipeline/contracts/index.ts";
import type { PipelineEngine } from "../pipeline/runner/engine.ts";
import { createInProcessEngine } from "../workers/inprocess/inprocess.ts";
import { migrate } from "../adapters/postgres/migrate.ts";
import { createPool } from "../adapters/postgres/pool.ts";
import { createLocalStorage } from "../adapters/storage/local.ts";
import { createBullmqEngine, createBullmqRedis } from "../workers/bullmq/engine.ts";
import { dropPrefix } from "../workers/bullmq/queues.ts";
import { buildInfo, workerIdentity } from "../workers/identity.ts";
import { createStepPorts } from "../workers/step-ports.ts";
import { median } from "./stats.ts";
import { conductorUrl, fixtureManifest, stageRecording, startConductorWorkers } from "./harness.ts";

async function main(): Promise<void> {
  const say = (s: string): void => void process.stderr.write(`${s}\n`);
  const dir = mkdtempSync(path.join(os.tmpdir(), "bench-engines-"));
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const manifestFile = await fixtureManifest();
  const conductor = await conductorUrl(process.env.CONDUCTOR_SERVER_URL ?? "http://127.0.0.1:8080/api", say);
  const config = loadConfig({
    ...process.env,
    LOG_LEVEL: process.env.LOG_LEVEL ?? "warn",
    STORAGE_DRIVER: "local",
    LOCAL_STORAGE_DIR: path.join(dir, "storage"),
    WORK_DIR: path.join(dir, "work"),
    CONDUCTOR_SERVER_URL: conductor.url,
    BULLMQ_PREFIX: `bench-${process.pid}`,
  });
  const log = pino({ level: config.LOG_LEVEL }, pino.destination(2));
  const storage = createLocalStorage(config.LOCAL_STORAGE_DIR);
  if (config.DATABASE_URL) await migrate(config);
  const pool = config.DATABASE_URL ? createPool(config, { max: 4 }) : undefined;
  const stepDeps = createStepPorts(config, { storage, log });
  const redis = createBullmqRedis(config.REDIS_URL);
  const engines: PipelineEngine[] = [];
  let conductorWorkers: ChildProcess | undefined;
  try {
    engines.push(
      createInProcessEngine({
        stepDeps,
        scratchRoot: path.join(dir, "scratch"),
        concurrency: config.ASR_CONCURRENCY,
        log,
        workerId: workerIdentity(config.WORKER_SLOT, buildInfo().build).worker_id,
      }),
    );
    // loaded by URL: the module belongs to the Conductor engine (workers/conductor)
    const conductorModule = new URL("../workers/conductor/engine.ts", import.meta.url);
    if (existsSync(conductorModule)) {
      const { createConductorEngine } = (await import(conductorModule.href)) as {
        createConductorEngine: (c: typeof config, o: { storage: typeof storage; log: typeof log; startWorkers: boolean }) => PipelineEngine | Promise<PipelineEngine>;
      };
      // the Conductor workers run as in production: a worker process of their own (with its
      // heavy-step children), not pollers sharing this process's event loop with BullMQ
      conductorWorkers = await startConductorWorkers({ ...process.env, LOG_LEVEL: "info", STORAGE_DRIVER: "local", LOCAL_STORAGE_DIR: config.LOCAL_STORAGE_DIR, WORK_DIR: path.join(dir, "conductor-worker"), CONDUCTOR_SERVER_URL: conductor.url, DATABASE_URL: "", RECONCILER_ENABLED: "false" });
      engines.push(await createConductorEngine(config, { storage, log, startWorkers: false }));
    } else say("workers/conductor/engine.ts is not in this build: benchmarking in-process and BullMQ only");
    // shadow-mode wiring: Postgres event log when there is a database
    engines.push(createBullmqEngine(config, { storage, log, stepDeps, redis, startWorkers: true, ...(pool ? { pool } : {}) }));

    // warm-up: one run per engine (model loading, JIT, Conductor task definitions)
    const times = new Map<string, number[]>(engines.map((e) => [e.name, []]));
    const results = new Map<string, Result>();
    for (let round = 0; round <= rounds; round++) {
      for (const engine of round % 2 ? [...engines].reverse() : engines) {
        const input = await stageRecording(storage, manifestFile, `bench-${engine.name}-${round}-${process.pid}`, engine.name);
        const t0 = performance.now();
        const { result } = await engine.run(input);
        const ms = performance.now() - t0;
        if (round === 0) say(`warm-up ${engine.name}: ${Math.round(ms)} ms`);
        else {
          times.get(engine.name)!.push(ms);
          say(`round ${round} ${engine.name}: ${Math.round(ms)} ms`);
        }
        results.set(engine.name, result);
      }
    }
    const base = median(times.get("inprocess")!);
    const rows = engines.map((e) => {
      const m = median(times.get(e.name)!);
      return { engine: e.name, median_ms: Math.round(m), ratio: m / base, words: results.get(e.name)!.words.length };
    });
    process.stdout.write(`\nengine      median ms  ratio to in-process  words\n`);
    for (const r of rows) process.stdout.write(`${r.engine.padEnd(10)}  ${String(r.median_ms).padStart(9)}  ${r.ratio.toFixed(3).padStart(19)}  ${String(r.words).padStart(5)}\n`);
    // the machine's load drifts between rounds: the ratio within each round is steadier
    const paired = (name: string): number[] => times.get(name)!.map((ms, i) => ms / times.get("inprocess")![i]!);
    const pairedMedians = Object.fromEntries(engines.filter((e) => e.name !== "inprocess").map((e) => [e.name, median(paired(e.name))]));
    for (const [name, r] of Object.entries(pairedMedians)) process.stdout.write(`${name}: median of per-round ratios ${r.toFixed(3)} (${paired(name).map((x) => x.toFixed(2)).join(", ")})\n`);
    const bull = rows.find((r) => r.engine === "bullmq")!;
    process.stdout.write(`\nBullMQ / in-process = ${bull.ratio.toFixed(3)} (target ≤ 1.05): ${bull.ratio <= 1.05 ? "met" : "NOT met"}\n`);
    process.stdout.write(`${JSON.stringify({ rounds, rows, paired: pairedMedians })}\n`);
  } finally {
    for (const e of engines.reverse()) await e.close().catch((err: unknown) => log.warn({ err }, "engine close failed"));
    await dropPrefix(redis, config.BULLMQ_PREFIX);
    await redis.quit();
    await pool?.end();
    if (conductorWorkers && conductorWorkers.exitCode === null) {
      conductorWorkers.kill("SIGTERM");
      await new Promise((r) => conductorWorkers!.once("exit", r));
    }
    await conductor.stop?.();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:engines failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
