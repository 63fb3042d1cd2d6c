/** Small helpers shared by the service scripts (conductor, services, tests, demo). */
import { spawnSync } from "node:child_process";
import { createServer } from "node:net";

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function isAlive(pid: number | undefined): boolean {
  if (!pid || !Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Retry `probe` with exponential back-off (capped) until it returns true or the deadline passes. */
export async function waitUntil(
  probe: () => Promise<boolean>,
  opts: { timeoutMs: number; what: string; initialDelayMs?: number; maxDelayMs?: number; onWait?: (elapsedMs: number) => void },
): Promise<void> {
  const start = Date.now();
  let delay = opts.initialDelayMs ?? 250;
  for (;;) {
    try {
      if (await probe()) return;
    } catch {
      /* not up yet */
    }
    const elapsed = Date.now() - start;
    if (elapsed > opts.timeoutMs) throw new Error(`${opts.what} did not become ready within ${Math.round(opts.timeoutMs / 1000)} s`);
    opts.onWait?.(elapsed);
    await sleep(Math.min(delay, Math.max(50, opts.timeoutMs - elapsed)));
    delay = Math.min(delay * 2, opts.maxDelayMs ?? 2000);
  }
}

export function run(cmd: string, args: string[], opts: { cwd?: string } = {}): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { cwd: opts.cwd, encoding: "utf8" });
  return { ok: r.status === 0, out: `${r.stdout ?? ""}${r.stderr ?? ""}` };
}
