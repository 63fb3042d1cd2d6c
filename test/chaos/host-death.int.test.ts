/**
 * Item 1 of "faults on purpose", Conductor side, with real kills: a whole worker host
 * (`trackscribe workers --engine conductor`, supervisor and children) is SIGKILLed while it
 * holds a transcription. Nobody reports the task; Conductor times it out (response timeout)
 * and, the task definition allowing no retry here (retryCount 0), fails the workflow. Before
 * the fix the recording ended `failed`; now the API's reconciler sees that a timeout, not
 * the step, spent the retries (server/infra-rescue.ts), retries the workflow, and a new host
 * completes it with the same words as an undisturbed run.
 * A second recording with INFRA_RETRY_BUDGET=0 keeps today's verdict: `failed`, with a reason
 * that says the workers stopped answering.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { openAsBlob } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { registerWorkflowDefinitions, servicesEnv, spawnServe, startApiServices, type ApiServices, type ServeProcess } from "../api/harness.ts";
import { createConductorApi } from "../../adapters/conductor/client.ts";
import { registerDefinitions } from "../../workers/conductor/definitions.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const TOKEN = "host-death-token-0123";
const auth = { authorization: `Bearer ${TOKEN}` };
let svc: ApiServices;
let fixtureDir = "";
const children: ChildProcess[] = [];

before(async () => {
  svc = await startApiServices({ API_TOKEN: TOKEN });
  const { buildFixtures, defaultFixtureDir } = await import("../../scripts/build-fixtures.ts");
  fixtureDir = path.dirname((await buildFixtures(defaultFixtureDir())).manifestPath);
  // no retry for the per-track steps, and a short response timeout: one host death is enough
  // to fail the workflow the way a few deaths exhaust the shipped retryCount
  const short = { retryCount: 0, responseTimeoutSeconds: 15 };
  await registerDefinitions(createConductorApi(svc.conductorUrl), { transcribe_track: short, prepare_track: short });
});
after(async () => {
  for (const c of children) {
    if (c.exitCode !== null || c.signalCode !== null) continue;
    killGroup(c);
    c.kill("SIGKILL");
  }
  await registerWorkflowDefinitions(svc.conductorUrl).catch(() => undefined);
  await svc?.close();
});

function killGroup(c: ChildProcess): void {
  try {
      process.kill(-c.pid!, "SIGKILL");
    } catch {
      /* already gone */
    }
  }

  /** a worker host as operators run it, in its own process group (so the whole host can be killed) */
  function workerHost(): ChildProcess {
    const c = svc.config;
    const env: Record<string, string> = {
      ...servicesEnv(svc, "warn"),
      CONDUCTOR_REGISTER: "false",
      WORK_DIR: path.join(c.WORK_DIR, `host-${children.length}`),
      RECONCILER_ENABLED: "false",
    };
    const child = spawn(process.execPath, [path.join(root, "bin", "trackscribe.mjs"), "workers", "--engine", "conductor", "-j", "1"], { cwd: root, env, stdio: "ignore", detached: true });
    children.push(child);
    return child;
  }

  async function upload(api: ServeProcess): Promise<string> {
    const manifest = JSON.parse(await readFile(path.join(fixtureDir, "manifest.json"), "utf8")) as { language: string; tracks: { path: string; participant: string; offset_seconds: number }[] };
    const form = new FormData();
    form.append("manifest", JSON.stringify({ language: manifest.language, tracks: manifest.tracks.map(({ participant, offset_seconds }) => ({ participant, offset_seconds })) }));
    for (const t of manifest.tracks) form.append("track", await openAsBlob(path.join(fixtureDir, t.path)), t.path);
    const res = await fetch(`${api.url}/v1/recordings`, { method: "POST", body: form, headers: auth });
    assert.equal(res.status, 202, await res.clone().text());
    return ((await res.json()) as { id: string }).id;
  }

  async function until<T>(what: string, f: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await f();
      if (v !== undefined) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  interface Wf {
    status: string;
    tasks: { taskType: string; status: string; referenceTaskName: string }[];
  }
  const workflow = async (id: string): Promise<Wf> => (await (await svc.conductor(`/workflow/${id}?includeTasks=true`)).json()) as Wf;
  const recording = async (api: ServeProcess, id: string) =>
    (await (await fetch(`${api.url}/v1/recordings/${id}`, { headers: auth })).json()) as { status: string; workflow_id: string; error: string | null; result?: { words?: { text: string }[] } };

  /** kill the host (process group) once it holds a transcription */
  async function killHostMidTranscription(host: ChildProcess, workflowId: string): Promise<void> {
    await until("a transcription in progress", async () => ((await workflow(workflowId)).tasks.some((t) => t.taskType === "transcribe_track" && t.status === "IN_PROGRESS") ? true : undefined), 120_000);
    killGroup(host);
  }

  let words: string[] = [];

  test("a worker host SIGKILLed mid-transcription: the timeout does not spend the step's retries; the recording completes", async () => {
    const api = await spawnServe(svc, TOKEN, { API_RECONCILE_SECONDS: "0.5" });
    children.push(api.child);
  try {
    const first = workerHost();
    const id = await upload(api);
    const wfId = await until("the workflow id", async () => (await recording(api, id)).workflow_id ?? undefined, 30_000);
    await killHostMidTranscription(first, wfId);
    // the task times out (Conductor's sweeper notices within about half a minute) and, with no
    // retry allowed, the workflow ends in Conductor…
    await until("the task to time out", async () => {
      const wf = await workflow(wfId);
      return wf.tasks.some((t) => t.status === "TIMED_OUT") ? true : undefined;
    }, 180_000);
    // …a new host takes over what the reconciler retries
    workerHost();
    const done = await until("the recording to end", async () => {
      const r = await recording(api, id);
      return r.status === "completed" || r.status === "failed" ? r : undefined;
    }, 240_000);
    assert.equal(done.status, "completed", `recording ended ${done.status}: ${done.error}`);
    // finalize stores the Result before its task's completion reaches Conductor
    const wf = await until("the workflow to complete", async () => {
      const w = await workflow(wfId);
      return w.status === "RUNNING" ? undefined : w;
    }, 60_000);
    assert.ok(wf.tasks.some((t) => t.status === "TIMED_OUT"), "a task attempt timed out (the host died holding it)");
    assert.equal(wf.status, "COMPLETED");
    words = (done.result?.words ?? []).map((w) => w.text);
    assert.ok(words.length > 0, "the transcript has words");
  } finally {
    api.child.kill("SIGTERM");
    await api.exited;
    for (const c of children) if (c.exitCode === null && c.signalCode === null) killGroup(c);
  }
});

test("with INFRA_RETRY_BUDGET=0 the same death fails the recording, saying the workers stopped answering", async () => {
  const api = await spawnServe(svc, TOKEN, { API_RECONCILE_SECONDS: "0.5", INFRA_RETRY_BUDGET: "0" });
  children.push(api.child);
  try {
    const host = workerHost();
    const id = await upload(api);
    const wfId = await until("the workflow id", async () => (await recording(api, id)).workflow_id ?? undefined, 30_000);
    await killHostMidTranscription(host, wfId);
    const done = await until("the recording to end", async () => {
      const r = await recording(api, id);
      return r.status === "completed" || r.status === "failed" ? r : undefined;
    }, 240_000);
    assert.equal(done.status, "failed");
    assert.match(done.error ?? "", /stopped answering 1 times/);
  } finally {
    api.child.kill("SIGTERM");
    await api.exited;
  }
});
