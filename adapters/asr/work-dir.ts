/**
 * The decoder pool's working directory: one per process under the temp root, named with
 * the process id (`trackscribe-asr-<pid>-…`), holding the segment audio, the decoders'
 * pipes and CTM files. A process that died (kill -9, a crash) leaves its directory behind;
 * the next pool to start on the machine removes the ones whose process no longer exists.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import path from "node:path";

export const POOL_DIR_PREFIX = "trackscribe-asr-";

/** Is a process with this id alive (ours or someone else's)? */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM"; // alive, someone else's
  }
}

/** Remove pool directories under `root` left by processes that no longer exist. */
export function sweepStaleDirs(root: string): void {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return;
  }
  const pattern = new RegExp(`^${POOL_DIR_PREFIX}(\\d+)-`);
  for (const name of names) {
    const m = pattern.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || processAlive(pid)) continue;
    rmSync(path.join(root, name), { recursive: true, force: true });
  }
}

/** Create this process's pool directory under `root`, sweeping stale ones first. */
export function createPoolDir(root: string): string {
  mkdirSync(root, { recursive: true });
  sweepStaleDirs(root);
  return mkdtempSync(path.join(root, `${POOL_DIR_PREFIX}${process.pid}-`));
}
