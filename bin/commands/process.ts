/**
 * `trackscribe process --manifest m.json [--json] [--engine inprocess|conductor|bullmq]
 * [--no-workers] [--keep]`: run one multitrack recording through the pipeline and print
 * the transcript, topics, title and summaries (or, with --json, exactly one JSON document
 * on stdout). Logs and the progress bar go to stderr only.
 *
 * This file is the wiring point of the command: config, logger, storage, ports and
 * engine are created here and closed in `finally`.
 */
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile, rm, rmdir } from "node:fs/promises";
import path from "node:path";
import { SingleBar } from "cli-progress";
import { Option, type Command } from "commander";
import { pino, type Logger } from "pino";
import type { z } from "zod/v4";
import { loadConfig, type Config } from "../../pipeline/config.ts";
import { FileManifest, Result, type ProgressEvent } from "../../pipeline/contracts/index.ts";
import type { Storage } from "../../pipeline/ports.ts";
import type { PipelineEngine } from "../../pipeline/runner/engine.ts";
import { createInProcessEngine, PipelineAbortedError, PipelineStepError } from "../../workers/inprocess/inprocess.ts";
import { ManifestFileError, stageManifest } from "../../workers/inprocess/stage.ts";
import { taskCount } from "../../pipeline/state/index.ts";
import { createLocalStorage } from "../../adapters/storage/local.ts";
import { buildInfo, workerIdentity } from "../../workers/identity.ts";
import { CliError } from "../errors.ts";
import { formatResult } from "../../pipeline/render/format-result.ts";

type EngineName = "inprocess" | "conductor" | "bullmq";

interface ProcessOptions {
  manifest: string;
  json?: boolean;
  engine: EngineName;
  workers: boolean;
  keep?: boolean;
}

/** What workers/{conductor,bullmq}/engine.ts receive from this command. */
export interface EngineFactoryOptions {
  storage: Storage;
  log: Logger;
  /** start workers for this run inside this process (false with --no-workers) */
  startWorkers: boolean;
}

export function register(program: Command): void {
  program
    .command("process")
    .description("transcribe a multitrack recording described by a manifest file")
    .requiredOption("--manifest <file>", 'JSON manifest: {"language":"en","tracks":[{"path":"a.wav","participant":"Alice","offset_seconds":0}]}')
    .option("--json", "print exactly one JSON document (the Result) on stdout")
    .addOption(new Option("--engine <name>", "pipeline engine").choices(["inprocess", "conductor", "bullmq"]).default("inprocess"))
    .option("--no-workers", "conductor/bullmq: do not start workers in this process (use running ones)")
    .option("--keep", "keep the run's work directory and staged files")
    .action(async (opts: ProcessOptions) => {
      await processCommand(opts);
    });
}

const describeIssues = (e: z.ZodError): string =>
  e.issues.map((i) => `${i.path.length ? i.path.join(".") : "(root)"}: ${i.message}`).join("; ");

/** Read and validate a manifest; `shown` is how the file is named in error messages. */
export async function readManifest(file: string, shown = file): Promise<FileManifest> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliError(code === "ENOENT" ? `manifest ${shown} does not exist` : `cannot read manifest ${shown} (${code ?? String(err)})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new CliError(`manifest ${shown} is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  const parsed = FileManifest.safeParse(json);
  if (!parsed.success) throw new CliError(`manifest ${shown} is invalid: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

/** Storage shared with out-of-process workers: the configured local directory or S3. */
async function openConfiguredStorage(config: Config): Promise<Storage> {
  if (config.STORAGE_DRIVER === "local") return createLocalStorage(config.LOCAL_STORAGE_DIR);
  const mod = await importOptional("../../adapters/storage/s3.ts", "S3 storage (adapters/storage/s3.ts)");
  const create = mod.createS3Storage as ((c: Config) => Storage | Promise<Storage>) | undefined;
  if (typeof create !== "function") throw new CliError("adapters/storage/s3.ts does not export createS3Storage(config)");
  return await create(config);
}

async function importOptional(specifier: string, what: string): Promise<Record<string, unknown>> {
  const url = new URL(specifier, import.meta.url);
  if (!existsSync(url)) throw new CliError(`${what} is not available in this build (${url.pathname} is missing)`);
  return (await import(url.href)) as Record<string, unknown>;
}

type EngineFactory = (c: Config, o: EngineFactoryOptions) => PipelineEngine | Promise<PipelineEngine>;

/** Load (not start) the conductor/bullmq engine module: a missing one fails before anything is staged. */
async function loadEngineFactory(name: Exclude<EngineName, "inprocess">): Promise<EngineFactory> {
  const [file, factory] = name === "conductor" ? ["../../workers/conductor/engine.ts", "createConductorEngine"] : ["../../workers/bullmq/engine.ts", "createBullmqEngine"];
  const mod = await importOptional(file, `the ${name} engine`);
  const create = mod[factory] as EngineFactory | undefined;
  if (typeof create !== "function") throw new CliError(`the ${name} engine module does not export ${factory}(config, options)`);
  return create;
}

function createProgressBar(totalSteps: number): { onEvent(e: ProgressEvent): void; stop(): void } | undefined {
  if (!process.stderr.isTTY) return undefined;
  const bar = new SingleBar({
    stream: process.stderr,
    format: "{bar} {percentage}% | {value}/{total} steps | {step}",
    hideCursor: true,
    clearOnComplete: true,
  });
  bar.start(totalSteps, 0, { step: "starting" });
  let done = 0;
  return {
    onEvent(e) {
      if (e.step === "pipeline") return;
      const label = `${e.step}${e.track_index === undefined ? "" : ` #${e.track_index}`}`;
      if (e.status === "succeeded") bar.update(Math.min(totalSteps, ++done), { step: `${label} done` });
      else if (e.status === "started") bar.update(done, { step: label });
    },
    stop: () => bar.stop(),
  };
}

export async function processCommand(opts: ProcessOptions): Promise<void> {
  const config = loadConfig(process.env);
  const manifestPath = path.resolve(opts.manifest);
  const manifest = await readManifest(manifestPath, opts.manifest);

  const showBar = process.stderr.isTTY === true;
  // a progress bar and info logs on one terminal garble each other: default to warnings then
  const level = showBar && !process.env.LOG_LEVEL ? "warn" : config.LOG_LEVEL;
  const log = pino({ level, base: { cmd: "process" } }, pino.destination({ dest: 2, sync: true }));

  const recordingId = `cli-${randomUUID()}`;
  const abort = new AbortController();
  const onSignal = (): void => abort.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const cleanups: (() => Promise<void>)[] = [];
  let bar: ReturnType<typeof createProgressBar>;
  try {
    // storage first, then staging (which checks every file before writing anything),
    // and only then the engine: bad input never starts workers or loads models
    const namespace = opts.engine;
    let storage: Storage;
    let runDir: string | undefined;
    let engineFactory: EngineFactory | undefined;
    if (opts.engine === "inprocess") {
      const workDir = path.resolve(config.WORK_DIR);
      const workDirExisted = existsSync(workDir);
      const dir = path.join(workDir, "runs", recordingId);
      runDir = dir;
      if (!opts.keep) {
        cleanups.push(async () => {
          await rm(dir, { recursive: true, force: true });
          // leave no empty directories behind that this run created
          await rmdir(path.dirname(dir)).catch(() => undefined);
          if (!workDirExisted) await rmdir(workDir).catch(() => undefined);
        });
      }
      storage = createLocalStorage(path.join(dir, "storage"));
    } else {
      // a missing engine module fails here, before anything is staged
      engineFactory = await loadEngineFactory(opts.engine);
      storage = await openConfiguredStorage(config);
      const s = storage;
      if (!opts.keep) cleanups.push(async () => void (await s.deletePrefix(`recordings/${recordingId}/`)));
    }

    let input;
    try {
      input = await stageManifest(manifest, storage, recordingId, path.dirname(manifestPath), { namespace });
    } catch (err) {
      if (err instanceof ManifestFileError) throw new CliError(`manifest ${opts.manifest}: ${err.message}`);
      throw err;
    }

    let engine: PipelineEngine;
    if (runDir !== undefined) {
      // loaded on demand: the ASR/audio/NLP stack is only needed by in-process runs
      const { createStepPorts } = await import("../../workers/step-ports.ts");
      engine = createInProcessEngine({
        stepDeps: createStepPorts(config, { storage, log }),
        scratchRoot: path.join(runDir, "scratch"),
        concurrency: config.ASR_CONCURRENCY,
        log,
        workerId: workerIdentity(config.WORKER_SLOT, buildInfo().build).worker_id,
      });
      if (opts.keep) log.info({ run_dir: runDir }, "keeping the run directory");
    } else {
      engine = await engineFactory!(config, { storage, log, startWorkers: opts.workers });
    }
    cleanups.push(() => engine.close());

    bar = createProgressBar(taskCount(input.tracks.length));
    const onProgress = (e: ProgressEvent): void => {
      bar?.onEvent(e);
      log.debug({ progress: e }, "progress");
    };
    let outcome;
    try {
      outcome = await engine.run(input, { onProgress, signal: abort.signal });
    } catch (err) {
      if (err instanceof PipelineAbortedError || abort.signal.aborted) throw new CliError("interrupted", 130);
      if (err instanceof PipelineStepError) throw new CliError(`processing failed: ${err.message}`, 1);
      // engine errors (workflow failed, server unreachable, …) are reported as one line;
      // programming errors keep their stack trace
      if (err instanceof Error && !(err instanceof TypeError || err instanceof ReferenceError || err instanceof RangeError)) {
        log.debug({ err }, "run failed");
        throw new CliError(`processing failed on ${engine.name}: ${err.message}`, 1);
      }
      throw err;
    } finally {
      bar?.stop();
    }
    const result = Result.parse(outcome.result);
    if (opts.json) {
      const doc = engine.name === "inprocess" ? result : { ...result, run: { engine: outcome.run.engine, workflow_id: outcome.run.workflow_id } };
      process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
    } else {
      process.stdout.write(formatResult(result));
      if (outcome.run.workflow_id) process.stdout.write(`\nRun: ${outcome.run.engine} ${outcome.run.workflow_id}\n`);
    }
  } finally {
    process.removeListener("SIGINT", onSignal);
    process.removeListener("SIGTERM", onSignal);
    for (const c of cleanups.reverse()) {
      await c().catch((err: unknown) => log.warn({ err }, "cleanup failed"));
    }
    log.flush?.();
  }
}
