import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { cpuSeconds, procStat, threadCpuSeconds } from "../../workers/supervisor/proc-stat.ts";

test("procStat numbers fields as proc(5) does, also when the command name has spaces and parentheses", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "ts-procstat-"));
  const exe = path.join(dir, "odd (name) x");
  symlinkSync(process.execPath, exe);
  const child = spawn(exe, ["-e", "setTimeout(() => {}, 5000)"], { stdio: "ignore" });
  try {
    await new Promise((r) => child.once("spawn", r));
    const f = procStat(child.pid!);
    assert.ok(f, "the child's stat is readable");
    assert.equal(f[1], String(child.pid));
    assert.equal(f[2], "odd (name) x");
    assert.match(f[3]!, /^[RSD]$/, "field 3 is the state");
    assert.equal(f[4], String(process.pid), "field 4 is the parent pid");
  } finally {
    child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
});

test("cpuSeconds: own time grows with work; children's time counts waited-for children; a missing process is NaN", () => {
  const own0 = cpuSeconds("self");
  const until = performance.now() + 300;
  while (performance.now() < until); // busy for 0.3 s
  assert.ok(cpuSeconds("self") - own0 >= 0.1, "own CPU time grew");
  const kids0 = cpuSeconds("self", "children");
  spawnSync(process.execPath, ["-e", "const t = Date.now() + 400; while (Date.now() < t);"]);
  assert.ok(cpuSeconds("self", "children") - kids0 >= 0.2, "a finished child's CPU time is counted");
  assert.ok(Number.isNaN(cpuSeconds(2 ** 22 + 12345)));
  assert.equal(procStat(2 ** 22 + 12345), null);
});

test("threadCpuSeconds groups a process's threads by name and adds up to the process's own time", () => {
  const end = Date.now() + 300;
  while (Date.now() < end); // some CPU on the main thread
  const threads = threadCpuSeconds(process.pid);
  const total = [...threads.values()].reduce((a, b) => a + b, 0);
  const own = cpuSeconds(process.pid);
  assert.ok(threads.size >= 1);
  for (const name of threads.keys()) assert.doesNotMatch(name, /\d/, "digits are folded so numbered threads count together");
  assert.ok(total > 0.2 && total <= own + 0.05, `threads ${total} s against the process's ${own} s`);
  assert.equal(threadCpuSeconds(2 ** 22 + 12345).size, 0, "a missing process has no threads");
});
