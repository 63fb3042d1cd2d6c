/**
 * Wiring of the supervisor process (`trackscribe workers --engine E -j N`): takes the
 * work-directory lock, clears temporary files left by an earlier supervisor's children,
 * forks N children running `child-main.ts`, turns SIGTERM/SIGINT into a drain, and
 * releases the lock at the end. Decisions live in supervisor-machine.ts; this file only connects.
 */
import { fork } from "node:child_process";
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { rm } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Logger } from "pino";
import { NODE_MEMORY_FLAGS } from "../node-flags.ts";
import type { Config } from "../../pipeline/config.ts";
import { acquireWorkDirLock, systemLockProbe, type LockProbe } from "./lock.ts";
import { CHILD_ENV } from "./messages.ts";
import type { SupervisorPolicy } from "./supervisor-machine.ts";
import { startSupervisor, type Clock, type SpawnChild, type Supervisor } from "./supervisor.ts";

export const CHILD_MAIN = fileURLToPath(new URL("./child-main.ts", import.meta.url));
export const DEFAULT_DRAIN_GRACE_MS = 3000;

/** The directory holding slot `slot`'s private files (its children's WORK_DIR). */
export const slotDir = (workDir: string, slot: number): string => path.join(path.resolve(workDir), "slots", String(slot));

export function policyFromConfig(config: Config, slots: number): SupervisorPolicy {
  return {
    slots,
    drainMs: config.DRAIN_TIMEOUT_SECONDS * 1000,
    drainGraceMs: DEFAULT_DRAIN_GRACE_MS,
    healthyAfterMs: config.SUPERVISOR_HEALTHY_SECONDS * 1000,
    backoffScale: config.SUPERVISOR_BACKOFF_SCALE,
  };
}

export interface ForkOptions {
  /** the child's entry module (TypeScript, run with tsx) */
  module: string;
  args: string[];
  /** environment the children start from (they build their own config from it) */
  env: NodeJS.ProcessEnv;
  workDir: string;
  /** the pid that goes into every child's worker id */
  idPid: number;
}

/** Forks real worker children: `node --import tsx <module> <args>` with an IPC channel. */
export function forkSpawner(o: ForkOptions): SpawnChild {
  const tsx = import.meta.resolve("tsx");
  return (slot, hooks) => {
    const dir = slotDir(o.workDir, slot);
    mkdirSync(dir, { recursive: true });
    const child = fork(o.module, o.args, {
      execArgv: [...NODE_MEMORY_FLAGS, "--import", tsx],
      env: { ...o.env, [CHILD_ENV.slot]: String(slot), [CHILD_ENV.idPid]: String(o.idPid), [CHILD_ENV.workDir]: dir },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      serialization: "json",
    });
    if (child.pid === undefined) {
      child.on("error", () => {});
      throw new Error(`could not start ${o.module}`);
    }
    child.on("error", () => {}); // send/kill failures surface as the exit event
    child.on("message", (m) => hooks.onMessage(m));
    child.on("exit", (code, signal) => hooks.onExit(code, signal));
    const pid = child.pid;
    return {
      pid,
      send(msg) {
        if (child.connected) child.send(msg, (err) => void err);
      },
      kill(signal) {
        child.kill(signal);
      },
    };
  };
}

/** Remove leftovers of children of an earlier (dead) supervisor; the lock proves none is alive. */
export function clearSlotDirs(workDir: string): string[] {
  const root = path.join(path.resolve(workDir), "slots");
  let names: string[] = [];
  try {
    names = readdirSync(root);
  } catch {
    return [];
  }
  for (const n of names) rmSync(path.join(root, n), { recursive: true, force: true });
  return names;
}

export interface SupervisorProcessOptions {
  config: Config;
  slots: number;
  log: Logger;
  /** child entry and its arguments (default: child-main.ts with `--engine`) */
  child: { module: string; args: string[] };
  env?: NodeJS.ProcessEnv;
  /** overrides of the policy built from config */
  policy?: Partial<SupervisorPolicy>;
  probe?: LockProbe;
  clock?: Clock;
  /** the process to take signals from (default: this one) */
  signals?: Pick<NodeJS.Process, "on" | "off">;
  onStarted?(s: Supervisor): void;
}

/** Run the supervisor until it stops; resolves with the exit code. Throws WorkDirLockedError. */
export async function runSupervisorProcess(o: SupervisorProcessOptions): Promise<number> {
  const workDir = path.resolve(o.config.WORK_DIR);
  mkdirSync(workDir, { recursive: true });
  const probe = o.probe ?? systemLockProbe();
  const lock = acquireWorkDirLock(workDir, probe);
  const signals = o.signals ?? process;
  const log = o.log;
  let onSignal: ((sig: NodeJS.Signals) => void) | undefined;
  try {
    if (lock.tookOverFrom) {
      log.warn({ lock: lock.path, previous_owner: lock.tookOverFrom }, "took over the lock of a supervisor that is no longer running");
    }
    const cleared = clearSlotDirs(workDir);
    if (cleared.length > 0) log.info({ slots: cleared }, "removed temporary files left by earlier worker children");
    const policy = { ...policyFromConfig(o.config, o.slots), ...o.policy };
    const sup = startSupervisor({
      policy,
      spawnChild: forkSpawner({ module: o.child.module, args: o.child.args, env: o.env ?? process.env, workDir, idPid: probe.pid }),
      cleanupSlot: async (slot) => {
        await rm(slotDir(workDir, slot), { recursive: true, force: true });
      },
      log,
      ...(o.clock ? { clock: o.clock } : {}),
    });
    onSignal = (sig) => sup.shutdown(sig);
    signals.on("SIGTERM", onSignal);
    signals.on("SIGINT", onSignal);
    o.onStarted?.(sup);
    return await sup.done;
  } finally {
    if (onSignal) {
      signals.off("SIGTERM", onSignal);
      signals.off("SIGINT", onSignal);
    }
    lock.release();
  }
}
