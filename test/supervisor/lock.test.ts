import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { acquireWorkDirLock, isPidAlive, LOCK_FILE, processStartTicks, systemLockProbe, WorkDirLockedError, type LockProbe } from "../../workers/supervisor/lock.ts";

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const tmp = (): string => {
  const d = mkdtempSync(path.join(os.tmpdir(), "lock-"));
  dirs.push(d);
  return d;
};

/** A pid that certainly belonged to a process that has exited. */
const deadPid = (): number => {
  const r = spawnSync("sh", ["-c", "echo $$"], { encoding: "utf8" });
  const pid = Number(r.stdout.trim());
  assert.equal(isPidAlive(pid), false);
  return pid;
};

test("the lock records its owner and is released only by it", () => {
  const dir = tmp();
  const lock = acquireWorkDirLock(dir);
  const owner = JSON.parse(readFileSync(path.join(dir, LOCK_FILE), "utf8")) as { pid: number; host: string; start_ticks: number | null };
  assert.equal(owner.pid, process.pid);
  assert.equal(owner.host, os.hostname());
  assert.equal(owner.start_ticks, processStartTicks(process.pid));
  assert.equal(lock.tookOverFrom, null);
  lock.release();
  assert.deepEqual(readdirSync(dir), [], "no lock and no temporary files left");
});

test("a live owner's lock is refused with a message naming it", () => {
  const dir = tmp();
  // the owner is this test process; the second comer pretends to be another pid
  acquireWorkDirLock(dir);
  const other: LockProbe = { ...systemLockProbe(), pid: 999_999_1 };
  assert.throws(
    () => acquireWorkDirLock(dir, other),
    (e: unknown) =>
      e instanceof WorkDirLockedError &&
      e.owner?.pid === process.pid &&
      e.message.includes(`another supervisor (pid ${process.pid}, started`) &&
      e.message.includes(path.resolve(dir)),
  );
});

test("a lock whose pid is dead is taken over", () => {
  const dir = tmp();
  const pid = deadPid();
  writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid, host: os.hostname(), start_ticks: null, started_at: "earlier", work_dir: dir }));
  const lock = acquireWorkDirLock(dir);
  assert.equal(lock.tookOverFrom?.pid, pid);
  assert.equal((JSON.parse(readFileSync(lock.path, "utf8")) as { pid: number }).pid, process.pid);
  lock.release();
});

test("a lock whose pid was reused by a younger process is taken over", () => {
  const dir = tmp();
  // pid 1 is alive, but it did not start at the recorded time
  const realTicks = processStartTicks(1);
  writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid: 1, host: os.hostname(), start_ticks: (realTicks ?? 0) + 12345, started_at: "x", work_dir: dir }));
  const probe: LockProbe = { ...systemLockProbe(), startTicks: (p) => (p === 1 ? (realTicks ?? 7) : processStartTicks(p)) };
  const lock = acquireWorkDirLock(dir, probe);
  assert.equal(lock.tookOverFrom?.pid, 1);
  lock.release();
});

test("a garbage lock file is taken over; a lock from another host is respected", () => {
  const dir = tmp();
  writeFileSync(path.join(dir, LOCK_FILE), "{not json");
  acquireWorkDirLock(dir).release();
  writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid: deadPid(), host: "other-host", start_ticks: null, started_at: "x", work_dir: dir }));
  assert.throws(() => acquireWorkDirLock(dir), /on host other-host/);
});
