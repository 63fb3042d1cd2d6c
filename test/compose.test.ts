/**
 * Static check of docker-compose.yml (no Docker engine runs here): every service command
 * is a real `trackscribe` command with known options, every app variable is one the config
 * schema knows and parses, URLs between services agree with the services' ports and
 * credentials, and every image is pinned.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { Command } from "commander";
import { parse } from "yaml";
import { registerCommands } from "../bin/commands/index.ts";
import { knownVariables, loadConfig } from "../pipeline/config.ts";
import {
  CONDUCTOR_AI_INTEGRATIONS,
  CONDUCTOR_DB_POOL_SIZE,
  CONDUCTOR_JVM_OPTS,
  CONDUCTOR_PAYLOAD_LIMIT,
  CONDUCTOR_PAYLOAD_PROPERTIES,
  CONDUCTOR_PG_POOL_MIN_IDLE,
  CONDUCTOR_PG_POOL_SIZE,
  CONDUCTOR_SCHEDULER,
  CONDUCTOR_SQLITE_PARAMS,
  CONDUCTOR_SWEEPER_THREADS,
  CONDUCTOR_TASK_INDEXING,
  CONDUCTOR_SYSTEM_TASK_POLL,
  CONDUCTOR_SYSTEM_TASK_POP_TIMEOUT,
  CONDUCTOR_VERSION,
  postgresProperties,
} from "../scripts/conductor.ts";

interface Service {
  image?: string;
  build?: unknown;
  command?: string[] | string;
  environment?: Record<string, string>;
  ports?: string[];
  profiles?: string[];
}
const compose = parse(readFileSync(new URL("../docker-compose.yml", import.meta.url), "utf8"), { merge: true }) as {
  services: Record<string, Service>;
};
const services = compose.services;
const appServices = Object.entries(services).filter(([, s]) => s.build !== undefined);

/**
 * compose's substitution: `${NAME:-default}` → default; `${NAME:?message}` (required, no
 * default) → `required` (what a user must set; any value will do for parsing).
 */
const substitute = (v: string, required: Record<string, string> = REQUIRED): string =>
  String(v)
    .replace(/\$\{[A-Z0-9_]+:-([^}]*)\}/g, "$1")
    .replace(/\$\{([A-Z0-9_]+):\?[^}]*\}/g, (_, name: string) => required[name] ?? "")
    .replace(/\$\{[A-Z0-9_]+\}/g, "");
/** values a user sets for the required variables */
const REQUIRED: Record<string, string> = { API_TOKEN: "operator-token-0123456789", MINIO_ROOT_USER: "someone", MINIO_ROOT_PASSWORD: "some-password" };

test("the three app services exist and share one image", () => {
  assert.deepEqual(appServices.map(([n]) => n).sort(), ["api", "bullmq-worker", "conductor-worker"]);
});

test("every app service command is a real trackscribe command with known options", () => {
  const program = new Command("trackscribe").exitOverride();
  registerCommands(program);
  for (const [name, svc] of appServices) {
    const argv = Array.isArray(svc.command) ? svc.command : String(svc.command ?? "").split(/\s+/);
    const sub = program.commands.find((c) => c.name() === argv[0]);
    assert.ok(sub, `${name}: '${argv[0]}' is not a trackscribe command (known: ${program.commands.map((c) => c.name()).join(", ")})`);
    const flags = new Set(sub.options.flatMap((o) => [o.short, o.long].filter(Boolean) as string[]));
    for (const a of argv.slice(1)) if (a.startsWith("-")) assert.ok(flags.has(a), `${name}: option ${a} unknown to 'trackscribe ${argv[0]}'`);
  }
});

test("every app environment variable is known to the config schema and parses", () => {
  const known = new Set(knownVariables());
  for (const [name, svc] of appServices) {
    const env = Object.fromEntries(Object.entries(svc.environment ?? {}).map(([k, v]) => [k, substitute(String(v))]));
    for (const k of Object.keys(env)) assert.ok(known.has(k), `${name}: ${k} is not a config variable`);
    const config = loadConfig(env);
    assert.equal(config.STORAGE_DRIVER, "s3");
  }
});

test("URLs between services agree with ports and credentials", () => {
  const env = Object.fromEntries(Object.entries(services.api!.environment!).map(([k, v]) => [k, substitute(String(v))]));
  const db = new URL(env.DATABASE_URL!);
  const pgEnv = services.postgres!.environment!;
  assert.equal(db.hostname, "postgres");
  assert.equal(db.port, "5432");
  assert.equal(db.username, pgEnv.POSTGRES_USER);
  assert.equal(db.password, pgEnv.POSTGRES_PASSWORD);
  assert.equal(db.pathname.slice(1), pgEnv.POSTGRES_DB);
  const conductor = new URL(env.CONDUCTOR_SERVER_URL!);
  assert.equal(conductor.hostname, "conductor");
  assert.equal(conductor.port, "8080", "Conductor URL port is the container's port");
  const s3 = new URL(env.S3_ENDPOINT!);
  assert.equal(s3.hostname, "minio");
  assert.equal(s3.port, "9000");
  const minioEnv = services.minio!.environment!;
  const rawApi = services.api!.environment!;
  // the app's S3 credentials are MinIO's, the same variables
  assert.equal(rawApi.S3_ACCESS_KEY_ID, minioEnv.MINIO_ROOT_USER);
  assert.equal(rawApi.S3_SECRET_ACCESS_KEY, minioEnv.MINIO_ROOT_PASSWORD);
  assert.equal(env.S3_ACCESS_KEY_ID, REQUIRED.MINIO_ROOT_USER);
  assert.match(JSON.stringify(services["minio-init"]!.command), new RegExp(`local/${env.S3_BUCKET}`));
  assert.equal(new URL(env.REDIS_URL!).hostname, "redis");
  assert.ok(services.api!.ports!.includes(`${env.PORT}:${env.PORT}`), "API publishes the port it listens on");
});

test("the Conductor service runs the pinned version with the server settings the tests use", () => {
  const svc = services.conductor!;
  assert.equal(svc.image, `conductoross/conductor:${CONDUCTOR_VERSION}`);
  const env = svc.environment ?? {};
  // SQLite stays the tests' and the demo's: its settings are still the ones they use
  assert.match(CONDUCTOR_SQLITE_PARAMS, /(^|&)synchronous=NORMAL(&|$)/);
  assert.ok(CONDUCTOR_DB_POOL_SIZE > 10, "the SQLite pool of 10 deadlocks on workflow removal");
  assert.equal(env.SPRING_DATASOURCE_URL?.startsWith("jdbc:postgresql:"), true, "compose persists to Postgres");
  assert.equal(env.CONDUCTOR_APP_SYSTEMTASKWORKERPOLLINTERVAL, CONDUCTOR_SYSTEM_TASK_POLL);
  assert.equal(env.CONDUCTOR_APP_SYSTEMTASKQUEUEPOPTIMEOUT, CONDUCTOR_SYSTEM_TASK_POP_TIMEOUT);
  assert.equal(env.CONDUCTOR_INTEGRATIONS_AI_ENABLED, String(CONDUCTOR_AI_INTEGRATIONS));
  assert.equal(env.CONDUCTOR_SCHEDULER_ENABLED, String(CONDUCTOR_SCHEDULER));
  assert.equal(Number(env.CONDUCTOR_APP_SWEEPERTHREADCOUNT), CONDUCTOR_SWEEPER_THREADS);
  assert.equal(env.CONDUCTOR_APP_TASKINDEXINGENABLED, String(CONDUCTOR_TASK_INDEXING));
  // every payload threshold raised as for the tests' server (Spring's relaxed binding: upper case, no dots)
  for (const p of CONDUCTOR_PAYLOAD_PROPERTIES) assert.equal(env[`CONDUCTOR_APP_${p.toUpperCase()}`], CONDUCTOR_PAYLOAD_LIMIT, p);
  assert.ok(CONDUCTOR_SWEEPER_THREADS >= 1, "a sweeper thread is still running");
  // the image's startup script runs `java ${JAVA_OPTS} -jar …`: the long-running server's options, as bench:conductor measures them
  assert.deepEqual(String(env.JAVA_OPTS).split(/\s+/), [...CONDUCTOR_JVM_OPTS.steady]);
});

/** Spring's relaxed binding of a property to an environment variable: upper case, `.` → `_`, no `-`. */
const envName = (property: string): string => property.replace(/-/g, "").replace(/\./g, "_").toUpperCase();

test("the Conductor service persists to its own database on the postgres service, with the properties startConductor({ postgres }) sets", () => {
  const svc = services.conductor! as Service & { depends_on?: Record<string, { condition: string }>; volumes?: string[] };
  const env = svc.environment ?? {};
  const pgEnv = services.postgres!.environment!;
  const jdbc = new URL(String(env.SPRING_DATASOURCE_URL).replace(/^jdbc:/, ""));
  assert.equal(jdbc.hostname, "postgres");
  assert.equal(jdbc.port, "5432");
  const database = jdbc.pathname.slice(1);
  assert.notEqual(database, pgEnv.POSTGRES_DB, "its own database, not the app's");
  assert.equal(env.SPRING_DATASOURCE_USERNAME, pgEnv.POSTGRES_USER);
  assert.equal(env.SPRING_DATASOURCE_PASSWORD, pgEnv.POSTGRES_PASSWORD);
  // the same properties as scripts/conductor.ts's Postgres server (the test of two servers runs those)
  const props = Object.fromEntries(
    postgresProperties(`postgres://u@h:5432/${database}`).map((a) => a.replace(/^--/, "").split(/=(.*)/s).slice(0, 2) as [string, string]),
  );
  for (const [k, v] of Object.entries(props)) {
    if (k.startsWith("spring.datasource.") && !k.startsWith("spring.datasource.hikari.")) continue;
    const name = k.startsWith("spring.datasource.hikari.") ? `SPRING_DATASOURCE_HIKARI_${k.split(".").pop()!.replace(/-/g, "").toUpperCase()}` : envName(k);
    assert.equal(env[name], v, `${name} (${k})`);
  }
  assert.equal(Number(env.SPRING_DATASOURCE_HIKARI_MAXIMUMPOOLSIZE), CONDUCTOR_PG_POOL_SIZE);
  assert.equal(Number(env.SPRING_DATASOURCE_HIKARI_MINIMUMIDLE), CONDUCTOR_PG_POOL_MIN_IDLE);
  assert.equal(svc.volumes, undefined, "no SQLite volume left");

  // the database is created by a one-shot service the server waits for, after Postgres is healthy
  assert.equal(svc.depends_on?.["conductor-db"]?.condition, "service_completed_successfully");
  const init = services["conductor-db"]! as Service & { depends_on?: Record<string, { condition: string }>; entrypoint?: string[]; restart?: string };
  assert.equal(init.image, services.postgres!.image, "psql of the server's own version");
  assert.equal(init.depends_on?.postgres?.condition, "service_healthy");
  assert.equal(init.restart, "no");
  assert.deepEqual(init.entrypoint, ["/bin/sh", "-c"]);
  const script = (init.command as string[]).join(" ");
  assert.match(script, new RegExp(`CREATE DATABASE ${database}\\b`));
  assert.match(script, new RegExp(`datname = '${database}'`), "created only when missing");
  for (const m of script.matchAll(/psql -h (\S+) -U (\S+) -d (\S+)/g)) assert.deepEqual(m.slice(1), ["postgres", pgEnv.POSTGRES_USER, pgEnv.POSTGRES_DB]);
  assert.equal(init.environment!.PGPASSWORD, pgEnv.POSTGRES_PASSWORD);
});

test("every image is pinned to a version (no latest, no bare name)", () => {
  for (const [name, svc] of Object.entries(services)) {
    if (!svc.image) continue;
    const tag = svc.image.split(":")[1];
    assert.ok(tag && tag !== "latest" && /\d/.test(tag), `${name}: image ${svc.image} is not pinned`);
  }
  const dockerfile = readFileSync(new URL("../Dockerfile", import.meta.url), "utf8");
  for (const m of dockerfile.matchAll(/^FROM\s+(\S+)/gm)) assert.match(m[1]!, /:\d+\.\d+/, `Dockerfile base ${m[1]} is not pinned`);
  const engines = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { engines: { node: string } }).engines.node;
  const major = /^>=(\d+)\./.exec(engines)![1];
  assert.match(dockerfile, new RegExp(`FROM node:${major}\\.`), "the image runs the same Node major as development and CI");
});

test("secure by default: only the API is published; its token and MinIO's credentials have no default", () => {
  for (const [name, svc] of Object.entries(services)) {
    if (name === "api") continue;
    assert.deepEqual(svc.ports ?? [], [], `${name} publishes no port in the default file (profiles included)`);
  }
  assert.deepEqual(services.api!.ports, ["3000:3000"]);
  // required: `${NAME:?message}`, never `${NAME:-default}` or a literal
  const requiredVar = (v: string | undefined, name: string): void => assert.match(String(v), new RegExp(`^\\$\\{${name}:\\?[^}]+\\}$`), `${name} is required`);
  requiredVar(services.api!.environment!.API_TOKEN, "API_TOKEN");
  for (const svc of [services.minio!, services["minio-init"]!]) {
    requiredVar(svc.environment!.MINIO_ROOT_USER, "MINIO_ROOT_USER");
    requiredVar(svc.environment!.MINIO_ROOT_PASSWORD, "MINIO_ROOT_PASSWORD");
  }
  // the token reaches the API as the config schema wants it, and the API listens beyond loopback
  const env = Object.fromEntries(Object.entries(services.api!.environment!).map(([k, v]) => [k, substitute(String(v))]));
  const config = loadConfig(env);
  assert.equal(config.API_TOKEN, REQUIRED.API_TOKEN);
  assert.equal(config.HOST, "0.0.0.0");
  assert.equal(config.AUTH_DISABLED, false);
  // without the token the API would refuse to start (server/server.ts checkAuthSetup); compose stops first
  const dockerfile = readFileSync(new URL("../Dockerfile", import.meta.url), "utf8");
  assert.match(dockerfile, /HOST=0\.0\.0\.0/, "the image listens beyond loopback (outside it the default is 127.0.0.1)");
});

test("docker-compose.debug.yml publishes the internal services on loopback only", () => {
  const debug = parse(readFileSync(new URL("../docker-compose.debug.yml", import.meta.url), "utf8")) as { services: Record<string, Service> };
  const published = Object.entries(debug.services).flatMap(([n, s]) => (s.ports ?? []).map((p) => [n, p] as const));
  assert.ok(published.length >= 4);
  for (const [name, p] of published) {
    assert.ok(name in services, `${name} is a service of docker-compose.yml`);
    assert.match(p, /^127\.0\.0\.1:\d+:\d+$/, `${name}: ${p} is bound to loopback`);
  }
});

test("--profile asr: Speaches on CPU, pinned, its models in a volume, the model downloaded through its own API once it is healthy", () => {
  const asr = services.asr! as Service & { volumes?: string[]; healthcheck?: unknown };
  assert.match(asr.image!, /^ghcr\.io\/speaches-ai\/speaches:\d+\.\d+\.\d+-cpu$/);
  assert.deepEqual(asr.profiles, ["asr"]);
  assert.ok(asr.volumes?.some((v) => v.startsWith("hf-hub-cache:") && v.endsWith("/.cache/huggingface/hub")), "models persist in a volume");
  assert.ok(asr.healthcheck, "a health check the model download waits for");
  const init = services["asr-model"]! as Service & { depends_on?: Record<string, { condition: string }> };
  assert.deepEqual(init.profiles, ["asr"]);
  assert.equal(init.depends_on?.asr?.condition, "service_healthy");
  const cmd = (init.command as string[]).map((c) => substitute(c));
  assert.ok(cmd.includes("POST"));
  assert.equal(cmd.at(-1), "http://asr:8000/v1/models/Systran/faster-whisper-small");
  // the app's engine setting for it parses: the variables the README names
  const config = loadConfig({ ASR_ENGINE: "openai", ASR_URL: "http://asr:8000", ASR_MODEL: "Systran/faster-whisper-small" });
  assert.equal(config.ASR_HTTP_CONCURRENCY, 4);
});
