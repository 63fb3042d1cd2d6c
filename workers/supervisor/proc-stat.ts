/** Reading /proc/<pid>/stat (Linux): fields by their number in proc(5), null when unreadable. */
import { readdirSync, readFileSync } from "node:fs";

/**
 * The stat fields of a process ("self" for this one), indexed so that `fields[n]` is field n
 * of proc(5) (1 = pid, 14 = utime, 22 = starttime); null off Linux or when the process is gone.
 */
export function procStat(pid: number | "self", thread?: number): string[] | null {
  try {
    const stat = readFileSync(thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`, "utf8");
    // the command name (field 2) may contain spaces and parentheses: split after the last ')'
    const close = stat.lastIndexOf(")");
    return [
      "",
      stat.slice(0, stat.indexOf(" ")),
      stat.slice(stat.indexOf("(") + 1, close),
      ...stat
        .slice(close + 2)
        .trim()
        .split(" "),
    ];
  } catch {
    return null;
  }
}

/** USER_HZ: the unit of the CPU-time fields (100 on Linux). */
const TICKS_PER_SECOND = 100;

/** CPU seconds in stat fields `a` and `b` (14–15 own, 16–17 waited-for children). */
const seconds = (f: string[], a = 14, b = 15): number => (Number(f[a]) + Number(f[b])) / TICKS_PER_SECOND;

/**
 * CPU seconds from stat: the process's own (utime + stime, fields 14–15) or those of its
 * waited-for children (cutime + cstime, fields 16–17); NaN when unreadable.
 */
export function cpuSeconds(pid: number | "self", which: "own" | "children" = "own"): number {
  const f = procStat(pid);
  if (!f) return Number.NaN;
  return which === "own" ? seconds(f) : seconds(f, 16, 17);
}

/**
 * CPU seconds per thread group of a process: threads named alike (digits dropped, so
 * `http-nio-8080-exec-3` and `-exec-7` count together), for telling where a server's time
 * goes. Empty when unreadable.
 */
export function threadCpuSeconds(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    const f = procStat(pid, Number(tid));
    if (!f) continue;
    const name = f[2]!.replace(/\d+/g, "#");
    out.set(name, (out.get(name) ?? 0) + seconds(f));
  }
  return out;
}

/**
 * CPU seconds of every process on the machine that can be read, summed by command name
 * (`pocketsphinx_batch`, `java`, `node`…), with pid-keyed detail so two snapshots can be
 * subtracted (see cpuByCommandSince). Linux only; empty elsewhere.
 */
export function cpuSnapshot(): Map<number, { comm: string; secs: number }> {
  const out = new Map<number, { comm: string; secs: number }>();
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((p) => /^\d+$/.test(p));
  } catch {
    return out;
  }
  for (const p of pids) {
    const f = procStat(Number(p));
    if (!f) continue;
    out.set(Number(p), { comm: f[2]!, secs: seconds(f) });
  }
  return out;
}

/**
 * CPU seconds used since `before`, by command name. Processes that started and ended in
 * between are missed here (their time lands in the parent's children counters).
 */
export function cpuByCommandSince(before: Map<number, { comm: string; secs: number }>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [pid, now] of cpuSnapshot()) {
    const was = before.get(pid);
    const d = now.secs - (was && was.comm === now.comm ? was.secs : 0);
    if (d > 0) out.set(now.comm, (out.get(now.comm) ?? 0) + d);
  }
  return out;
}
