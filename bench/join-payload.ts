/**
 * `npm run bench:join`: what a waiting JOIN costs the Conductor server when the finished
 * tracks' words ride in the payload (inline) against keys into storage (what our workers
 * hand Conductor, workers/conductor/transcripts.ts), side by side in one run.
 *
 * A workflow forks three tasks behind a SYNC JOIN, like transcribe_fork; two finish at once
 * with their output, the third runs on for BENCH_JOIN_WAIT_S seconds (a long track still
 * being decoded), and the server's CPU over that wait is measured, then how long the JOIN
 * takes to complete after the third finishes. Rounds alternate inline / keys.
 *   BENCH_JOIN_MB: words per finished track, in MB (default 1: some 1.6 hours of speech)
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { startConductor } from "../scripts/conductor.ts";
import { cpuSeconds } from "../workers/supervisor/proc-stat.ts";
import { median } from "./stats.ts";

const MB = Number(process.env.BENCH_JOIN_MB ?? 1) || 1;
const WAIT_S = Number(process.env.BENCH_JOIN_WAIT_S ?? 8) || 8;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3) || 3;

const stateDir = await mkdtemp(path.join(os.tmpdir(), "bench-join-"));
const server = await startConductor({ stateDir, fresh: true, jvm: "steady" });
const u = server.url;
const call = async (p: string, body?: unknown, method = body === undefined ? "GET" : "POST"): Promise<any> => {
  const res = await fetch(u + p, { method, ...(body !== undefined ? { headers: { "content-type": "application/json" }, body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${text.slice(0, 200)}`);
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return text;
  }
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

try {
  await call("/metadata/taskdefs", ["bench_join_plan", "bench_join_track"].map((name) => ({ name, retryCount: 0, timeoutSeconds: 600, responseTimeoutSeconds: 300, ownerEmail: "trackscribe@localhost" })));
  await call(
    "/metadata/workflow",
    [
      {
        name: "bench_join_payload",
        version: 1,
        schemaVersion: 2,
        ownerEmail: "trackscribe@localhost",
        tasks: [
          { name: "bench_join_plan", taskReferenceName: "plan", type: "SIMPLE" },
          {
            name: "fork",
            taskReferenceName: "fork",
            type: "FORK_JOIN_DYNAMIC",
            inputParameters: { dynamicTasks: "${plan.output.tasks}", dynamicTasksInput: "${plan.output.inputs}" },
            dynamicForkTasksParam: "dynamicTasks",
            dynamicForkTasksInputParamName: "dynamicTasksInput",
          },
          { name: "join", taskReferenceName: "join", type: "JOIN", joinMode: "SYNC" },
        ],
      },
    ],
    "PUT",
  );
  const word = { text: "meeting", start: 1234.56, end: 1234.98, speaker: 1, confidence: 0.913 };
  const words = Array.from({ length: Math.ceil((MB * 1024 * 1024) / (JSON.stringify(word).length + 1)) }, (_, i) => ({ ...word, start: i / 3, end: i / 3 + 0.3 }));
  const output = (track: number, inline: boolean): Record<string, unknown> =>
    inline
      ? { track_index: track, engine: "pocketsphinx", decoded_seconds: 3600, track_seconds: 3600, words }
      : { track_index: track, engine: "pocketsphinx", decoded_seconds: 3600, track_seconds: 3600, words_key: `recordings/r/conductor/transcript/track-${track}.json`, word_count: words.length };

  const once = async (inline: boolean): Promise<{ cores: number; joinMs: number }> => {
    const wid = String(await call("/workflow/bench_join_payload", {}));
    const plan = await call("/tasks/poll/bench_join_plan?workerid=bench");
    await call("/tasks", {
      taskId: plan.taskId,
      workflowInstanceId: wid,
      status: "COMPLETED",
      outputData: { tasks: [0, 1, 2].map((i) => ({ name: "bench_join_track", taskReferenceName: `track_${i}` })), inputs: { track_0: {}, track_1: {}, track_2: {} } },
    });
    let tracks: any[] = [];
    for (let i = 0; i < 50 && tracks.length < 3; i++) {
      tracks = tracks.concat((await call(`/tasks/poll/batch/bench_join_track?workerid=bench&count=${3 - tracks.length}&timeout=100`)) ?? []);
    }
    if (tracks.length < 3) throw new Error("the forked tasks did not come");
    for (const t of tracks.slice(0, 2)) await call("/tasks", { taskId: t.taskId, workflowInstanceId: wid, status: "COMPLETED", outputData: output(Number(t.referenceTaskName.slice(-1)), inline) });
    await sleep(500);
    const c0 = cpuSeconds(server.pid);
    await sleep(WAIT_S * 1000);
    const cores = (cpuSeconds(server.pid) - c0) / WAIT_S;
    const last = tracks[2];
    await call("/tasks", { taskId: last.taskId, workflowInstanceId: wid, status: "COMPLETED", outputData: output(Number(last.referenceTaskName.slice(-1)), inline) });
    const t0 = performance.now();
    for (;;) {
      const s = await call(`/workflow/${wid}/status`);
      if (s.status !== "RUNNING") break;
      if (performance.now() - t0 > 60_000) throw new Error("the JOIN did not complete within 60 s");
      await sleep(10);
    }
    const joinMs = performance.now() - t0;
    await call(`/workflow/${wid}/remove`, undefined, "DELETE");
    return { cores, joinMs };
  };

  // warm the server's code paths on both shapes before measuring
  for (const inline of [true, false]) await once(inline);
  const inline: { cores: number; joinMs: number }[] = [];
  const keys: { cores: number; joinMs: number }[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    for (const mode of i % 2 === 0 ? [true, false] : [false, true]) (mode ? inline : keys).push(await once(mode));
  }
  const fmt = (xs: { cores: number; joinMs: number }[]): string =>
    `server ${median(xs.map((x) => x.cores)).toFixed(3)} cores while the JOIN waited (${xs.map((x) => x.cores.toFixed(2)).join(", ")}), JOIN done ${median(xs.map((x) => x.joinMs)).toFixed(0)} ms after the last track (${xs.map((x) => x.joinMs.toFixed(0)).join(", ")})`;
  console.log(`two tracks done, the third running ${WAIT_S} s; ${MB} MB of words per finished track (${words.length} words); ${ROUNDS} rounds each, alternating`);
  console.log(`words inline in the payload: ${fmt(inline)}`);
  console.log(`words as storage keys:       ${fmt(keys)}`);
  console.log(`server CPU while waiting, inline / keys: ${(median(inline.map((x) => x.cores)) / median(keys.map((x) => x.cores))).toFixed(2)}×`);
} finally {
  await server.stop();
  await rm(stateDir, { recursive: true, force: true });
}
