/**
 * `npm run bench:conductor`: the 3-track fixture meeting through Conductor vs the
 * in-process runner, in the same run (target ratio ≤ 1.10), with the orchestration
 * overhead broken out: JOIN wait (JOIN end − last forked task end), queue wait per task
 * (start − scheduled, bounded below by the poll interval) and the poll interval itself.
 * Uses CONDUCTOR_SERVER_URL when set, else starts a server of its own.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { loadConfig } from "../pipeline/config.ts";
import { FileManifest } from "../pipeline/contracts/index.ts";
import { createInProcessEngine } from "../workers/inprocess/inprocess.ts";
import { stageManifest } from "../workers/inprocess/stage.ts";
import { buildFixtures, defaultFixtureDir } from "../scripts/build-fixtures.ts";
import { startConductor } from "../scripts/conductor.ts";
import { createLocalStorage } from "../adapters/storage/local.ts";
import type { WorkflowRecord } from "../adapters/conductor/client.ts";
import { createConductorEngine } from "../workers/conductor/engine.ts";
import { createStepPorts } from "../workers/step-ports.ts";
import { cpuByCommandSince, cpuSeconds, cpuSnapshot, threadCpuSeconds } from "../workers/supervisor/proc-stat.ts";
import { describeProbes, speedProbeMs } from "./speed-probe.ts";
import { median } from "./stats.ts";
import { PHASES, phaseDurations, type StepSpan } from "./phases.ts";

const log = pino({ level: "warn" }, pino.destination(2));
/** compiler CPU per warm-up run under which the server's JIT counts as settled, s */
const COMPILER_SETTLED_S = 0.1;
/** …in this many warm-up runs in a row (compiling comes in bursts: two quiet runs were followed by 0.2 s) */
const SETTLED_RUNS = 3;

/** CPU seconds of the JVM's JIT compiler threads in a by-thread map (threadCpuSeconds) */
const jitSeconds = (byThread: ReadonlyMap<string, number>): number => [...byThread].filter(([n]) => n.includes("CompilerThre")).reduce((a, [, v]) => a + v, 0);
/** each JOIN of a workflow: how long after its last forked task it ended (server clock), ms */
const joinWaits = (w: WorkflowRecord): { ref: string; mode: string; ms: number }[] => {
  const ends = new Map(w.tasks.map((t) => [t.referenceTaskName, t.endTime]));
  return w.tasks
    .filter((t) => t.taskType === "JOIN")
    .map((j) => ({
      ref: j.referenceTaskName,
      mode: String((j as { workflowTask?: { joinMode?: string } }).workflowTask?.joinMode ?? "default"),
      ms: j.endTime - Math.max(...Object.keys(j.outputData).map((ref) => ends.get(ref) ?? 0)),
    }));
};
/** the tasks of a workflow that ran a step (not the server's own FORK/JOIN) */
const stepTasks = (w: WorkflowRecord): WorkflowRecord["tasks"] =>
  w.tasks.filter((t) => t.startTime > 0 && t.endTime > 0 && !["JOIN", "FORK", "FORK_JOIN", "FORK_JOIN_DYNAMIC"].includes(t.taskType));

/**
 * A freshly started JVM compiles for a minute or so after its first requests; a run timed
 * meanwhile competes with the compiler for the 2 cores (one early in-process round took
 * 8.7 s against 5.4 s later). Wait until the server's CPU stays low for a second.
 */
async function settle(pid: number | undefined, maxMs = 60_000): Promise<string> {
  if (!pid) return "server not ours: not waited for";
  const t0 = performance.now();
  let cores = Number.NaN;
  while (performance.now() - t0 < maxMs) {
    const c0 = cpuSeconds(pid);
    await new Promise((r) => setTimeout(r, 1000));
    cores = cpuSeconds(pid) - c0;
    if (!(cores >= 0.2)) break;
  }
  return `server at ${Number.isNaN(cores) ? "?" : cores.toFixed(2)} cores after ${((performance.now() - t0) / 1000).toFixed(0)} s of settling`;
}
/** BENCH_CONDUCTOR_ARGS: extra server arguments for experiments (e.g. --conductor.indexing.enabled=false) */
const extraArgs = (process.env.BENCH_CONDUCTOR_ARGS ?? "").split(/\s+/).filter(Boolean);
// the server as docker-compose.yml runs it: JVM options for a long-running server
const own = process.env.CONDUCTOR_SERVER_URL ? undefined : await startConductor({ stateDir: ".work/bench-conductor", fresh: true, extraArgs, jvm: "steady" });
if (extraArgs.length) console.log(`server started with ${extraArgs.join(" ")}`);
const url = process.env.CONDUCTOR_SERVER_URL ?? own!.url;
const dir = await mkdtemp(path.join(os.tmpdir(), "bench-conductor-"));
const pick = (...names: string[]): Record<string, string> => Object.fromEntries(names.flatMap((n) => (process.env[n] ? [[n, process.env[n]!]] : [])));
const config = loadConfig({ ...pick("CONDUCTOR_POLL_INTERVAL_MS", "CONDUCTOR_LONG_POLL_MS", "CONDUCTOR_POLL_SLICE_MS", "WORKER_CONCURRENCY", "ASR_CONCURRENCY"), CONDUCTOR_SERVER_URL: url, STORAGE_DRIVER: "local", LOCAL_STORAGE_DIR: dir, WORK_DIR: path.join(dir, "work"), RECONCILER_ENABLED: "false", LOG_LEVEL: "warn" });
const storage = createLocalStorage(dir);
const { manifestPath } = await buildFixtures(defaultFixtureDir());
const manifest = FileManifest.parse(JSON.parse(readFileSync(manifestPath, "utf8")));
const stage = (id: string, ns: string) => stageManifest(manifest, storage, id, path.dirname(manifestPath), { namespace: ns });

const inproc = createInProcessEngine({ stepDeps: createStepPorts(config, { storage, log }), scratchRoot: path.join(dir, "scratch") });
const conductor = createConductorEngine(config, { storage, log, startWorkers: true });
try {
  // warm both (model loads, JIT, worker registration) so the timed runs compare steady
  // states: at least BENCH_WARM runs each, then Conductor runs until the server's JIT
  // compiler has settled (a long-running server has compiled its hot code long ago; a
  // fresh one compiles for minutes, on the cores the decoders want)
  const warm = Math.max(1, Number(process.env.BENCH_WARM ?? 3) || 3);
  const warmMax = Math.max(warm, Number(process.env.BENCH_WARM_MAX ?? 40) || 40);
  const compilerCpu = (): number => (own ? jitSeconds(threadCpuSeconds(own.pid)) : 0);
  const compiled: number[] = [];
  const settledNow = (): boolean => compiled.length >= SETTLED_RUNS && compiled.slice(-SETTLED_RUNS).every((c) => c < COMPILER_SETTLED_S);
  for (let i = 0; i < warmMax; i++) {
    if (i < warm) await inproc.run(await stage(`warm-in-${i}`, "inprocess"));
    const c0 = compilerCpu();
    await conductor.run(await stage(`warm-c-${i}`, "conductor"));
    compiled.push(compilerCpu() - c0);
    if (i + 1 >= warm && (!own || settledNow())) break;
  }
  if (own) {
    console.log(
      `warm-up: ${compiled.length} Conductor runs; the server's JIT compiler used ${compiled.map((c) => c.toFixed(2)).join(", ")} s of CPU in them ` +
        (settledNow()
          ? `(settled: under ${COMPILER_SETTLED_S} s in each of the last ${SETTLED_RUNS})`
          : `(not settled after BENCH_WARM_MAX = ${warmMax} runs)`),
    );
  }
  console.log(await settle(own?.pid));
  // rounds alternate which engine goes first, so drift in the machine's speed cancels out
  const rounds = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 8) || 8);
  let tIn = 0;
  let tC = 0;
  /** CPU seconds the server used during the Conductor runs (cores the decoders did not get) */
  let serverCpu = 0;
  const serverThreads = new Map<string, number>();
  const perRound: { inproc: number; conductor: number; workflow: string; inSpans: StepSpan[]; server: { cpu: number; jit: number } }[] = [];
  /** the last in-process run's steps: [step, started at, ms] from its progress events */
  let inSteps: { step: string; at: number; ms: number }[] = [];
  const probes: number[] = [];
  let inSpans: StepSpan[] = [];
  /** CPU seconds by process name over all runs of each engine (every process on the machine) */
  const cpuIn = new Map<string, number>();
  const cpuC = new Map<string, number>();
  const addCpu = (into: Map<string, number>, by: Map<string, number>, reaped: number): void => {
    // kernel workers are named per CPU and job (kworker/1:3-events…): one line for all
    for (const [name, v] of by) {
      const k = name.startsWith("kworker/") ? "kworker" : name;
      into.set(k, (into.get(k) ?? 0) + v);
    }
    if (reaped > 0) into.set("exited children", (into.get("exited children") ?? 0) + reaped);
  };
  for (let i = 0; i < rounds; i++) {
    probes.push(speedProbeMs());
    const runIn = async (): Promise<number> => {
      const a = await stage(`in-${i}`, "inprocess");
      const snap = cpuSnapshot();
      const kids = cpuSeconds("self", "children");
      const t0 = performance.now();
      const steps: typeof inSteps = [];
      await inproc.run(a, {
        onProgress: (e) => {
          if (e.status !== "succeeded" || e.duration_ms === undefined) return;
          const label = e.track_index === undefined ? e.step : `${e.step}_${e.track_index}`;
          steps.push({ step: label, at: Math.round(performance.now() - t0 - e.duration_ms), ms: e.duration_ms });
        },
      });
      inSteps = steps;
      addCpu(cpuIn, cpuByCommandSince(snap), cpuSeconds("self", "children") - kids);
      inSpans = steps.map((st) => ({ step: st.step.replace(/_\d+$/, ""), start: st.at, end: st.at + st.ms }));
      return performance.now() - t0;
    };
    let roundServer = { cpu: NaN, jit: NaN };
    const runC = async (): Promise<[number, string]> => {
      const b = await stage(`c-${i}`, "conductor");
      const snap = cpuSnapshot();
      const kids = cpuSeconds("self", "children");
      const t0 = performance.now();
      const c0 = own ? cpuSeconds(own.pid) : 0;
      const th0 = own ? threadCpuSeconds(own.pid) : new Map<string, number>();
      const r = await conductor.run(b);
      addCpu(cpuC, cpuByCommandSince(snap), cpuSeconds("self", "children") - kids);
      if (own) {
        const used = cpuSeconds(own.pid) - c0;
        serverCpu += used;
        const byThread = new Map([...threadCpuSeconds(own.pid)].map(([name, secs]) => [name, secs - (th0.get(name) ?? 0)]));
        for (const [name, secs] of byThread) serverThreads.set(name, (serverThreads.get(name) ?? 0) + secs);
        roundServer = { cpu: used, jit: jitSeconds(byThread) };
      }
      return [performance.now() - t0, r.run.workflow_id ?? ""];
    };
    let ti: number;
    let tc: number;
    let workflow: string;
    if (i % 2 === 0) {
      ti = await runIn();
      [tc, workflow] = await runC();
    } else {
      [tc, workflow] = await runC();
      ti = await runIn();
    }
    tIn += ti;
    tC += tc;
    perRound.push({ inproc: ti, conductor: tc, workflow, inSpans, server: roundServer });
  }
  const { createConductorApi } = await import("../adapters/conductor/client.ts");
  const capi = createConductorApi(url);
  /** each round's Conductor workflow, with its tasks (server clock) */
  const workflows: WorkflowRecord[] = [];
  for (const r of perRound) workflows.push(await capi.getWorkflow(r.workflow, true));
  const wf = workflows.at(-1)!;
  console.log(`in-process: ${(tIn / rounds / 1000).toFixed(2)} s per run; Conductor: ${(tC / rounds / 1000).toFixed(2)} s per run (${rounds} runs each, interleaved)`);
  console.log(`Conductor / in-process: ${(tC / tIn).toFixed(3)} over all rounds, median of per-round ratios ${median(perRound.map((r) => r.conductor / r.inproc)).toFixed(3)} (target ≤ 1.10)`);
  console.log(describeProbes(probes));
  // the same phases in both engines: where the Conductor run's extra time goes
  const phaseIn: number[][] = [];
  const phaseC: number[][] = [];
  for (const [i, r] of perRound.entries()) {
    const w = workflows[i]!;
    const spans = stepTasks(w).map((t) => ({ step: t.taskType, start: t.startTime - w.startTime, end: t.endTime - w.startTime }));
    phaseC.push(phaseDurations(spans, w.endTime - w.startTime));
    phaseIn.push(phaseDurations(r.inSpans, r.inproc));
  }
  const TRANSCRIPTION = PHASES.indexOf("transcription (all tracks)");
  for (const [i, r] of perRound.entries()) {
    const w = workflows[i]!;
    const inWf = w.endTime - w.startTime;
    const inTranscribe = phaseIn[i]![TRANSCRIPTION]!;
    const cTranscribe = phaseC[i]![TRANSCRIPTION]!;
    console.log(
      `  round ${i + 1} (${i % 2 === 0 ? "in-process first" : "Conductor first"}): in-process ${(r.inproc / 1000).toFixed(2)} s, Conductor ${(r.conductor / 1000).toFixed(2)} s (ratio ${(r.conductor / r.inproc).toFixed(3)}; workflow start→end ${(inWf / 1000).toFixed(2)} s, start call and end detection ${((r.conductor - inWf) / 1000).toFixed(2)} s; ` +
        `transcription phase in-process ${(inTranscribe / 1000).toFixed(2)} s, Conductor ${(cTranscribe / 1000).toFixed(2)} s` +
        (Number.isNaN(r.server.cpu) ? ")" : `; server CPU ${r.server.cpu.toFixed(2)} s, of which JIT ${r.server.jit.toFixed(2)} s)`),
    );
  }
  console.log("\nphase (median over rounds, ms)            in-process  Conductor  difference");
  for (const [k, name] of PHASES.entries()) {
    const a = median(phaseIn.map((p) => p[k]!));
    const b = median(phaseC.map((p) => p[k]!));
    console.log(`${name.padEnd(40)}  ${a.toFixed(0).padStart(10)}  ${b.toFixed(0).padStart(9)}  ${(b - a >= 0 ? "+" : "") + (b - a).toFixed(0).padStart(9)}`);
  }
  const cpuLine = (m: Map<string, number>): string => {
    const total = [...m.values()].reduce((a, b) => a + b, 0);
    const top = [...m].filter(([, v]) => v / rounds >= 0.01).sort((a, b) => b[1] - a[1]);
    return `${(total / rounds).toFixed(2)} s (${top.map(([k, v]) => `${k} ${(v / rounds).toFixed(2)}`).join(", ")})`;
  };
  console.log(`CPU per run, every process on the machine: in-process ${cpuLine(cpuIn)}`);
  console.log(`                                           Conductor  ${cpuLine(cpuC)}`);
  console.log("");
  // where no step of the workflow was running: hand-offs and JOIN waits, measured on the
  // server's clock (less sensitive to the machine's speed than the wall times above)
  const gaps: { idle: number; joins: number }[] = [];
  for (const w of workflows) {
    const spans = stepTasks(w)
      .map((t) => [t.startTime, t.endTime] as const)
      .sort((x, y) => x[0] - y[0]);
    let covered = 0;
    let end = -Infinity;
    for (const [a, b] of spans) {
      if (a > end) {
        covered += b - a;
        end = b;
      } else if (b > end) {
        covered += b - end;
        end = b;
      }
    }
    const joins = joinWaits(w).reduce((sum, j) => sum + j.ms, 0);
    gaps.push({ idle: w.endTime - w.startTime - covered, joins });
  }
  console.log(
    `no step running (hand-offs and JOIN waits, server clock): median ${median(gaps.map((g) => g.idle)).toFixed(0)} ms per workflow (${gaps.map((g) => g.idle).join(", ")}), ` +
      `of which JOIN waits ${median(gaps.map((g) => g.joins)).toFixed(0)} ms (${gaps.map((g) => g.joins).join(", ")})`,
  );
  if (own) {
    const top = [...serverThreads].filter(([, s]) => s > 0).sort((a, b) => b[1] - a[1]).slice(0, 6);
    console.log(
      `server CPU during a Conductor run: ${(serverCpu / rounds).toFixed(2)} s (${(serverCpu / (tC / 1000)).toFixed(2)} cores on average); by thread: ` +
        top.map(([n, s]) => `${n} ${(s / rounds).toFixed(2)} s`).join(", "),
    );
  }
  const extra = (tC - tIn) / rounds / 1000;
  console.log(
    `orchestration adds ${extra.toFixed(2)} s per recording, mostly fixed (≈ 10 task hand-offs in sequence); for a recording the in-process runner takes T s on, the ratio is ≈ 1 + ${extra.toFixed(2)}/T (≤ 1.10 from T ≈ ${Math.max(0, extra / 0.1).toFixed(0)} s)`,
  );
  for (const j of joinWaits(wf)) console.log(`JOIN ${j.ref} (joinMode ${j.mode}): wait after last forked task ${j.ms} ms`);
  const simple = wf.tasks.filter((t) => t.startTime > 0 && t.scheduledTime > 0 && t.taskType !== "JOIN" && !t.taskType.startsWith("FORK"));
  const waits = simple.map((t) => t.startTime - t.scheduledTime).sort((a, b) => a - b);
  console.log(`queue wait (scheduled → picked up) over ${waits.length} tasks: median ${waits[Math.floor(waits.length / 2)]} ms, max ${waits[waits.length - 1]} ms; poll interval ${config.CONDUCTOR_POLL_INTERVAL_MS} ms, long poll ${config.CONDUCTOR_LONG_POLL_MS} ms`);
  console.log(`workflow ${perRound.at(-1)!.workflow}: ${wf.endTime - wf.startTime} ms from start to end`);
  // the timeline: where the time between tasks goes
  console.log("\ntask                          scheduled  queue wait  running   (ms, from workflow start)");
  for (const t of [...wf.tasks].sort((x, y) => x.scheduledTime - y.scheduledTime || (x.seq ?? 0) - (y.seq ?? 0))) {
    const at = t.scheduledTime - wf.startTime;
    const wait = t.startTime > 0 ? t.startTime - t.scheduledTime : NaN;
    const run = t.endTime > 0 && t.startTime > 0 ? t.endTime - t.startTime : NaN;
    console.log(`${t.referenceTaskName.padEnd(28)}  ${String(at).padStart(9)}  ${String(wait).padStart(10)}  ${String(run).padStart(7)}   ${t.taskType}`);
  }
  console.log("\nin-process step                 started   running   (ms, from run start; last in-process run)");
  for (const s of [...inSteps].sort((x, y) => x.at - y.at)) {
    console.log(`${s.step.padEnd(28)}  ${String(s.at).padStart(9)}  ${String(s.ms).padStart(8)}`);
  }
} finally {
  await conductor.close();
  await inproc.close();
  await own?.stop();
  await rm(dir, { recursive: true, force: true });
}
