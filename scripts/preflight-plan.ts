/**
 * What a fresh Debian/Ubuntu machine lacks for `npm run demo` or `npm test`, and the apt
 * command that installs it: pure functions over what scripts/preflight.ts found on the
 * machine (no process, file or apt access here).
 */

export type Purpose = "demo" | "test";

/** Something the product runs, how the shell checks for it, and the apt packages that give it. */
export interface Requirement {
  id: string;
  /** for messages: what it is and what needs it */
  what: string;
  /** programs that must be on PATH */
  commands?: readonly string[];
  /** files or directories that must exist (absolute; the shell resolves them from the config) */
  files?: readonly string[];
  /** a Java runtime of at least this major version */
  javaMajor?: number;
  /** apt packages, in order of preference; the first one apt knows is installed */
  apt: readonly string[];
  /** what to do when apt has none of them */
  hint?: string;
}

export const CONDUCTOR_JAVA_MAJOR = 21;

export interface Needs {
  purpose: Purpose;
  /** a Conductor server is started here (not reused from CONDUCTOR_SERVER_URL) */
  conductor: boolean;
  /** the Conductor server jar is not in the cache yet (Maven fetches it) */
  fetchJar: boolean;
  /** speech is recognized with pocketsphinx here (ASR_ENGINE; the tests always use it) */
  pocketsphinx: boolean;
  /** pocketsphinx model files, as the app's configuration names them */
  model: readonly string[];
  /** Debian's pocketsphinx-testdata LibriVox clips (tests only) */
  testdata: string;
}

/** The requirements of a purpose on this machine's configuration. */
export function requirements(needs: Needs): Requirement[] {
  const out: Requirement[] = [
    { id: "ffmpeg", what: "ffmpeg and ffprobe (decoding and encoding audio)", commands: ["ffmpeg", "ffprobe"], apt: ["ffmpeg"] },
    { id: "sox", what: "sox (audio tools)", commands: ["sox"], apt: ["sox"] },
  ];
  if (needs.pocketsphinx || needs.purpose === "test") {
    out.push({ id: "pocketsphinx", what: "pocketsphinx_batch (offline speech recognition)", commands: ["pocketsphinx_batch"], apt: ["pocketsphinx"] });
    out.push({ id: "pocketsphinx-model", what: "pocketsphinx's US English model", files: needs.model, apt: ["pocketsphinx-en-us"] });
  }
  if (needs.conductor) {
    out.push({
      id: "java",
      what: `Java ${CONDUCTOR_JAVA_MAJOR}+ (runs the Conductor server)`,
      javaMajor: CONDUCTOR_JAVA_MAJOR,
      apt: ["openjdk-21-jre-headless", "openjdk-25-jre-headless", "temurin-21-jdk", "temurin-25-jdk"],
      hint: `this machine's apt sources have no Java ${CONDUCTOR_JAVA_MAJOR}+ package (Debian 12 ships 17): install a JDK ${CONDUCTOR_JAVA_MAJOR}+ (e.g. Eclipse Temurin from packages.adoptium.net) or set CONDUCTOR_JAVA to its java`,
    });
    if (needs.fetchJar) out.push({ id: "maven", what: "Maven (fetches the Conductor server jar from Maven Central)", commands: ["mvn"], apt: ["maven"] });
  }
  if (needs.purpose === "test") {
    out.push({ id: "espeak-ng", what: "espeak-ng (speech synthesis for tests)", commands: ["espeak-ng"], apt: ["espeak-ng"] });
    out.push({ id: "pocketsphinx-testdata", what: "pocketsphinx's LibriVox test clips", files: [needs.testdata], apt: ["pocketsphinx-testdata"] });
    // Debian's own build: playwright-core drives it (no browser is downloaded)
    out.push({ id: "chromium", what: "Chromium (the web app's end-to-end test, headless)", commands: ["chromium"], apt: ["chromium"] });
  }
  return out;
}

export interface Plan {
  /** every requirement the machine lacks */
  missing: Requirement[];
  /** apt packages that provide the missing ones, in requirement order, each once */
  packages: string[];
  /** missing requirements no known apt package provides */
  unresolved: Requirement[];
  /** the install command's arguments (none when nothing can be installed) */
  install?: string[];
  /** `apt-get update` and the install as one line a person can paste (with sudo when not root) */
  command?: string;
}

/** Waits for another apt or dpkg run to finish instead of failing at once. */
const LOCK_WAIT = ["-o", "DPkg::Lock::Timeout=300"];
/** Run before the install (and before asking apt which alternatives it has). */
export const APT_UPDATE: readonly string[] = ["apt-get", ...LOCK_WAIT, "update"];

/**
 * The install plan. `aptKnows`: whether apt has a candidate for a package (undefined: apt is
 * not on this machine); a requirement with one package is planned without asking, one with
 * alternatives takes the first that apt knows.
 */
export function planInstall(missing: Requirement[], opts: { aptKnows?: (pkg: string) => boolean; root: boolean }): Plan {
  const packages: string[] = [];
  const unresolved: Requirement[] = [];
  for (const r of missing) {
    const pick = !opts.aptKnows ? undefined : r.apt.length === 1 ? r.apt[0] : r.apt.find((p) => opts.aptKnows!(p));
    if (!pick) unresolved.push(r);
    else if (!packages.includes(pick)) packages.push(pick);
  }
  if (!packages.length) return { missing, packages, unresolved };
  const install = ["apt-get", ...LOCK_WAIT, "install", "-y", "--no-install-recommends", ...packages];
  const command = [APT_UPDATE, install].map((s) => (opts.root ? s : ["sudo", ...s]).join(" ")).join(" && ");
  return { missing, packages, unresolved, install, command };
}

/** The message for someone who has to act: what is missing and how to get it. */
export function describe(plan: Plan, opts: { apt: boolean }): string {
  const lines = ["Missing on this machine:", ...plan.missing.map((r) => `  - ${r.what}`)];
  if (plan.command) lines.push("Install them with:", `  ${plan.command}`);
  for (const r of plan.unresolved) {
    if (!opts.apt) lines.push(`  ${r.what}: install it with this system's package manager (Debian/Ubuntu package: ${r.apt[0]})`);
    else lines.push(`  ${r.what}: ${r.hint ?? `apt knows no package for it (looked for ${r.apt.join(", ")})`}`);
  }
  return lines.join("\n");
}

/** `apt-cache policy` output → the packages that have an install candidate. */
export function parseAptPolicy(out: string): Set<string> {
  const known = new Set<string>();
  let current: string | undefined;
  for (const line of out.split("\n")) {
    const head = /^(\S+):\s*$/.exec(line);
    if (head) {
      current = head[1]!.replace(/:[a-z0-9]+$/, "");
      continue;
    }
    const cand = /^\s+Candidate:\s*(\S+)/.exec(line);
    if (cand && current && cand[1] !== "(none)") known.add(current);
  }
  return known;
}

/** `java -version` output → the major version (0 when it is not a Java version banner). */
export function parseJavaMajor(out: string): number {
  const m = /version "(\d+)(?:\.(\d+))?/.exec(out);
  if (!m) return 0;
  const major = Number(m[1]);
  return major === 1 ? Number(m[2]) : major;
}
