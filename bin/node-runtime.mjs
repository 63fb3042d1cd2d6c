/**
 * The Node this project runs on. package.json's `engines` names one LTS major, and
 * `npm install` fetches that major's official binary (the optional dependency
 * node-<platform>-<arch>, linked as node_modules/.bin/node), which every npm script and
 * `npx` runs under. A process started another way on an older Node (a system Node 20
 * running `bin/trackscribe.mjs` or `scripts/run-tests.mjs` directly) runs itself again
 * under the pinned binary; without one it says what to do and exits 1.
 *
 * Plain JavaScript, no dependencies: it must load on any Node before tsx does.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { constants } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
/** Set in the re-run process, so a pinned binary that is somehow too old cannot loop. */
const REEXEC_MARK = "TRACKSCRIBE_NODE_REEXEC";

/** The lowest version an `engines.node` range such as ">=24.22 <25" admits. */
export function minimumVersion(range) {
  const m = /^\s*>=?\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(range ?? "");
  if (!m) throw new Error(`package.json engines.node must start with a lower bound (>=X.Y), not '${range}'`);
  return [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)];
}

/** Whether `version` ("20.20.2" or "v20.20.2") is older than `min` ([major, minor, patch]). */
export function isOlder(version, min) {
  const v = version.replace(/^v/, "").split(".").map((n) => Number.parseInt(n, 10) || 0);
  for (let i = 0; i < 3; i++) {
    if ((v[i] ?? 0) !== min[i]) return (v[i] ?? 0) < min[i];
  }
  return false;
}

/** The pinned binary npm installed for this platform, if any. */
export function pinnedNode(dir = root, platform = process.platform, arch = process.arch) {
  const bin = path.join(dir, "node_modules", `node-${platform}-${arch}`, "bin", "node");
  return existsSync(bin) ? bin : undefined;
}

function projectPackage(dir) {
  return JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8"));
}

/**
 * Returns when this process runs on a supported Node. Otherwise re-runs the same command
 * line under the pinned binary (exiting with its exit code, signals passed on) or exits 1
 * with a message; in both cases the returned promise never settles.
 */
export async function ensureSupportedNode(opts = {}) {
  const dir = opts.root ?? root;
  const env = opts.env ?? process.env;
  const pkg = projectPackage(dir);
  const min = minimumVersion(pkg.engines?.node);
  const running = opts.version ?? process.versions.node;
  if (!isOlder(running, min)) return;

  const pinned = pinnedNode(dir);
  const pin = pkg.optionalDependencies?.[`node-${process.platform}-${process.arch}`];
  if (!pinned || env[REEXEC_MARK]) {
    const wanted = min.join(".");
    process.stderr.write(
      `trackscribe needs Node ${wanted} or newer; this is Node ${running} (${process.execPath}).\n` +
        (pin && !pinned
          ? `Run \`npm install\` in ${dir}: it fetches the pinned Node ${pin} into node_modules, and npm scripts run under it.\n`
          : `Install Node ${min[0]} (${wanted} or newer) and run it again.\n`),
    );
    process.exit(1);
  }
  const argv = opts.argv ?? process.argv;
  const child = spawn(pinned, [...(opts.execArgv ?? process.execArgv), ...argv.slice(1)], {
    stdio: "inherit",
    // the pinned binary first on PATH too, for anything that runs `node` by name
    env: { ...env, [REEXEC_MARK]: "1", PATH: [path.dirname(pinned), env.PATH].filter(Boolean).join(path.delimiter) },
  });
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, () => child.kill(signal));
  child.on("error", (err) => {
    process.stderr.write(`could not run the pinned Node ${pinned}: ${err.message}\n`);
    process.exit(1);
  });
  child.on("exit", (code, signal) => process.exit(code ?? 128 + (constants.signals[signal] ?? 0)));
  await new Promise(() => {});
}
