/** Spawns a supervisor process for the tests and follows its JSON log lines. */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export interface LogLine {
  msg?: string;
  level?: number;
  time?: number;
  [k: string]: unknown;
}

export interface Proc {
  child: ChildProcess;
  pid: number;
  lines: LogLine[];
  /** non-JSON stderr text */
  text: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitFor(pred: (l: LogLine) => boolean, timeoutMs?: number, what?: string): Promise<LogLine>;
}

export function startProcess(args: string[], env: NodeJS.ProcessEnv, echo = process.env.TEST_ECHO === "1"): Proc {
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  const lines: LogLine[] = [];
  const text: string[] = [];
  const waiters: { pred: (l: LogLine) => boolean; resolve(l: LogLine): void }[] = [];
  let buf = "";
  const onData = (c: Buffer): void => {
    buf += c.toString();
    const parts = buf.split("\n");
    buf = parts.pop() ?? "";
    for (const p of parts) {
      if (echo) process.stderr.write(`  ${p}\n`);
      let l: LogLine | null = null;
      try {
        l = JSON.parse(p) as LogLine;
      } catch {
        text.push(p);
      }
      if (!l) continue;
      lines.push(l);
      for (const w of [...waiters]) {
        if (w.pred(l)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(l);
        }
      }
    }
  };
  child.stderr!.on("data", onData);
  child.stdout!.on("data", onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once("exit", (code, signal) => r({ code, signal })));
  return {
    child,
    pid: child.pid!,
    lines,
    text,
    exited,
    waitFor(pred, timeoutMs = 20_000, what = "log line") {
      const found = lines.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`timed out waiting for ${what}; last lines:\n${lines.slice(-15).map((l) => JSON.stringify(l)).join("\n")}\n${text.slice(-10).join("\n")}`)), timeoutMs);
        waiters.push({
          pred,
          resolve: (l) => {
            clearTimeout(t);
            resolve(l);
          },
        });
      });
    },
  };
}

export function readJsonLines<T>(file: string): T[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as T);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function waitUntil(probe: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
