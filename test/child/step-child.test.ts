/**
 * Real steps in the real step child (workers/child/step-child.ts): heavy steps run in a
 * child process that builds its own ports from its environment and returns the same
 * output as an in-process run; a child killed mid-transcription surfaces as
 * WorkerCrashError and is replaced.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { pino } from "pino";
import { loadConfig } from "../../pipeline/config.ts";
import { runStep, StepInputError } from "../../pipeline/steps/index.ts";
import { createLocalStorage } from "../../adapters/storage/local.ts";
import { WorkerCrashError } from "../../workers/child/errors.ts";
import { createStepExecutor } from "../../workers/child/executor.ts";
import { childStepRunnerOptions, createChildStepRunner } from "../../workers/child/runner.ts";
import { createStepPorts } from "../../workers/step-ports.ts";
import { stageSlowTranscription } from "../supervisor/slow-task.ts";

/** live (not zombie) processes in process group `pgid` */
const processGroup = (pgid: number): string[] =>
  spawnSync("ps", ["-e", "-o", "pid=,pgid=,stat=,comm="], { encoding: "utf8" })
    .stdout.split("\n")
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 4 && Number(f[1]) === pgid && !f[2]!.startsWith("Z"))
    .map((f) => `${f[0]} ${f[3]}`);

const dir = mkdtempSync(path.join(os.tmpdir(), "step-child-"));
const env = { ...process.env, NODE_ENV: "test", LOG_LEVEL: "warn", STORAGE_DRIVER: "local", LOCAL_STORAGE_DIR: path.join(dir, "storage"), WORK_DIR: path.join(dir, "work") };
const config = loadConfig(env);
const storage = createLocalStorage(config.LOCAL_STORAGE_DIR);
const lines: string[] = [];
const runner = createChildStepRunner(childStepRunnerOptions(config, { env, maxChildren: 1, onLogLine: (l) => void lines.push(l) }));
const execute = createStepExecutor({ runner });
const ports = createStepPorts(config, { storage, log: pino({ level: "silent" }) });
let n = 0;
const scratch = (): string => {
  const d = path.join(dir, "scratch", String(n++));
  mkdirSync(d, { recursive: true });
  return d;
};
after(async () => {
  await runner.close();
  rmSync(dir, { recursive: true, force: true });
});

test("warmShared (before any step ran): the shared child starts its pocketsphinx decoders before any transcription is asked for", async () => {
  const decodersOf = (pids: (number | undefined)[]): string[] =>
    spawnSync("ps", ["-e", "-o", "pid=,ppid=,stat=,comm="], { encoding: "utf8" })
      .stdout.split("\n")
      .map((l) => l.trim().split(/\s+/))
      .filter((f) => f.length >= 4 && pids.includes(Number(f[1])) && !f[2]!.startsWith("Z") && f[3]!.startsWith("pocketsphinx"))
      .map((f) => f[0]!);
  assert.equal(runner.started, 0, "no child yet");
  runner.warmShared();
  let decoders: string[] = [];
  for (let i = 0; i < 200 && decoders.length < config.ASR_CONCURRENCY; i++) {
    await new Promise((r) => setTimeout(r, 50));
    decoders = decodersOf(runner.pids());
  }
  assert.equal(decoders.length, config.ASR_CONCURRENCY, `one decoder per ASR_CONCURRENCY in the shared child (children: ${runner.pids().join(", ")})`);
});

test("a heavy step runs in a child and returns what the in-process run returns; light steps stay in-process", async () => {
  const input = await stageSlowTranscription(config, storage, "rec-child", 1);
  const progress: unknown[] = [];
  const inChild = await execute("transcribe_track", input, { ...ports(scratch()), progress: (p) => void progress.push(p) });
  assert.equal(runner.started, 1);
  const childPid = runner.pids()[0];
  assert.ok(childPid && childPid !== process.pid);
  const inProcess = await runStep("transcribe_track", input, ports(scratch()));
  assert.ok(inChild.words.length > 0);
  assert.deepEqual(inChild, inProcess);
  assert.ok(progress.length > 0, "progress streamed back from the child");

  const merged = await execute("merge_transcripts", { expected_tracks: [0], transcripts: [inChild] }, ports(scratch()));
  assert.equal(merged.track_count, 1);
  assert.equal(runner.started, 1, "merge_transcripts (not heavy) did not use a child");

  await assert.rejects(execute("transcribe_track", { ...input, language: 42 }, ports(scratch())), StepInputError);
});

test("kill -9 of the step child mid-transcription: WorkerCrashError, then a fresh child serves the next call", async () => {
  const input = await stageSlowTranscription(config, storage, "rec-crash", 8);
  // make sure the transcription child (one child shared by concurrent transcriptions) is
  // warm: invalid input sent to the runner directly still goes through it
  await assert.rejects(runner.run("transcribe_track", {}, { scratchDir: scratch() }), (e: Error) => e.name === "StepInputError");
  assert.equal(runner.pids().length, 1);
  const [victim] = runner.pids();
  assert.ok(victim);
  let groupBefore: string[] = [];
  let killed = false;
  const call = execute("transcribe_track", input, {
    ...ports(scratch()),
    progress: () => {
      if (killed) return;
      killed = true;
      // the first progress comes once a decoder has its first segment: kill the child alone
      // (not its group) while the decoder works
      setTimeout(() => {
        groupBefore = processGroup(victim);
        process.kill(victim, "SIGKILL");
      }, 100);
    },
  });
  const err = await call.then(
    () => assert.fail("the call should have failed"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof WorkerCrashError, String(err));
  assert.equal(err.signal, "SIGKILL");
  assert.equal(err.pid, victim);
  assert.match(err.message, /killed by SIGKILL while running step transcribe_track/);
  assert.ok(groupBefore.length >= 2, `the child had started its ASR process (group: ${groupBefore.join(", ")})`);
  await new Promise((r) => setTimeout(r, 200));
  const left = processGroup(victim);
  assert.deepEqual(left, [], "nothing the dead child started is left running");
  const again = await execute("transcribe_track", { ...input, track: { ...input.track, spans: input.track.spans.slice(0, 1).map((s) => ({ start: s.start, end: Math.min(s.end, s.start + 0.5) })) } }, ports(scratch()));
  assert.equal(again.track_index, 0);
  assert.notEqual(runner.pids()[0], victim);
  assert.equal(runner.started, 2);
});

test("STEP_INFRA_RERUNS: a child killed under a step is not the step's fault: the step runs again in a fresh child and succeeds; a step whose child dies every time fails, saying how often", async () => {
  const input = await stageSlowTranscription(config, storage, "rec-rerun", 2);
  const short = { ...input, track: { ...input.track, spans: input.track.spans.slice(0, 1).map((s) => ({ start: s.start, end: Math.min(s.end, s.start + 0.5) })) } };
  const resilient = createStepExecutor({ runner, infraReruns: 2, log: pino({ level: "silent" }) });
  // warm: the shared transcription child exists
  await resilient("transcribe_track", short, ports(scratch()));
  const startedBefore = runner.started;
  // kill the child once, at the first progress of the call
  let kills = 0;
  const killOnce = (): void => {
    if (kills > 0) return;
    kills++;
    process.kill(runner.pids()[0]!, "SIGKILL");
  };
  const out = await resilient("transcribe_track", short, { ...ports(scratch()), progress: killOnce });
  assert.equal(kills, 1);
  assert.equal(out.track_index, 0);
  assert.ok(out.words.length > 0, "the re-run transcribed the track");
  assert.equal(runner.started, startedBefore + 1, "one fresh child");
  // kill it every time: after 1 + 2 runs the step fails, with a reason that says so
  let everyTime = 0;
  const killAlways = (): void => {
    const pid = runner.pids()[0];
    if (pid && pid !== lastKilled) {
      lastKilled = pid;
      everyTime++;
      process.kill(pid, "SIGKILL");
    }
  };
  let lastKilled = 0;
  const err = await resilient("transcribe_track", short, { ...ports(scratch()), progress: killAlways }).then(
    () => assert.fail("a step whose process always dies must fail"),
    (e: Error & { code?: string }) => e,
  );
  assert.equal(everyTime, 3);
  assert.equal(err.name, "PublicError");
  assert.equal(err.code, "worker_crashed");
  assert.match(err.message, /stopped 3 times in a row \(2 fresh processes tried\)/);
});

test("kill -9 of the decoder (pocketsphinx) mid-transcription is not the step's fault either: the step runs again and succeeds", async () => {
  // found by the chaos run: the killed decoder failed the track as "could not transcribe this audio"
  const input = await stageSlowTranscription(config, storage, "rec-decoder-kill", 2);
  const short = { ...input, track: { ...input.track, spans: input.track.spans.slice(0, 1).map((s) => ({ start: s.start, end: Math.min(s.end, s.start + 0.5) })) } };
  const resilient = createStepExecutor({ runner, infraReruns: 2, log: pino({ level: "silent" }) });
  await resilient("transcribe_track", short, ports(scratch()));
  let killed = "";
  const killDecoder = (): void => {
    if (killed) return;
    const child = runner.pids()[0]!;
    const decoder = processGroup(child).find((p) => /pocketsphinx/.test(p));
    if (!decoder) return;
    killed = decoder;
    process.kill(Number(decoder.split(" ")[0]), "SIGKILL");
  };
  const out = await resilient("transcribe_track", input, { ...ports(scratch()), progress: killDecoder });
  assert.ok(killed, "a decoder was killed mid-transcription");
  assert.equal(out.track_index, 0);
  assert.ok(out.words.length > 0, "the re-run transcribed the track");
});
