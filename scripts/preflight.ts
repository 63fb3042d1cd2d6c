/**
 * Checks that this machine has the system tools `npm run demo` or `npm test` runs (ffmpeg,
 * sox, pocketsphinx and its model, Java for Conductor, Maven to fetch its jar; for tests also
 * espeak-ng, pocketsphinx-testdata and Chromium for the web e2e test). As root on Debian/Ubuntu it installs what is missing
 * with apt (`apt-get update` first); otherwise it prints the exact command and fails.
 * The decisions are in preflight-plan.ts; this file only looks at the machine and runs apt.
 *
 *   npm run preflight -- --for demo|test [--no-conductor]    # exit 0: ready
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { EnvSchema } from "../pipeline/config.ts";
import { LIBRIVOX } from "./build-sample.ts";
import { cacheDir, CONDUCTOR_VERSION } from "./conductor.ts";
import {
  APT_UPDATE,
  describe,
  parseAptPolicy,
  parseJavaMajor,
  planInstall,
  requirements,
  type Needs,
  type Purpose,
  type Requirement,
} from "./preflight-plan.ts";

export interface PreflightOptions {
  purpose: Purpose;
  /** a Conductor server will be started here (default: yes) */
  conductor?: boolean;
  env?: NodeJS.ProcessEnv;
  /** the user id to act as: 0 installs with apt, anything else prints the command */
  uid?: number;
  /** where JDKs are installed besides PATH, JAVA_HOME and CONDUCTOR_JAVA */
  jvmRoot?: string;
  log?: (line: string) => void;
}

/** The executable `name` on `pathVar`, if any. */
export function onPath(name: string, pathVar: string | undefined): string | undefined {
  for (const dir of (pathVar ?? "").split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, name);
    try {
      const st = statSync(file);
      if (st.isFile() && (st.mode & 0o111) !== 0) return file;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

function javaCandidates(env: NodeJS.ProcessEnv, jvmRoot: string): string[] {
  const out: string[] = [];
  if (env.CONDUCTOR_JAVA) out.push(env.CONDUCTOR_JAVA);
  if (env.JAVA_HOME) out.push(path.join(env.JAVA_HOME, "bin", "java"));
  const onPathJava = onPath("java", env.PATH);
  if (onPathJava) out.push(onPathJava);
  if (existsSync(jvmRoot)) for (const d of readdirSync(jvmRoot).sort().reverse()) out.push(path.join(jvmRoot, d, "bin", "java"));
  return out;
}

function hasJava(min: number, env: NodeJS.ProcessEnv, jvmRoot: string): boolean {
  return javaCandidates(env, jvmRoot).some((java) => {
    if (!existsSync(java)) return false;
    const r = spawnSync(java, ["-version"], { encoding: "utf8", env });
    return parseJavaMajor(`${r.stderr ?? ""}${r.stdout ?? ""}`) >= min;
  });
}

/** The requirements of `purpose` on this machine's configuration. */
export function needsOf(opts: PreflightOptions, env: NodeJS.ProcessEnv): Needs {
  const config = EnvSchema.pick({ ASR_ENGINE: true, POCKETSPHINX_HMM: true, POCKETSPHINX_DICT: true, POCKETSPHINX_LM: true }).parse(env);
  const conductor = opts.conductor ?? true;
  return {
    purpose: opts.purpose,
    conductor,
    fetchJar: conductor && !existsSync(path.join(cacheDir(env), `conductor-server-${CONDUCTOR_VERSION}-boot.jar`)),
    pocketsphinx: config.ASR_ENGINE === "pocketsphinx",
    model: [config.POCKETSPHINX_HMM, config.POCKETSPHINX_DICT, config.POCKETSPHINX_LM],
    testdata: LIBRIVOX,
  };
}

/** The requirements this machine lacks. */
export function probe(reqs: Requirement[], env: NodeJS.ProcessEnv, jvmRoot: string): Requirement[] {
  return reqs.filter(
    (r) =>
      (r.commands ?? []).some((c) => !onPath(c, env.PATH)) ||
      (r.files ?? []).some((f) => !existsSync(f)) ||
      (r.javaMajor !== undefined && !hasJava(r.javaMajor, env, jvmRoot)),
  );
}

/** 0 when the machine is ready (after installing what was missing, as root); 1 otherwise. */
export function preflight(opts: PreflightOptions): number {
  const env = opts.env ?? process.env;
  const uid = opts.uid ?? process.getuid?.() ?? -1;
  const jvmRoot = opts.jvmRoot ?? "/usr/lib/jvm";
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const reqs = requirements(needsOf(opts, env));
  const missing = probe(reqs, env, jvmRoot);
  if (!missing.length) return 0;

  const aptGet = onPath("apt-get", env.PATH) ?? (existsSync("/usr/bin/apt-get") ? "/usr/bin/apt-get" : undefined);
  const aptCache = onPath("apt-cache", env.PATH) ?? (existsSync("/usr/bin/apt-cache") ? "/usr/bin/apt-cache" : undefined);
  const aptKnows = (): ((pkg: string) => boolean) | undefined => {
    if (!aptGet) return undefined;
    const alternatives = missing.filter((r) => r.apt.length > 1).flatMap((r) => r.apt);
    if (!alternatives.length || !aptCache) return () => false;
    const r = spawnSync(aptCache, ["policy", ...alternatives], { encoding: "utf8", env });
    const known = parseAptPolicy(r.stdout ?? "");
    return (pkg) => known.has(pkg);
  };

  if (uid === 0 && aptGet) {
    const aptEnv = { ...env, DEBIAN_FRONTEND: "noninteractive" };
    const run = (args: readonly string[]): boolean => {
      log(`preflight: ${args.join(" ")}`);
      const r = spawnSync(aptGet, args.slice(1), { env: aptEnv, stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" });
      if (r.status === 0) return true;
      const tail = `${r.stdout ?? ""}${r.stderr ?? ""}`.trim().split("\n").slice(-15).join("\n");
      log(`preflight: apt-get ${args.includes("install") ? "install" : "update"} failed (exit ${r.status ?? r.signal}):\n${tail}`);
      return false;
    };
    log(`preflight: installing what this machine lacks: ${missing.map((r) => r.id).join(", ")}`);
    if (!run(APT_UPDATE)) return 1;
    const plan = planInstall(missing, { aptKnows: aptKnows(), root: true });
    if (plan.install && !run(plan.install)) return 1;
    const still = probe(reqs, env, jvmRoot);
    if (!still.length) return 0;
    log(describe(planInstall(still, { aptKnows: aptKnows(), root: true }), { apt: true }));
    return 1;
  }
  log(describe(planInstall(missing, { aptKnows: aptKnows(), root: uid === 0 }), { apt: Boolean(aptGet) }));
  return 1;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const purpose = args[args.indexOf("--for") + 1];
  if (!args.includes("--for") || (purpose !== "demo" && purpose !== "test")) {
    process.stderr.write("usage: preflight.ts --for demo|test [--no-conductor]\n");
    process.exit(2);
  }
  process.exit(preflight({ purpose, conductor: !args.includes("--no-conductor") }));
}
