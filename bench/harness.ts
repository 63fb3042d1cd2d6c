/** Shared by the benches: a Conductor server to use, the fixture, staging a recording, Conductor worker processes. */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { FileManifest, type PipelineInput } from "../pipeline/contracts/index.ts";
import { stageManifest } from "../workers/inprocess/stage.ts";
import { NODE_MEMORY_FLAGS } from "../workers/node-flags.ts";
import type { createLocalStorage } from "../adapters/storage/local.ts";

export async function conductorUrl(configured: string, log: (s: string) => void): Promise<{ url: string; stop?: () => Promise<void> }> {
  const { defaultStateDir, isConductorHealthy, startConductor } = await import("../scripts/conductor.ts");
  if (await isConductorHealthy(configured)) return { url: configured };
  // a server started by `npm run conductor:start` / services:start is reused, and left running
  const stateFile = path.join(defaultStateDir(), "server.json");
  if (existsSync(stateFile)) {
    const url = (JSON.parse(readFileSync(stateFile, "utf8")) as { url: string }).url;
    if (await isConductorHealthy(url)) return { url };
  }
  log(`no Conductor at ${configured}: starting one for this benchmark`);
  const c = await startConductor({ log, stateDir: path.join(os.tmpdir(), `bench-conductor-${process.pid}`), fresh: true });
  return { url: c.url, stop: () => c.stop() };
}

/** The 3-track fixture meeting (scripts/build-fixtures.ts, built when missing). */
export async function fixtureManifest(): Promise<string> {
  const { buildFixtures, defaultFixtureDir } = await import("../scripts/build-fixtures.ts");
  const file = path.join(defaultFixtureDir(), "manifest.json");
  return existsSync(file) ? file : (await buildFixtures(defaultFixtureDir())).manifestPath;
}

export async function stageRecording(storage: ReturnType<typeof createLocalStorage>, manifestFile: string, recordingId: string, namespace: string): Promise<PipelineInput> {
  const manifest = FileManifest.parse(JSON.parse(readFileSync(manifestFile, "utf8")));
  return stageManifest(manifest, storage, recordingId, path.dirname(manifestFile), { namespace });
}

/** `trackscribe workers --engine conductor` in a process of its own; resolves once it polls. */
export async function startConductorWorkers(env: NodeJS.ProcessEnv, extraArgs: string[] = []): Promise<ChildProcess> {
  const cli = fileURLToPath(new URL("../bin/trackscribe.mjs", import.meta.url));
  const child = spawn(process.execPath, [...NODE_MEMORY_FLAGS, cli, "workers", "--engine", "conductor", ...extraArgs], { env, stdio: ["ignore", "pipe", "pipe"] });
  let tail = "";
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the Conductor worker process did not start polling within 120 s: ${tail}`)), 120_000);
    const onData = (b: Buffer): void => {
      tail = (tail + b.toString()).slice(-8000);
      if (tail.includes("conductor worker host polling")) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the Conductor worker process exited with ${code}: ${tail}`));
    });
  });
  try {
    await ready;
  } catch (err) {
    child.kill("SIGKILL"); // never leave a poller behind
    throw err;
  }
  return child;
}

