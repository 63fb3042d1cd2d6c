/**
 * `npm run chaos [-- --minutes 10 --seed N]`: faults on purpose. Brings up the real stack
 * (bench/chaos-stack.ts, loopback only), submits a stream of recordings (the fixture
 * meeting, short meetings cut from it, and some with a bad track by design) while a seeded
 * schedule kills, restarts, pauses and starves its parts, then stops injecting, lets
 * everything finish, and checks what must hold whatever happened:
 *   - every accepted recording ended (none lost, none stuck): `completed`, or, only for a
 *     bad input, `failed` with a reason or `completed` with a failed track entry;
 *   - exactly one Result each, with the same words as the same input without faults;
 *   - its SSE replay: every event once, in order, ending in its final state (and what a
 *     follower saw across API restarts, resuming with Last-Event-ID, is the same);
 *   - nothing left of deleted recordings: objects, rows, multipart uploads, BullMQ keys,
 *     running workflows;
 *   - a shadow comparison stored for every recording, mismatches classified;
 *   - counts: faults by kind, Conductor retries and timeouts, rescues, restarts.
 * Prints a table and one JSON line (`CHAOS {…}`); exits 1 when a loss was found.
 * Bounded: the injection window (--minutes), then at most --drain-minutes to finish.
 */
import { randomUUID } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { spawnSync } from "node:child_process";
import pg from "pg";
import { Redis } from "ioredis";
import { S3Client, ListMultipartUploadsCommand, PutObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { descendants, ROOT, startStack, strays, type Stack } from "./chaos-stack.ts";
import { seeded } from "./seeded.ts";

export const FAULT_KINDS = [
  "kill_worker_child",
  "kill_step_child",
  "kill_decoder",
  "kill_supervisor",
  "kill_api",
  "kill_api_mid_upload",
  "restart_conductor",
  "restart_redis",
  "stop_s3_20s",
  "pause_worker_host",
  "restart_postgres",
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface ChaosOptions {
  minutes: number;
  seed: number;
  workDir: string;
  database: string;
  /** recordings in flight at once */
  inFlight?: number;
  drainMinutes?: number;
  kinds?: readonly FaultKind[];
  /** seconds between two faults (uniform in [min, max]) */
  gapSeconds?: [number, number];
  log?: (s: string) => void;
}

interface InputKind {
  name: string;
  bad: boolean;
  build(): Promise<{ body: Buffer; contentType: string } | { json: unknown }>;
}

interface Submitted {
  n: number;
  input: string;
  bad: boolean;
  id?: string;
  idempotencyKey: string;
  acceptedAt?: number;
  endedAt?: number;
  refused?: string;
  attempts: number;
  deleted?: boolean;
  seen: { id: number; event: string; status?: string }[];
  reconnects: number;
  /** what each failed submission attempt got */
  errors: string[];
}

interface FaultRecord {
  kind: FaultKind;
  at: number;
  detail: string;
  skipped?: boolean;
}


/** the fault order: seeded permutations of the kinds one after another, so every kind comes up once per round */
export function faultSchedule(rand: () => number, kinds: readonly FaultKind[], count: number): FaultKind[] {
  const out: FaultKind[] = [];
  while (out.length < count) {
    const round = [...kinds];
    for (let i = round.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [round[i], round[j]] = [round[j]!, round[i]!];
    }
    out.push(...round);
  }
  return out.slice(0, count);
}

/** the response timeout registered for every task: a dead or paused host's task comes back after it */
const RESPONSE_TIMEOUT_SECONDS = 20;
/** a paused host stays stopped past it */
const PAUSE_SECONDS = 28;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function buildInputs(workDir: string, s3: S3Client): Promise<InputKind[]> {
  const { buildFixtures, defaultFixtureDir } = await import("../scripts/build-fixtures.ts");
  const manifestPath = (await buildFixtures(defaultFixtureDir())).manifestPath;
  const dir = path.dirname(manifestPath);
  const manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as { language: string; tracks: { path: string; participant: string; offset_seconds: number }[] };
  const cut = path.join(workDir, "inputs");
  mkdirSync(cut, { recursive: true });
  const trim = (src: string, seconds: number, out: string): string => {
    const dest = path.join(cut, out);
    const r = spawnSync("ffmpeg", ["-y", "-loglevel", "error", "-i", path.join(dir, src), "-t", String(seconds), "-ac", "1", "-ar", "16000", dest]);
    if (r.status !== 0) throw new Error(`ffmpeg could not cut ${src}: ${r.stderr}`);
    return dest;
  };
  const form = async (tracks: { file: string; participant: string; offset_seconds: number }[]): Promise<{ body: Buffer; contentType: string }> => {
    const f = new FormData();
    f.append("manifest", JSON.stringify({ language: manifest.language, tracks: tracks.map(({ participant, offset_seconds }) => ({ participant, offset_seconds })) }));
    for (const t of tracks) f.append("track", new Blob([readFileSync(t.file)]), path.basename(t.file));
    const res = new Response(f);
    return { body: Buffer.from(await res.arrayBuffer()), contentType: res.headers.get("content-type")! };
  };
  const t = manifest.tracks;
  const short0 = trim(t[0]!.path, 8, "short-a.wav");
  const short1 = trim(t[1]!.path, 8, "short-b.wav");
  const solo = trim(t[2]!.path, 6, "solo.wav");
  // a bad track by design: the bucket holds an object that says Ogg and is not decodable
  const badKey = "incoming/chaos/bad.ogg";
  const goodKey = "incoming/chaos/good.wav";
  await s3.send(new PutObjectCommand({ Bucket: "trackscribe", Key: badKey, Body: Buffer.concat([Buffer.from("OggS"), Buffer.alloc(4096, 7)]) }));
  await s3.send(new PutObjectCommand({ Bucket: "trackscribe", Key: goodKey, Body: readFileSync(short0) }));
  return [
    { name: "fixture", bad: false, build: () => form(t.map((x) => ({ file: path.join(dir, x.path), participant: x.participant, offset_seconds: x.offset_seconds }))) },
    { name: "pair", bad: false, build: () => form([{ file: short0, participant: t[0]!.participant, offset_seconds: 0 }, { file: short1, participant: t[1]!.participant, offset_seconds: 0 }]) },
    { name: "solo", bad: false, build: () => form([{ file: solo, participant: t[2]!.participant, offset_seconds: 0 }]) },
    { name: "bad_track", bad: true, build: async () => ({ json: { tracks: [{ key: goodKey, participant: "Good" }, { key: badKey, participant: "Broken" }] } }) },
  ];
}

/** a request body sent at a client's pace (so the API can be killed while it arrives) */
function throttled(body: Buffer, bytesPerSecond: number): ReadableStream<Uint8Array> {
  let off = 0;
  const chunk = Math.max(16 * 1024, Math.floor(bytesPerSecond / 10));
  return new ReadableStream({
    async pull(c) {
      if (off >= body.length) return c.close();
      await sleep(100);
      c.enqueue(body.subarray(off, off + chunk));
      off += chunk;
    },
  });
}

export interface ChaosReport {
  seed: number;
  minutes: number;
  recordings: number;
  accepted: number;
  refused: number;
  completed: number;
  completed_with_failed_tracks: number;
  failed_bad_by_design: number;
  failed_unexpected: number;
  lost: number;
  stuck: number;
  duplicates: number;
  word_mismatches: number;
  sse_problems: number;
  /** objects, rows, workflows and multipart uploads left by deleted recordings */
  orphans: number;
  /** deleted recordings whose shadow (BullMQ) jobs are still in Redis */
  orphan_bullmq_keys: number;
  deleted: number;
  shadow: { stored: number; matched: number; mismatched_explained: number; mismatched_unexplained: number; errors: number; errors_unexplained: number; error_reasons: Record<string, number>; missing: number };
  faults: Record<string, number>;
  faults_skipped: Record<string, number>;
  conductor: { task_retries: number; timed_out: number; handed_back: number };
  rescues: { infra: number; stalled_workflows: number };
  restarts: Record<string, number>;
  problems: string[];
}

export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  const log = o.log ?? ((s: string) => process.stderr.write(`[chaos] ${s}\n`));
  const rand = seeded(o.seed);
  const kinds = o.kinds ?? FAULT_KINDS;
  rmSync(o.workDir, { recursive: true, force: true });
  mkdirSync(o.workDir, { recursive: true });
  const stack = await startStack({ workDir: o.workDir, database: o.database, log, responseTimeoutSeconds: RESPONSE_TIMEOUT_SECONDS });
  const problems: string[] = [];
  const faults: FaultRecord[] = [];
  const restarts: Record<string, number> = {};
  const subs: Submitted[] = [];
  const auth = { authorization: `Bearer ${stack.token}` };
  const s3 = new S3Client({ endpoint: stack.env.S3_ENDPOINT, region: "us-east-1", forcePathStyle: true, credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } });
  let uploading = 0;
  let stopping = false;
  // ends every client loop (uploads retried, SSE followers resuming) once the run is over:
  // left alone they kept reconnecting to a stopped API for minutes and held the process open
  const halt = new AbortController();
  const bounded = (ms: number): AbortSignal => AbortSignal.any([AbortSignal.timeout(Math.max(1, ms)), halt.signal]);
  try {
    const inputs = await buildInputs(o.workDir, s3);
    const api = (p: string, init: RequestInit = {}): Promise<Response> =>
      fetch(`${stack.apiUrl}${p}`, { ...init, headers: { ...auth, ...(init.headers as Record<string, string>) }, signal: init.signal ?? AbortSignal.timeout(15_000) });

    /** submit one input; a client retries with the same Idempotency-Key until it gets an answer */
    const submit = async (s: Submitted, kind: InputKind): Promise<void> => {
      // a patient client: a Conductor restart on a loaded machine can take minutes
      const deadline = Date.now() + 480_000;
      while (Date.now() < deadline && !halt.signal.aborted) {
        s.attempts++;
        const b = await kind.build();
        uploading++;
        try {
          const init: RequestInit & { duplex?: string } =
            "json" in b
              ? { method: "POST", body: JSON.stringify(b.json), headers: { "content-type": "application/json", "idempotency-key": s.idempotencyKey } }
              : { method: "POST", body: throttled(b.body, 400 * 1024), duplex: "half", headers: { "content-type": b.contentType, "content-length": String(b.body.length), "idempotency-key": s.idempotencyKey } };
          const res = await api("/v1/recordings", { ...init, signal: bounded(60_000) });
          if (res.status === 202 || res.status === 200 || res.status === 201) {
            s.id = ((await res.json()) as { id: string }).id;
            s.acceptedAt = Date.now();
            return;
          }
          const text = await res.text();
          s.errors.push(`${res.status} ${text.slice(0, 120)}`);
          if (res.status >= 500 || res.status === 429 || res.status === 409) {
            await sleep(1000);
            continue;
          }
          s.refused = `${res.status} ${text.slice(0, 200)}`;
          return;
        } catch (err) {
          s.errors.push((err as Error).message.slice(0, 120));
          await sleep(1000); // the API died under the request: send it again
        } finally {
          uploading--;
        }
      }
      s.refused = `no answer within 480 s (${s.attempts} attempts: ${s.errors.slice(-4).join(" | ")})`;
    };

    /** follow a recording's SSE to its end, resuming after the last id seen when the stream breaks */
    const follow = async (s: Submitted): Promise<void> => {
      let last: number | undefined;
      const until = Date.now() + ((o.drainMinutes ?? 6) + o.minutes + 2) * 60_000;
      while (Date.now() < until && !halt.signal.aborted) {
        try {
          const res = await fetch(`${stack.apiUrl}/v1/recordings/${s.id}/events`, {
            headers: { ...auth, accept: "text/event-stream", ...(last !== undefined ? { "last-event-id": String(last) } : {}) },
            signal: bounded(until - Date.now()),
          });
          if (res.status === 404 && s.deleted) return;
          if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
          const dec = new TextDecoder();
          let buf = "";
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
            buf += dec.decode(chunk, { stream: true });
            let i;
            while ((i = buf.indexOf("\n\n")) >= 0) {
              const block = buf.slice(0, i);
              buf = buf.slice(i + 2);
              const lines = block.split("\n");
              const event = lines.find((l) => l.startsWith("event: "))?.slice(7) ?? "message";
              const id = lines.find((l) => l.startsWith("id: "))?.slice(4);
              const data = lines.filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
              if (!data) continue;
              const parsed = JSON.parse(data) as { status?: string; step?: string };
              if (id !== undefined) {
                last = Number(id);
                s.seen.push({ id: last, event, status: `${parsed.step ?? ""}:${parsed.status ?? ""}` });
              }
              if (event === "end") {
                s.endedAt = Date.now();
                return;
              }
            }
          }
        } catch {
          /* the API went away mid-stream: resume */
        }
        if (s.deleted || halt.signal.aborted) return;
        s.reconnects++;
        await sleep(1000);
      }
    };

    // ---- baseline: each input once, before any fault, gives the words to expect ----
    log("baseline: each input once without faults");
    const baseline = new Map<string, { status: string; words: string[] }>();
    for (const kind of inputs) {
      const s: Submitted = { n: -1, input: kind.name, bad: kind.bad, idempotencyKey: `baseline-${kind.name}-${randomUUID()}`, attempts: 0, seen: [], reconnects: 0, errors: [] };
      await submit(s, kind);
      if (!s.id) throw new Error(`baseline ${kind.name} was refused: ${s.refused}`);
      await follow(s);
      const rec = (await (await api(`/v1/recordings/${s.id}`)).json()) as { status: string; result?: { words: { text: string; speaker: number }[] } };
      const words = await resultWords(stack, s.id);
      baseline.set(kind.name, { status: rec.status, words });
      log(`baseline ${kind.name}: ${rec.status}, ${words.length} words`);
      if (!kind.bad && rec.status !== "completed") throw new Error(`baseline ${kind.name} did not complete (${rec.status}): the stack is not healthy`);
    }

    // ---- the stream of recordings ----
    const endAt = Date.now() + o.minutes * 60_000;
    const inFlight = o.inFlight ?? 3;
    let n = 0;
    const running = new Set<Promise<void>>();
    const deletions: Promise<void>[] = [];
    const submitter = (async () => {
      while (Date.now() < endAt) {
        if (running.size >= inFlight) {
          await Promise.race(running);
          continue;
        }
        const kind = inputs[Math.floor(rand() * inputs.length)]!;
        const s: Submitted = { n: n++, input: kind.name, bad: kind.bad, idempotencyKey: `chaos-${o.seed}-${n}-${randomUUID().slice(0, 8)}`, attempts: 0, seen: [], reconnects: 0, errors: [] };
        subs.push(s);
        // about one in eight is deleted by its owner while it runs
        const doomed = rand() < 0.125;
        const p = (async () => {
          await submit(s, kind);
          if (!s.id) return;
          if (doomed) {
            deletions.push(
              (async () => {
                await sleep(3000 + rand() * 8000);
                for (let i = 0; i < 30; i++) {
                  try {
                    const r = await api(`/v1/recordings/${s.id}`, { method: "DELETE" });
                    if (r.status === 204 || r.status === 404) {
                      s.deleted = true;
                      return;
                    }
                  } catch {
                    /* API down: again */
                  }
                  await sleep(2000);
                }
              })(),
            );
          }
          await follow(s);
        })();
        running.add(p);
        void p.finally(() => running.delete(p));
        await sleep(500 + rand() * 1500);
      }
    })();

    // ---- the faults ----
    const [gapMin, gapMax] = o.gapSeconds ?? [5, 9];
    const schedule = faultSchedule(rand, kinds, Math.ceil((o.minutes * 60) / gapMin) + kinds.length);
    const paused = new Set<number>();
    const injector = (async () => {
      await sleep(3000);
      for (const kind of schedule) {
        if (Date.now() >= endAt || stopping) break;
        const rec: FaultRecord = { kind, at: Date.now(), detail: "" };
        try {
          rec.detail = await inject(kind, stack, rand, () => uploading, paused, restarts);
        } catch (err) {
          rec.detail = `could not inject: ${(err as Error).message}`;
          rec.skipped = true;
        }
        if (rec.detail.startsWith("skipped")) rec.skipped = true;
        faults.push(rec);
        log(`fault ${kind}: ${rec.detail}`);
        await sleep((gapMin + rand() * (gapMax - gapMin)) * 1000);
      }
    })();

    await Promise.all([submitter, injector]);
    log(`injection over: ${subs.length} submitted, ${faults.filter((f) => !f.skipped).length} faults; letting everything finish`);
    // whatever is still down comes back
    for (const pid of paused) {
      try {
        process.kill(pid, "SIGCONT");
      } catch {
        /* gone */
      }
    }
    if (!stack.s3.alive()) await stack.startS3();
    if (!stack.api.alive()) {
      stack.api.start();
      await stack.waitApi();
    }
    if (!stack.conductorWorkers.alive()) stack.conductorWorkers.start();

    const drainEnd = Date.now() + (o.drainMinutes ?? 6) * 60_000;
    const all = Promise.all([...running, ...deletions]);
    // (a plain sleep in the race would stay pending for the rest of the drain time and keep the process alive)
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, Math.max(0, drainEnd - Date.now()));
      void all.finally(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    stopping = true;

    // ---- checks ----
    log("checking");
    return await check(stack, o, subs, baseline, faults, restarts, problems, s3);
  } finally {
    stopping = true;
    halt.abort();
    await stack.stop().catch((err: unknown) => log(`stopping the stack: ${(err as Error).message}`));
    s3.destroy();
  }
}

async function resultWords(stack: Stack, id: string): Promise<string[]> {
  const res = await fetch(`${stack.apiUrl}/v1/recordings/${id}/transcript`, { headers: { authorization: `Bearer ${stack.token}` } });
  if (res.status !== 200) {
    const rec = (await (await fetch(`${stack.apiUrl}/v1/recordings/${id}`, { headers: { authorization: `Bearer ${stack.token}` } })).json()) as { result?: { words: { text: string; speaker: number }[] } };
    return (rec.result?.words ?? []).map((w) => `${w.speaker}:${w.text}`);
  }
  const body = (await res.json()) as { words?: { text: string; speaker: number }[] };
  return (body.words ?? []).map((w) => `${w.speaker}:${w.text}`);
}

/**
 * What a stuck recording was waiting for, for the report: its workflow's status and every
 * task attempt that is not done (with how long ago it last moved), and the faults since it
 * was accepted. CI keeps only the failing assertion's message, so this is the whole story.
 */
async function whereStuck(stack: Stack, rec: { workflow_id?: string | null }, s: Submitted, faults: FaultRecord[]): Promise<string> {
  const since = faults.filter((f) => !f.skipped && s.acceptedAt !== undefined && f.at >= s.acceptedAt - 20_000).map((f) => `${f.kind}@+${Math.round((f.at - (s.acceptedAt ?? 0)) / 1000)}s`);
  const head = `accepted ${s.acceptedAt ? Math.round((Date.now() - s.acceptedAt) / 1000) : "?"} s ago, follower saw ${s.seen.length} events (last ${s.seen.at(-1)?.status ?? "none"}), faults since: ${since.join(" ") || "none"}`;
  if (!rec.workflow_id) return `${head}; no workflow id`;
  try {
    const res = await fetch(`${stack.conductorUrl}/workflow/${rec.workflow_id}?includeTasks=true`, { signal: AbortSignal.timeout(15_000) });
    if (res.status !== 200) return `${head}; workflow ${rec.workflow_id}: HTTP ${res.status}`;
    const wf = (await res.json()) as { status: string; reasonForIncompletion?: string; updateTime?: number; tasks?: { referenceTaskName: string; status: string; retryCount?: number; updateTime?: number; workerId?: string }[] };
    const now = Date.now();
    const open = (wf.tasks ?? []).filter((t) => !["COMPLETED", "SKIPPED"].includes(t.status));
    const tasks = open.map((t) => `${t.referenceTaskName}:${t.status}#${t.retryCount ?? 0}${t.workerId ? `@${t.workerId}` : ""} (${t.updateTime ? Math.round((now - t.updateTime) / 1000) : "?"} s)`);
    return `${head}; workflow ${wf.status}${wf.reasonForIncompletion ? ` (${wf.reasonForIncompletion.slice(0, 200)})` : ""}, updated ${wf.updateTime ? Math.round((now - wf.updateTime) / 1000) : "?"} s ago, ${wf.tasks?.length ?? 0} tasks, not done: ${tasks.join(", ") || "none"}`;
  } catch (err) {
    return `${head}; workflow ${rec.workflow_id}: ${(err as Error).message}`;
  }
}

/** decoder processes below a step child (node's own processes are all named MainThread) */
const DECODER = /^(pocketsphinx|ffmpeg|ffprobe|sox)/;

async function inject(kind: FaultKind, stack: Stack, rand: () => number, uploading: () => number, paused: Set<number>, restarts: Record<string, number>): Promise<string> {
  const pick = <T>(xs: T[]): T | undefined => (xs.length ? xs[Math.floor(rand() * xs.length)] : undefined);
  const sup = stack.conductorWorkers.pid;
  const tree = (): ReturnType<typeof descendants> => (sup && stack.conductorWorkers.alive() ? descendants(sup) : []);
  const kill = (pid: number): void => {
    process.kill(pid, "SIGKILL");
  };
  /** a target may not exist at this instant (no transcription running): wait a little for one */
  const waitFor = async <T>(f: () => T | undefined, ms = 10_000): Promise<T | undefined> => {
    const end = Date.now() + ms;
    for (;;) {
      const v = f();
      if (v !== undefined || Date.now() > end) return v;
      await sleep(200);
    }
  };
  switch (kind) {
    case "kill_worker_child": {
      const c = await waitFor(() => pick(tree().filter((p) => p.depth === 1)));
      if (!c) return "skipped: no worker child";
      kill(c.pid);
      return `SIGKILL worker child ${c.pid}`;
    }
    case "kill_step_child": {
      const c = await waitFor(() => pick(tree().filter((p) => p.depth === 2 && !DECODER.test(p.comm))));
      if (!c) return "skipped: no step child";
      kill(c.pid);
      return `SIGKILL step child ${c.pid}`;
    }
    case "kill_decoder": {
      const c = await waitFor(() => pick(tree().filter((p) => DECODER.test(p.comm))));
      if (!c) return "skipped: no decoder process";
      kill(c.pid);
      return `SIGKILL decoder ${c.comm} ${c.pid}`;
    }
    case "kill_supervisor": {
      await stack.restartSupervisor();
      restarts.supervisor = (restarts.supervisor ?? 0) + 1;
      return "SIGKILL worker supervisor (children orphaned), started again";
    }
    case "kill_api":
    case "kill_api_mid_upload": {
      if (kind === "kill_api_mid_upload" && !(await waitFor(() => (uploading() > 0 ? true : undefined), 15_000))) return "skipped: no upload in flight";
      const during = uploading();
      await stack.restartApi();
      restarts.api = (restarts.api ?? 0) + 1;
      await stack.waitApi();
      return `SIGKILL API (${during} upload(s) in flight, SSE followers connected), started again`;
    }
    case "restart_conductor": {
      const t0 = Date.now();
      await stack.restartConductor();
      restarts.conductor = (restarts.conductor ?? 0) + 1;
      return `SIGKILL Conductor server, started again (healthy after ${Math.round((Date.now() - t0) / 1000)} s)`;
    }
    case "restart_redis": {
      await stack.restartRedis();
      restarts.redis = (restarts.redis ?? 0) + 1;
      return "SIGKILL Redis, started again (append-only file)";
    }
    case "restart_postgres": {
      if (!stack.ownPostgres) return "skipped: the shared Postgres cluster is not ours to restart";
      await stack.restartPostgres();
      restarts.postgres = (restarts.postgres ?? 0) + 1;
      return "Postgres restarted in immediate mode (crash recovery)";
    }
    case "stop_s3_20s": {
      stack.stopS3();
      await sleep(20_000);
      await stack.startS3();
      restarts.s3 = (restarts.s3 ?? 0) + 1;
      return "S3 server down for 20 s";
    }
    case "pause_worker_host": {
      const c = await waitFor(() => pick(tree().filter((p) => p.depth === 1)));
      if (!c) return "skipped: no worker host";
      // the host and its step children stop; past the response timeout Conductor gives its tasks to another
      const group = [c.pid, ...descendants(c.pid).map((d) => d.pid)];
      for (const p of group) {
        try {
          process.kill(p, "SIGSTOP");
          paused.add(p);
        } catch {
          /* gone */
        }
      }
      await sleep(PAUSE_SECONDS * 1000);
      for (const p of group) {
        try {
          process.kill(p, "SIGCONT");
        } catch {
          /* gone */
        }
        paused.delete(p);
      }
      return `SIGSTOP worker host ${c.pid} (+${group.length - 1}) for ${PAUSE_SECONDS} s (response timeout ${RESPONSE_TIMEOUT_SECONDS} s), then SIGCONT (a zombie that wakes up late)`;
    }
  }
}

async function check(
  stack: Stack,
  o: ChaosOptions,
  subs: Submitted[],
  baseline: Map<string, { status: string; words: string[] }>,
  faults: FaultRecord[],
  restarts: Record<string, number>,
  problems: string[],
  s3: S3Client,
): Promise<ChaosReport> {
  const pool = new pg.Pool({ connectionString: stack.env.DATABASE_URL, max: 2 });
  const redis = new Redis(stack.env.REDIS_URL!, { maxRetriesPerRequest: 2 });
  const auth = { authorization: `Bearer ${stack.token}` };
  const get = async (p: string): Promise<Response> => fetch(`${stack.apiUrl}${p}`, { headers: auth, signal: AbortSignal.timeout(15_000) });
  try {
    const accepted = subs.filter((s) => s.id);
    const live = accepted.filter((s) => !s.deleted);
    let completed = 0, withFailedTracks = 0, failedBad = 0, failedUnexpected = 0, lost = 0, stuck = 0, wordMismatches = 0, sseProblems = 0;
    const faultWindow = (s: Submitted): boolean => faults.some((f) => !f.skipped && s.acceptedAt !== undefined && f.at >= s.acceptedAt - 20_000 && f.at <= (s.endedAt ?? Date.now()));

    for (const s of live) {
      const res = await get(`/v1/recordings/${s.id}`);
      if (res.status === 404) {
        lost++;
        problems.push(`lost: recording ${s.id} (${s.input}) accepted, now unknown`);
        continue;
      }
      const rec = (await res.json()) as { status: string; error: string | null; workflow_id?: string | null; result?: { tracks?: { status: string }[] } };
      if (rec.status !== "completed" && rec.status !== "failed") {
        stuck++;
        problems.push(`stuck: recording ${s.id} (${s.input}) is ${rec.status}; ${await whereStuck(stack, rec, s, faults)}`);
        continue;
      }
      if (rec.status === "failed") {
        if (s.bad && rec.error) failedBad++;
        else {
          failedUnexpected++;
          problems.push(`failed: recording ${s.id} (${s.input}): ${rec.error}`);
        }
      } else {
        completed++;
        if ((rec.result?.tracks ?? []).some((t) => t.status === "failed")) withFailedTracks++;
        // the words: exactly those of the same input without faults
        const words = await resultWords(stack, s.id!);
        const base = baseline.get(s.input)!;
        if (base.status === "completed" && JSON.stringify(words) !== JSON.stringify(base.words)) {
          wordMismatches++;
          problems.push(`words: recording ${s.id} (${s.input}) has ${words.length} words, the fault-free run ${base.words.length}`);
        }
      }
      // SSE replay from the start: every event once, in order, ending in the final state
      const replay = await replayEvents(stack, s.id!);
      const ids = replay.filter((e) => e.id !== undefined).map((e) => e.id!);
      const ordered = ids.every((id, i) => i === 0 || id > ids[i - 1]!);
      const end = replay.at(-1);
      if (!ordered || new Set(ids).size !== ids.length || end?.event !== "end" || end.status !== rec.status) {
        sseProblems++;
        problems.push(`sse: recording ${s.id}: ordered=${ordered} unique=${new Set(ids).size === ids.length} end=${end?.event}:${end?.status} status=${rec.status}`);
      }
      // what the follower saw across restarts: the same events, each once
      const followed = s.seen.map((e) => e.id);
      if (new Set(followed).size !== followed.length || followed.some((id, i) => i > 0 && id <= followed[i - 1]!) || followed.length !== ids.length) {
        sseProblems++;
        const missing = replay.filter((e) => e.id !== undefined && !followed.includes(e.id)).map((e) => `${e.id}:${e.step ?? ""}:${e.status ?? ""}`);
        problems.push(`sse follower: recording ${s.id}: saw ${followed.length} events (${new Set(followed).size} distinct), replay has ${ids.length}, reconnects ${s.reconnects}, missed ${missing.join(",")}`);
      }
    }

    // exactly one Result, one recording per Idempotency-Key
    let duplicates = 0;
    const resultRows = await pool.query<{ recording_id: string; n: string }>(`SELECT recording_id, count(*) AS n FROM results WHERE engine = 'conductor' GROUP BY recording_id HAVING count(*) > 1`);
    duplicates += resultRows.rowCount ?? 0;
    const recCount = Number((await pool.query(`SELECT count(*) AS n FROM recordings`)).rows[0].n);
    const expected = accepted.filter((s) => !s.deleted).length + baseline.size;
    if (recCount !== expected) {
      duplicates += Math.max(0, recCount - expected);
      problems.push(`recordings: ${recCount} rows, ${expected} expected (accepted and not deleted, plus the baseline)`);
    }

    // nothing left of deleted recordings (the sweeper gets a minute to finish its part)
    const deleted = accepted.filter((s) => s.deleted);
    let orphans = 0;
    const leftovers = async (): Promise<string[]> => {
      const out: string[] = [];
      for (const s of deleted) {
        const objs = await s3.send(new ListObjectsV2Command({ Bucket: "trackscribe", Prefix: `recordings/${s.id}/` }));
        if (objs.KeyCount) out.push(`objects of deleted ${s.id}: ${objs.KeyCount}`);
        for (const t of ["recordings", "tracks", "results", "events", "step_runs", "shadow_runs", "pipeline_runs"]) {
          const col = t === "recordings" ? "id" : "recording_id";
          const n = Number((await pool.query(`SELECT count(*) AS n FROM ${t} WHERE ${col} = $1`, [s.id])).rows[0].n);
          if (n) out.push(`${t} rows of deleted ${s.id}: ${n}`);
        }
        const wfs = (await (await fetch(`${stack.conductorUrl}/workflow/multitrack_diarization/correlated/${s.id}?includeClosed=false&includeTasks=false`)).json()) as unknown[];
        if (wfs.length) out.push(`running workflows of deleted ${s.id}: ${wfs.length}`);
        let cursor = "0";
        let keys = 0;
        do {
          const [next, batch] = await redis.scan(cursor, "MATCH", `chaos:*${encodeURIComponent(s.id!)}*`, "COUNT", 1000);
          cursor = next;
          keys += batch.length;
        } while (cursor !== "0");
        if (keys) out.push(`BullMQ keys of deleted ${s.id}: ${keys}`);
      }
      const up = await s3.send(new ListMultipartUploadsCommand({ Bucket: "trackscribe" }));
      if (up.Uploads?.length) out.push(`pending multipart uploads: ${up.Uploads.length}`);
      return out;
    };
    let left = await leftovers();
    for (let i = 0; i < 18 && left.length; i++) {
      await sleep(5000);
      left = await leftovers();
    }
    orphans = left.filter((l) => !l.startsWith("BullMQ keys")).length;
    const orphanBullmqKeys = left.length - orphans;
    problems.push(...left.map((l) => `orphan: ${l}`));

    // shadow comparisons: the shadow engine may still be finishing (or, its API killed, waiting
    // to be failed by another API process after a minute without heartbeat)
    for (let i = 0; i < 36; i++) {
      const r = await pool.query(`SELECT count(*) AS n FROM shadow_runs WHERE status = 'running'`);
      if (Number(r.rows[0].n) === 0) break;
      await sleep(5000);
    }
    const shadow = { stored: 0, matched: 0, mismatched_explained: 0, mismatched_unexplained: 0, errors: 0, errors_unexplained: 0, error_reasons: {} as Record<string, number>, missing: 0 };
    for (const s of live) {
      const r = await pool.query<{ status: string; error: string | null }>(`SELECT status, error FROM shadow_runs WHERE recording_id = $1`, [s.id]);
      const row = r.rows[0];
      if (!row) {
        shadow.missing++;
        problems.push(`shadow: no comparison stored for ${s.id}`);
        continue;
      }
      shadow.stored++;
      if (row.status === "matched") shadow.matched++;
      else if (row.status === "error") {
        // a shadow run ends in error when a fault took its orchestrator away (its API killed) or
        // outlasted what it waits for; classified by reason, and only with a fault in its lifetime
        shadow.errors++;
        const reason = (row.error ?? "no reason").split("\n")[0]!.replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, "…").replace(/\d+/g, "N").slice(0, 80);
        shadow.error_reasons[reason] = (shadow.error_reasons[reason] ?? 0) + 1;
        if (!faultWindow(s)) {
          shadow.errors_unexplained++;
          problems.push(`shadow: ${s.id} ended in error with no fault in its lifetime: ${reason}`);
        }
      }
      else if (row.status === "mismatched") {
        if (faultWindow(s) || s.bad) shadow.mismatched_explained++;
        else {
          shadow.mismatched_unexplained++;
          problems.push(`shadow: ${s.id} mismatched with no fault in its lifetime`);
        }
      } else {
        shadow.missing++;
        problems.push(`shadow: ${s.id} still ${row.status}`);
      }
    }

    // Conductor's own counts
    const conductor = { task_retries: 0, timed_out: 0, handed_back: 0 };
    for (const s of live) {
      const rec = (await (await get(`/v1/recordings/${s.id}`)).json()) as { workflow_id?: string };
      if (!rec.workflow_id) continue;
      const wf = (await (await fetch(`${stack.conductorUrl}/workflow/${rec.workflow_id}?includeTasks=true`)).json()) as { tasks?: { status: string; retryCount?: number; pollCount?: number; taskType: string }[] };
      for (const t of wf.tasks ?? []) {
        if ((t.retryCount ?? 0) > 0) conductor.task_retries++;
        if (t.status === "TIMED_OUT") conductor.timed_out++;
        if ((t.pollCount ?? 0) > 1) conductor.handed_back++;
      }
    }
    const count = (file: string, re: RegExp): number => {
      try {
        return readFileSync(file, "utf8").split("\n").filter((l) => re.test(l)).length;
      } catch {
        return 0;
      }
    };
    const rescues = { infra: count(stack.logs.api, /infra rescue: workflow retried/), stalled_workflows: count(stack.logs.conductorWorkers, /reconciler rescued a stalled workflow/) };
    restarts.supervised_children = count(stack.logs.conductorWorkers, /"msg":"child exited/) + count(stack.logs.bullmqWorkers, /"msg":"child exited/);

    const byKind = (skipped: boolean): Record<string, number> => {
      const out: Record<string, number> = {};
      for (const f of faults) if (Boolean(f.skipped) === skipped) out[f.kind] = (out[f.kind] ?? 0) + 1;
      return out;
    };
    const refused = subs.filter((s) => s.refused).length;
    for (const s of subs.filter((x) => x.refused)) problems.push(`refused: submission ${s.n} (${s.input}): ${s.refused}`);
    return {
      seed: o.seed,
      minutes: o.minutes,
      recordings: subs.length,
      accepted: accepted.length,
      refused,
      completed,
      completed_with_failed_tracks: withFailedTracks,
      failed_bad_by_design: failedBad,
      failed_unexpected: failedUnexpected,
      lost,
      stuck,
      duplicates,
      word_mismatches: wordMismatches,
      sse_problems: sseProblems,
      orphans,
      orphan_bullmq_keys: orphanBullmqKeys,
      deleted: deleted.length,
      shadow,
      faults: byKind(false),
      faults_skipped: byKind(true),
      conductor,
      rescues,
      restarts,
      problems,
    };
  } finally {
    await pool.end();
    redis.disconnect();
  }
}

async function replayEvents(stack: Stack, id: string): Promise<{ id?: number; event: string; status?: string; step?: string }[]> {
  const res = await fetch(`${stack.apiUrl}/v1/recordings/${id}/events`, { headers: { authorization: `Bearer ${stack.token}`, accept: "text/event-stream" }, signal: AbortSignal.timeout(30_000) });
  const text = await res.text();
  return text
    .split("\n\n")
    .filter((b) => b.includes("data: "))
    .map((block) => {
      const lines = block.split("\n");
      const id = lines.find((l) => l.startsWith("id: "))?.slice(4);
      const data = JSON.parse(lines.filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n")) as { status?: string; step?: string };
      return { ...(id === undefined ? {} : { id: Number(id) }), event: lines.find((l) => l.startsWith("event: "))?.slice(7) ?? "message", ...(data.status ? { status: data.status } : {}), ...(data.step ? { step: data.step } : {}) };
    });
}

/** the report as a table for people */
export function formatReport(r: ChaosReport): string {
  const rows: [string, string | number][] = [
    ["seed / minutes", `${r.seed} / ${r.minutes}`],
    ["recordings submitted", r.recordings],
    ["accepted / refused", `${r.accepted} / ${r.refused}`],
    ["completed", r.completed],
    ["  of them with a failed track", r.completed_with_failed_tracks],
    ["failed, bad by design", r.failed_bad_by_design],
    ["failed, unexpected", r.failed_unexpected],
    ["LOST", r.lost],
    ["STUCK", r.stuck],
    ["DUPLICATES", r.duplicates],
    ["word mismatches", r.word_mismatches],
    ["SSE problems", r.sse_problems],
    ["deleted while running / orphans / with BullMQ keys left", `${r.deleted} / ${r.orphans} / ${r.orphan_bullmq_keys}`],
    ["shadow stored / matched", `${r.shadow.stored} / ${r.shadow.matched}`],
    ["shadow mismatched: fault-explained / unexplained", `${r.shadow.mismatched_explained} / ${r.shadow.mismatched_unexplained}`],
    ["shadow errors / with no fault in their lifetime / missing", `${r.shadow.errors} / ${r.shadow.errors_unexplained} / ${r.shadow.missing}`],
    ...Object.entries(r.shadow.error_reasons).map(([k, v]): [string, string] => [`shadow error: ${k}`, String(v)]),
    ...Object.entries(r.faults).map(([k, v]): [string, number] => [`fault ${k}`, v]),
    ...Object.entries(r.faults_skipped).map(([k, v]): [string, number] => [`fault ${k} (skipped: no target)`, v]),
    ["Conductor tasks retried / timed out / handed back", `${r.conductor.task_retries} / ${r.conductor.timed_out} / ${r.conductor.handed_back}`],
    ["rescues: infra (API) / stalled workflows (workers)", `${r.rescues.infra} / ${r.rescues.stalled_workflows}`],
    ...Object.entries(r.restarts).map(([k, v]): [string, number] => [`restarts ${k}`, v]),
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join("\n");
}

export const lossFound = (r: ChaosReport): boolean =>
  r.lost > 0 || r.stuck > 0 || r.duplicates > 0 || r.failed_unexpected > 0 || r.word_mismatches > 0 || r.sse_problems > 0 || r.orphans > 0 || r.orphan_bullmq_keys > 0 || r.shadow.missing > 0 || r.shadow.mismatched_unexplained > 0 || r.shadow.errors_unexplained > 0;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const minutes = Number(arg("minutes", "3"));
  const seed = Number(arg("seed", "1"));
  if (!(minutes > 0 && minutes <= 120) || !Number.isInteger(seed)) {
    process.stderr.write("usage: npm run chaos -- [--minutes 0.5..120] [--seed N] [--work-dir DIR] [--database NAME]\n");
    process.exit(2);
  }
  const workDir = path.resolve(arg("work-dir", path.join(ROOT, ".work", "chaos")));
  runChaos({ minutes, seed, workDir, database: arg("database", "trackscribe_chaos") })
    .then((r) => {
      process.stdout.write(`${formatReport(r)}\n`);
      for (const p of r.problems) process.stdout.write(`  ! ${p}\n`);
      process.stdout.write(`CHAOS ${JSON.stringify(r)}\n`);
      writeFileSync(path.join(workDir, "report.json"), JSON.stringify(r, null, 2));
      process.exit(lossFound(r) ? 1 : 0);
    })
    .catch((err: Error) => {
      process.stderr.write(`chaos: ${err.stack ?? err.message}\n`);
      for (const pid of strays(path.join(workDir, "workers-conductor"))) process.kill(pid, "SIGKILL");
      process.exit(1);
    });
}
