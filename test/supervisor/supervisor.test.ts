/**
 * The supervisor with real processes and real signals (runSupervisorProcess + the fake
 * worker child, which uses the real child runtime): kill -9 restarts with the same worker
 * id and growing delays, SIGTERM drains in-flight tasks, the drain deadline force-kills
 * and names the cut-off tasks, the work-directory lock refuses a second supervisor and
 * is taken over from a dead one, and dead children's temporary files are removed.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { NODE_MEMORY_FLAGS } from "../../workers/node-flags.ts";
import { alive, readJsonLines, sleep, startProcess, waitUntil, type Proc } from "./harness.ts";

interface Start {
  slot: number;
  pid: number;
  worker_id: string;
  work_dir: string;
  at: number;
}

const started: Proc[] = [];
const dirs: string[] = [];
after(() => {
  for (const p of started) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function setup(extra: Record<string, string> = {}) {
  const work = mkdtempSync(path.join(os.tmpdir(), "sup-work-"));
  const results = mkdtempSync(path.join(os.tmpdir(), "sup-results-"));
  dirs.push(work, results);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    WORK_DIR: work,
    FAKE_RESULTS_DIR: results,
    SUPERVISOR_BACKOFF_SCALE: "0.1",
    SUPERVISOR_HEALTHY_SECONDS: "60",
    DRAIN_TIMEOUT_SECONDS: "10",
    LOG_LEVEL: "info",
    ...extra,
  };
  const starts = (): Start[] => readJsonLines<Start>(path.join(results, "starts.jsonl"));
  const supervisor = (slots: number, grace?: number): Proc => {
    const p = startProcess(["--import", "tsx", "test/supervisor/fake-supervisor.ts", String(slots), ...(grace !== undefined ? [String(grace)] : [])], env);
    started.push(p);
    return p;
  };
  return { work, results, env, starts, supervisor };
}

const isMsg = (msg: string, extra: (l: Record<string, unknown>) => boolean = () => true) => (l: Record<string, unknown>) => l.msg === msg && extra(l);

test("kill -9 of a child: restarted in the same slot with the same worker id, after growing delays; its temporary files are removed", async () => {
  const { work, starts, supervisor } = setup();
  const sup = supervisor(2);
  await sup.waitFor(isMsg("worker child ready", (l) => l.slot === 0), 30_000, "slot 0 ready");
  await sup.waitFor(isMsg("worker child ready", (l) => l.slot === 1), 30_000, "slot 1 ready");
  // forked with the V8 flags of every trackscribe process (workers/node-flags.ts)
  const cmdline = readFileSync(`/proc/${starts().find((s) => s.slot === 0)!.pid}/cmdline`, "utf8").split("\0");
  for (const flag of NODE_MEMORY_FLAGS) assert.ok(cmdline.includes(flag), `worker child command line ${cmdline.join(" ")}`);
  const host = os.hostname();
  const expectedDelays = [100, 200, 400, 800]; // 1, 2, 4, 8 s × SUPERVISOR_BACKOFF_SCALE 0.1
  const gaps: number[] = [];
  for (let k = 0; k < expectedDelays.length; k++) {
    const slot0 = starts().filter((s) => s.slot === 0);
    const victim = slot0.at(-1)!;
    assert.ok(existsSync(path.join(work, "slots", "0", "scratch", `tmp-${victim.pid}`)), "the child's scratch file exists while it runs");
    const killedAt = Date.now();
    process.kill(victim.pid, "SIGKILL");
    const exit = await sup.waitFor(isMsg("worker child exited", (l) => l.pid === victim.pid), 10_000, `exit log of ${victim.pid}`);
    assert.equal(exit.slot, 0);
    assert.equal(exit.signal, "SIGKILL");
    assert.equal(exit.code, null);
    assert.equal(exit.worker_id, `${host}/0/${sup.pid}`);
    assert.equal(exit.restart_in_ms, expectedDelays[k]);
    const respawn = await sup.waitFor(isMsg("worker child started", (l) => l.slot === 0 && l.restarts === k + 1), 10_000, `restart ${k + 1} of slot 0`);
    // supervisor's own clock: from logging the exit to forking the replacement
    const gap = Number(respawn.time) - Number(exit.time);
    gaps.push(gap);
    assert.ok(gap >= expectedDelays[k]! && gap < expectedDelays[k]! + 1500, `restart ${k + 1} forked ${gap} ms after the exit; back-off is ${expectedDelays[k]} ms`);
    assert.ok(Date.now() - killedAt >= expectedDelays[k]!);
    await waitUntil(() => starts().filter((s) => s.slot === 0).length === k + 2, 20_000, `restart ${k + 1} of slot 0 running`);
    const next = starts().filter((s) => s.slot === 0).at(-1)!;
    assert.equal(next.pid, respawn.pid);
    assert.ok(!existsSync(path.join(work, "slots", "0", "scratch", `tmp-${victim.pid}`)), "the dead child's scratch file was removed");
    await sup.waitFor(isMsg("worker child ready", (l) => l.pid === next.pid), 30_000, "restarted child ready");
  }
  process.stderr.write(`  exit → re-fork gaps (ms): ${gaps.join(", ")} for back-offs ${expectedDelays.join(", ")}\n`);
  assert.ok(gaps[3]! > gaps[1]! && gaps[2]! > gaps[0]!, `delays grow: ${gaps.join(", ")}`);
  const all = starts();
  assert.deepEqual(
    [...new Set(all.filter((s) => s.slot === 0).map((s) => s.worker_id))],
    [`${host}/0/${sup.pid}`],
    "every incarnation of slot 0 has the same worker id",
  );
  assert.equal(new Set(all.filter((s) => s.slot === 0).map((s) => s.pid)).size, 5, "five different processes");
  assert.deepEqual(
    all.filter((s) => s.slot === 1).map((s) => s.worker_id),
    [`${host}/1/${sup.pid}`],
    "slot 1 was never restarted",
  );
  assert.ok(all.every((s) => s.work_dir === path.join(work, "slots", String(s.slot))), "each child works in its slot's directory");
  const lastPids = [all.filter((s) => s.slot === 0).at(-1)!.pid, all.filter((s) => s.slot === 1).at(-1)!.pid];

  sup.child.kill("SIGTERM");
  const end = await sup.exited;
  assert.equal(end.code, 0);
  for (const pid of lastPids) assert.equal(alive(pid), false);
  assert.ok(!existsSync(path.join(work, "supervisor.lock")), "lock released");
  assert.deepEqual(readdirSync(path.join(work, "slots")), [], "no temporary files left");
});

test("SIGTERM during running tasks: children stop polling, finish and report, then the supervisor exits 0", async () => {
  const { results, supervisor } = setup({ FAKE_TASK_MS: "6000" });
  const sup = supervisor(2);
  const ready = await Promise.all([0, 1].map((slot) => sup.waitFor(isMsg("worker child ready", (l) => l.slot === slot), 30_000)));
  const taskFiles = ready.map((r) => path.join(results, `task-${r.slot}-${r.pid}.json`));
  assert.ok(taskFiles.every((f) => !existsSync(f)), "tasks are still running when the signal arrives");
  const termAt = Date.now();
  sup.child.kill("SIGTERM");
  const end = await sup.exited;
  const endAt = Date.now();
  assert.equal(end.code, 0);
  for (const f of taskFiles) {
    assert.ok(existsSync(f), `${path.basename(f)} reported its result before the supervisor exited`);
    const r = JSON.parse(readFileSync(f, "utf8")) as { at: number };
    assert.ok(r.at > termAt && r.at <= endAt);
  }
  assert.equal(sup.lines.filter((l) => l.msg === "worker child drained").length, 2);
  assert.equal(sup.lines.filter((l) => l.msg === "force-killing worker child").length, 0);
  const stopped = sup.lines.find((l) => l.msg === "supervisor stopped");
  assert.deepEqual(stopped?.cut_off, []);
  assert.equal(sup.lines.filter((l) => l.msg === "worker child started").length, 2, "nothing restarted during the drain");
});

test("drain deadline: a child that does not finish is SIGKILLed and its in-flight task logged as cut off", async () => {
  const { results, supervisor } = setup({ FAKE_TASK_MS: "60000", FAKE_STUBBORN: "1", DRAIN_TIMEOUT_SECONDS: "1" });
  const sup = supervisor(1, 300);
  const ready = await sup.waitFor(isMsg("worker child ready"), 30_000);
  await sleep(500); // the child reports its in-flight task ids every 200 ms
  const t0 = Date.now();
  sup.child.kill("SIGTERM");
  const end = await sup.exited;
  const took = Date.now() - t0;
  assert.equal(end.code, 1, "exit code says tasks were cut off");
  assert.ok(took >= 1300 && took < 8000, `force-killed after ${took} ms (drain 1 s + grace 0.3 s)`);
  const task = `task-0-${ready.pid}`;
  const kill = sup.lines.find((l) => l.msg === "force-killing worker child");
  assert.ok(kill, "the force kill is logged");
  assert.equal(kill.reason, "drain deadline passed");
  assert.deepEqual(kill.cut_off, [task]);
  assert.deepEqual(sup.lines.find((l) => l.msg === "supervisor stopped")?.cut_off, [task]);
  assert.equal(sup.lines.find((l) => l.msg === "worker child exited")?.signal, "SIGKILL");
  assert.ok(!existsSync(path.join(results, `${task}.json`)));
  assert.equal(alive(Number(ready.pid)), false);
});

test("a second supervisor on the same work directory is refused; a dead supervisor's lock is taken over", async () => {
  const { work, starts, supervisor } = setup();
  const a = supervisor(1);
  await a.waitFor(isMsg("worker child ready"), 30_000);

  const b = supervisor(1);
  const bEnd = await b.exited;
  assert.equal(bEnd.code, 2);
  const msg = b.text.join("\n");
  assert.match(msg, new RegExp(`another supervisor \\(pid ${a.pid}, started [^)]+\\) is using the work directory ${work.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
  assert.equal(starts().length, 1, "the refused supervisor started no child");

  // the owner dies without cleaning up; its orphaned child notices and exits
  const orphan = starts()[0]!;
  a.child.kill("SIGKILL");
  await a.exited;
  await waitUntil(() => !alive(orphan.pid), 15_000, "the orphaned child to exit");
  assert.ok(existsSync(path.join(work, "supervisor.lock")), "the dead supervisor's lock is still there");
  assert.ok(existsSync(path.join(work, "slots", "0", "scratch", `tmp-${orphan.pid}`)), "and so are its child's temporary files");

  const c = supervisor(1);
  const took = await c.waitFor(isMsg("took over the lock of a supervisor that is no longer running"), 30_000);
  assert.equal((took.previous_owner as { pid: number }).pid, a.pid);
  await c.waitFor(isMsg("worker child ready"), 30_000);
  const lock = JSON.parse(readFileSync(path.join(work, "supervisor.lock"), "utf8")) as { pid: number };
  assert.equal(lock.pid, c.pid);
  assert.ok(!existsSync(path.join(work, "slots", "0", "scratch", `tmp-${orphan.pid}`)), "leftovers of the dead supervisor's child were removed");
  assert.equal(starts().at(-1)!.worker_id, `${os.hostname()}/0/${c.pid}`);
  c.child.kill("SIGINT");
  assert.equal((await c.exited).code, 0);
});

test("the real command refuses a second supervisor: `trackscribe workers -j` exits 75 with a clear message", async () => {
  const { work, env, supervisor } = setup();
  const a = supervisor(1);
  await a.waitFor(isMsg("worker child ready"), 30_000);
  const cli = startProcess(["bin/trackscribe.mjs", "workers", "--engine", "bullmq", "-j", "2"], env);
  started.push(cli);
  const end = await cli.exited;
  assert.equal(end.code, 75);
  const text = cli.text.join("\n");
  assert.match(text, new RegExp(`^trackscribe: another supervisor \\(pid ${a.pid}, started `, "m"));
  assert.ok(text.includes(`using the work directory ${work}`));
  assert.ok(!text.includes("    at "), "no stack trace");
  a.child.kill("SIGTERM");
  assert.equal((await a.exited).code, 0);
});
