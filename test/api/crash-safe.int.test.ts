/**
 * Crash-safe creation, with the API as its own process (`trackscribe serve`) killed with
 * SIGKILL at the two points between a recording's row and its stored workflow id
 * (TEST_CRASH_AT, honoured only with NODE_ENV=test), against Postgres, s3rver, the real
 * Conductor server and the Conductor worker host (in this process):
 *   - after_row: the row and its Idempotency-Key are committed, no workflow exists. The
 *     restarted API's reconciler starts it; it completes; one workflow in all.
 *   - after_workflow_start: the workflow runs, the row does not know it. The restarted API
 *     finds it by correlation id instead of starting another; it completes; one workflow.
 *   - the client's retry of the killed request with the same Idempotency-Key gets the same
 *     recording, never a second one.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { openAsBlob } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { spawnServe, startApiServices, startInProcessWorkers, type ApiServices, type ServeProcess } from "./harness.ts";

const TOKEN = "crash-test-token-0123";
const auth = { authorization: `Bearer ${TOKEN}` };
let svc: ApiServices;
let stopRuntime: (() => Promise<unknown>) | undefined;
let fixtureDir = "";
const children: ChildProcess[] = [];

before(async () => {
  svc = await startApiServices({ API_TOKEN: TOKEN });
  const { buildFixtures, defaultFixtureDir } = await import("../../scripts/build-fixtures.ts");
  fixtureDir = path.dirname((await buildFixtures(defaultFixtureDir())).manifestPath);
  stopRuntime = await startInProcessWorkers(svc);
});
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await stopRuntime?.();
  await svc?.close();
});

type Api = ServeProcess;

/** `trackscribe serve` with its reconciler on a short cycle (the test's subject); killed children are collected for cleanup. */
async function serve(extra: Record<string, string> = {}): Promise<Api> {
  const api = await spawnServe(svc, TOKEN, { API_RECONCILE_SECONDS: "0.5", START_GRACE_SECONDS: "1", ...extra });
  children.push(api.child);
  return api;
}

async function fixtureForm(): Promise<FormData> {
  const manifest = JSON.parse(await readFile(path.join(fixtureDir, "manifest.json"), "utf8")) as { language: string; tracks: { path: string; participant: string; offset_seconds: number }[] };
  const form = new FormData();
  form.append("manifest", JSON.stringify({ language: manifest.language, tracks: manifest.tracks.map(({ participant, offset_seconds }) => ({ participant, offset_seconds })) }));
  for (const t of manifest.tracks) form.append("track", await openAsBlob(path.join(fixtureDir, t.path)), t.path);
  return form;
}

const rows = async () =>
  (await svc.pool.query<{ id: string; status: string; workflow_id: string | null; error: string | null }>(`SELECT id, status, workflow_id, error FROM recordings ORDER BY created_at`)).rows;

async function correlated(id: string): Promise<{ workflowId: string; status: string }[]> {
  const res = await svc.conductor(`/workflow/multitrack_diarization/correlated/${id}?includeClosed=true&includeTasks=false`);
  return (await res.json()) as { workflowId: string; status: string }[];
}

async function until<T>(what: string, f: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

for (const point of ["after_row", "after_workflow_start"] as const) {
  test(`killed ${point.replace(/_/g, " ")}: the restarted API's reconciler leaves nothing queued, starts nothing twice, and the recording completes`, async () => {
    const before = new Set((await rows()).map((r) => r.id));
    const idem = `crash-${point}`;
    const doomed = await serve({ TEST_CRASH_AT: point });
    const sent = await fetch(`${doomed.url}/v1/recordings`, { method: "POST", body: await fixtureForm(), headers: { ...auth, "idempotency-key": idem } }).then(
      (r) => `answered ${r.status}`,
      () => "connection lost",
    );
    assert.equal(sent, "connection lost", "the API died mid-request");
    assert.deepEqual(await doomed.exited, { code: null, signal: "SIGKILL" });

    const created = (await rows()).filter((r) => !before.has(r.id));
    assert.equal(created.length, 1, "the row was committed before the crash");
    const rec = created[0]!;
    assert.equal(rec.workflow_id, null);
    const keyRow = (await svc.pool.query(`SELECT state, recording_id FROM idempotency_keys WHERE key = $1`, [idem])).rows[0];
    assert.deepEqual(keyRow, { state: "done", recording_id: rec.id }, "the key was completed in the row's transaction");
    const startedBefore = await correlated(rec.id);
    assert.equal(startedBefore.length, point === "after_row" ? 0 : 1);

    const api = await serve();
    try {
      // the client retries its request: the same recording, not a second one
      const retried = await fetch(`${api.url}/v1/recordings`, { method: "POST", body: await fixtureForm(), headers: { ...auth, "idempotency-key": idem } });
      assert.ok(retried.status === 200 || retried.status === 202, `retry answered ${retried.status}`);
      assert.equal(((await retried.json()) as { id: string }).id, rec.id);
      assert.equal(retried.headers.get("idempotent-replayed"), "true");

      const workflowId = await until("the reconciler to give the recording its workflow", async () => (await rows()).find((r) => r.id === rec.id)?.workflow_id ?? undefined, 30_000);
      if (point === "after_workflow_start") assert.equal(workflowId, startedBefore[0]!.workflowId, "the workflow that did start was adopted");
      const done = await until(
        "the recording to end",
        async () => {
          const r = (await rows()).find((x) => x.id === rec.id)!;
          return r.status === "completed" || r.status === "failed" ? r : undefined;
        },
        300_000,
      );
      assert.equal(done.status, "completed", done.error ?? "");
      assert.equal((await correlated(rec.id)).length, 1, "one workflow in all");
      assert.equal((await rows()).filter((r) => !before.has(r.id)).length, 1, "one recording in all");
      const result = await fetch(`${api.url}/v1/recordings/${rec.id}/transcript?format=json`, { headers: auth });
      assert.equal(result.status, 200);
      assert.ok(((await result.json()) as { words: unknown[] }).words.length > 0);
    } finally {
      api.child.kill("SIGTERM");
      await api.exited;
    }
  });
}
