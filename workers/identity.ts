/**
 * Worker identity (an old build still polling must be traceable): every worker process has an id `host/slot/pid` and a build id
 * `<package version>+<git commit>`; every task output records both.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export interface BuildInfo {
  version: string;
  commit: string;
  build: string;
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** Reads package.json and the git commit (or BUILD_COMMIT, set in the Docker image). */
export function buildInfo(env: Record<string, string | undefined> = process.env): BuildInfo {
  const pkg = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as { version: string };
  let commit = env.BUILD_COMMIT ?? "";
  if (!commit) {
    try {
      commit = execFileSync("git", ["rev-parse", "--short=12", "HEAD"], { cwd: root, stdio: ["ignore", "pipe", "ignore"] })
        .toString()
        .trim();
    } catch {
      commit = "unknown";
    }
  }
  return { version: pkg.version, commit, build: `${pkg.version}+${commit}` };
}

export interface WorkerIdentity {
  worker_id: string;
  build: string;
  host: string;
  slot: number;
  pid: number;
}

export function workerIdentity(slot: number, build: string, host = os.hostname(), pid = process.pid): WorkerIdentity {
  return { worker_id: `${host}/${slot}/${pid}`, build, host, slot, pid };
}
