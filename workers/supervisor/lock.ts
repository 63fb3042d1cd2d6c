/**
 * One supervisor per work directory (two would fight over its slots). The lock is a file created with O_EXCL
 * holding the owner's pid, host and process start time. A lock whose owner is gone (no
 * such pid, or the pid now belongs to a process that started later: pid reuse) is taken
 * over; a live owner's lock is refused with a message naming it.
 */
import { closeSync, linkSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { procStat } from "./proc-stat.ts";

export const LOCK_FILE = "supervisor.lock";

export interface LockOwner {
  pid: number;
  host: string;
  /** process start time in clock ticks since boot (Linux /proc), null where unknown */
  start_ticks: number | null;
  started_at: string;
  work_dir: string;
}

export class WorkDirLockedError extends Error {
  override readonly name = "WorkDirLockedError";
  constructor(readonly lockPath: string, readonly owner: LockOwner | null, detail: string) {
    super(detail);
  }
}

export interface LockProbe {
  /** true when a process with this pid exists */
  isAlive(pid: number): boolean;
  /** the process's start time in ticks since boot, or null when unknown */
  startTicks(pid: number): number | null;
  host: string;
  pid: number;
  now(): Date;
}

export function isPidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Field 22 of /proc/<pid>/stat; null off Linux or when the process is gone. */
export function processStartTicks(pid: number): number | null {
  const v = Number(procStat(pid)?.[22]);
  return Number.isFinite(v) ? v : null;
}

export const systemLockProbe = (): LockProbe => ({
  isAlive: isPidAlive,
  startTicks: processStartTicks,
  host: os.hostname(),
  pid: process.pid,
  now: () => new Date(),
});

export interface WorkDirLock {
  readonly path: string;
  readonly owner: LockOwner;
  /** the previous owner whose stale lock was taken over, if any */
  readonly tookOverFrom: LockOwner | null;
  /** remove the lock if it is still ours */
  release(): void;
}

function readOwner(file: string): LockOwner | null | "missing" {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return "missing";
    throw err;
  }
  try {
    const o = JSON.parse(text) as Partial<LockOwner>;
    if (typeof o.pid !== "number" || typeof o.host !== "string") return null;
    return { pid: o.pid, host: o.host, start_ticks: o.start_ticks ?? null, started_at: String(o.started_at ?? "?"), work_dir: String(o.work_dir ?? "?") };
  } catch {
    return null; // half-written or garbage: treated as stale
  }
}

/** Is the recorded owner still running? Owners on another host are assumed alive. */
export function ownerAlive(owner: LockOwner, probe: LockProbe): boolean {
  if (owner.host !== probe.host) return true;
  if (owner.pid === probe.pid) return false; // our own pid from an earlier life of this container
  if (!probe.isAlive(owner.pid)) return false;
  if (owner.start_ticks !== null) {
    const now = probe.startTicks(owner.pid);
    if (now !== null && now !== owner.start_ticks) return false; // pid reused by another process
  }
  return true;
}

/**
 * Take the lock of `workDir` (which must exist). Throws WorkDirLockedError when a live
 * supervisor holds it.
 */
export function acquireWorkDirLock(workDir: string, probe: LockProbe = systemLockProbe()): WorkDirLock {
  const file = path.join(workDir, LOCK_FILE);
  const owner: LockOwner = {
    pid: probe.pid,
    host: probe.host,
    start_ticks: probe.startTicks(probe.pid),
    started_at: probe.now().toISOString(),
    work_dir: path.resolve(workDir),
  };
  const body = `${JSON.stringify(owner)}\n`;
  let tookOverFrom: LockOwner | null = null;

  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      // write to a private file, then link it into place: the lock never exists half-written
      const tmp = `${file}.${probe.pid}.tmp`;
      const fd = openSync(tmp, "w");
      try {
        writeSync(fd, body);
      } finally {
        closeSync(fd);
      }
      try {
        linkSync(tmp, file); // fails with EEXIST when someone holds it
      } finally {
        unlinkSync(tmp);
      }
      return {
        path: file,
        owner,
        tookOverFrom,
        release() {
          const cur = readOwner(file);
          if (cur !== "missing" && cur !== null && cur.pid === owner.pid && cur.host === owner.host && cur.started_at === owner.started_at) {
            try {
              unlinkSync(file);
            } catch {
              /* already gone */
            }
          }
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const existing = readOwner(file);
    if (existing === "missing") continue; // released meanwhile: try again
    if (existing !== null && ownerAlive(existing, probe)) {
      const where = existing.host === probe.host ? `pid ${existing.pid}` : `pid ${existing.pid} on host ${existing.host}`;
      throw new WorkDirLockedError(
        file,
        existing,
        `another supervisor (${where}, started ${existing.started_at}) is using the work directory ${path.resolve(workDir)}; ` +
          `stop it first or give this one another WORK_DIR (lock file: ${file})`,
      );
    }
    // stale: move it aside, then check we moved the stale one and not a fresh lock that replaced it
    const aside = `${file}.stale.${probe.pid}`;
    try {
      renameSync(file, aside);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw err;
    }
    const moved = readOwner(aside);
    const same = moved !== "missing" && JSON.stringify(moved) === JSON.stringify(existing);
    if (!same && moved !== "missing" && moved !== null && ownerAlive(moved, probe)) {
      // we raced another supervisor that had just taken over: put its lock back
      try {
        linkSync(aside, file);
      } catch {
        /* a third one is there now; the next round decides */
      }
    } else if (existing !== null) {
      tookOverFrom = existing;
    }
    try {
      unlinkSync(aside);
    } catch {
      /* gone */
    }
  }
  throw new WorkDirLockedError(file, null, `could not take the supervisor lock ${file}: it keeps changing (several supervisors starting at once?)`);
}
