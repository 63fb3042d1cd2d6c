/**
 * Held polls (workers/conductor/sdk.ts, poll-hints.ts, successors.ts): the successor table
 * read from the shipped workflow, the wake-ups, and the fetch that holds our polls,
 * driven through a scripted transport standing in for the network (the real server runs
 * these paths in conductor.int.test.ts and bench:conductor).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { FORKED_BY, loadWorkflowDef, CONDUCTOR_TASKS } from "../../workers/conductor/definitions.ts";
import { createPollHints, GATED_BURST_MS, type PollHints } from "../../workers/conductor/poll-hints.ts";
import { announcedTypes, heldPollOptions } from "../../workers/conductor/runtime.ts";
import { createPollingFetch, heldPollType } from "../../workers/conductor/sdk.ts";
import { successorMap } from "../../workers/conductor/successors.ts";

/** held-poll options; without `idleMaxMs` no idle back-off (every pause one slice) */
const options = (hints: PollHints, sliceMs = 50, enabled = true, idleMaxMs = sliceMs) =>
  heldPollOptions({ CONDUCTOR_HELD_POLLS: enabled, CONDUCTOR_POLL_SLICE_MS: sliceMs, CONDUCTOR_POLL_IDLE_MAX_MS: idleMaxMs }, hints, successorMap(loadWorkflowDef(), FORKED_BY));
const OURS = new Set<string>(CONDUCTOR_TASKS);

const next = (m: ReturnType<typeof successorMap>, t: string) =>
  (m.after.get(t) ?? []).map((s) => `${s.type}${s.gated ? " (gated)" : ""}`).sort();

test("successors read from the shipped workflow: plain hand-offs, and gated ones behind each JOIN", () => {
  const m = successorMap(loadWorkflowDef(), FORKED_BY);
  assert.deepEqual(m.start, [{ type: "plan_tracks", gated: false }]);
  assert.deepEqual(next(m, "plan_tracks"), ["prepare_track"]);
  assert.deepEqual(next(m, "prepare_track"), ["plan_speech (gated)"]);
  assert.deepEqual(next(m, "plan_speech"), ["transcribe_track"]);
  assert.deepEqual(next(m, "transcribe_track"), ["merge_transcripts (gated)"]);
  assert.deepEqual(next(m, "merge_transcripts"), ["suppress_bleed"]);
  assert.deepEqual(next(m, "suppress_bleed"), ["detect_topics"]);
  assert.deepEqual(next(m, "detect_topics"), ["extract_action_items", "generate_summary", "generate_title", "mixdown"]);
  for (const t of ["generate_title", "generate_summary", "extract_action_items", "mixdown"]) assert.deepEqual(next(m, t), ["finalize (gated)"]);
  assert.deepEqual(next(m, "finalize"), []);
  for (const t of CONDUCTOR_TASKS) assert.ok(m.after.has(t), `${t} is in the table`);
});

test("a dynamic fork whose list builder is not in the table is an error naming the fork", () => {
  const wf = {
    tasks: [
      { name: "a", type: "SIMPLE" },
      { name: "f", type: "FORK_JOIN_DYNAMIC", dynamicForkTasksParam: "dynamicTasks", inputParameters: { dynamicTasks: "${a.output.fork_tasks}" } },
      { name: "j", type: "JOIN" },
    ],
  };
  assert.throws(() => successorMap(wf, {}), /dynamic fork f: no known task type/);
  assert.deepEqual(successorMap(wf, { a: "b" }).after.get("a"), [{ type: "b", gated: false }]);
});

test("wake-ups: a waiting poll wakes, a wake-up with nobody waiting is kept for the next wait, close ends every wait", async () => {
  const h = createPollHints();
  const w = h.wait("x", 60_000);
  h.wake(["x"]);
  assert.equal(await w, "woken");
  h.wake(["y"]);
  assert.equal(await h.wait("y", 60_000), "woken", "kept");
  assert.equal(await h.wait("y", 1), "timeout", "and used once");
  const later = h.wait("z", 60_000);
  h.wake(["z"], [GATED_BURST_MS[0]!]);
  assert.equal(await later, "woken");
  assert.equal(await h.wait("z", 60_000), "woken", "the burst wakes again later");
  const wf = h.waitForWorkflow("wf1", 60_000);
  h.touched("wf1");
  assert.equal(await wf, "woken");
  const a = h.wait("x", 60_000);
  const b = h.waitForWorkflow("wf2", 60_000);
  h.close();
  assert.deepEqual(await Promise.all([a, b]), ["closed", "closed"]);
  assert.equal(await h.wait("x", 60_000), "closed");
  assert.equal(h.closed, true);
});

interface Sent {
  method: string;
  url: URL;
  body?: string;
  /** when it was sent (performance.now()) */
  at: number;
}

/** a transport that records what is sent and answers polls from a queue per task type */
function transport() {
  const sent: Sent[] = [];
  const queues = new Map<string, object[]>();
  const base: typeof fetch = async (input, init) => {
    const req = input instanceof Request ? input : new Request(String(input), init);
    const url = new URL(req.url);
    const body = req.method === "POST" ? await req.text() : undefined;
    sent.push({ method: req.method, url, body, at: performance.now() });
    const poll = /\/tasks\/poll\/batch\/([^/?]+)$/.exec(url.pathname);
    if (poll) {
      const q = queues.get(poll[1]!) ?? [];
      const n = Number(url.searchParams.get("count") ?? 1);
      return Response.json(q.splice(0, n));
    }
    return new Response("", { status: 200 });
  };
  return { sent, queues, base };
}

/** hints, a scripted transport, and the fetch holding polls through them */
function setup(sliceMs = 50, enabled = true, idleMaxMs = sliceMs) {
  const hints = createPollHints();
  const t = transport();
  const o = options(hints, sliceMs, enabled, idleMaxMs);
  return { hints, t, o, f: createPollingFetch("http://c:8080/api", o, t.base) };
}

test("a held poll asks without a wait, keeps the count, pins the origin, and answers when a task is there", async () => {
  const hints = createPollHints();
  const t = transport();
  t.queues.set("prepare_track", [{ taskId: "p0", workflowInstanceId: "w" }, { taskId: "p1", workflowInstanceId: "w" }, { taskId: "p2", workflowInstanceId: "w" }]);
  const f = createPollingFetch("http://conductor:8080/api", options(hints, 50), t.base);
  const res = await f(new Request("http://elsewhere:1/api/tasks/poll/batch/prepare_track?workerid=w1&count=3&timeout=1000"));
  assert.equal(res.status, 200);
  assert.deepEqual(((await res.json()) as { taskId: string }[]).map((x) => x.taskId), ["p0", "p1", "p2"], "a fork's tracks in one answer");
  assert.equal(t.sent.length, 1);
  assert.equal(t.sent[0]!.url.host, "conductor:8080", "origin pinned to the configured server");
  assert.equal(t.sent[0]!.url.searchParams.get("timeout"), "0");
  assert.equal(t.sent[0]!.url.searchParams.get("count"), "3");
  assert.equal(t.sent[0]!.url.searchParams.get("workerid"), "w1");
  // someone else's task type passes through untouched (its long poll stays on the server)
  await f(new Request("http://elsewhere:1/api/tasks/poll/batch/not_ours?count=5&timeout=700"));
  assert.equal(t.sent[1]!.url.searchParams.get("timeout"), "700");
  hints.close();
});

test("an acknowledged result wakes the poll for the next step; the window still ends empty without one", async () => {
  // slices far longer than the test may take: only a wake-up can make the poll ask again
  const { hints, t, f } = setup(600_000);
  t.queues.set("detect_topics", [{ taskId: "d1", workflowInstanceId: "w1" }]);
  await (await f("http://c:8080/api/tasks/poll/batch/detect_topics?count=1&timeout=1000")).json();
  const held = f("http://c:8080/api/tasks/poll/batch/generate_title?count=1&timeout=600000");
  await new Promise((r) => setTimeout(r, 20));
  const asksBefore = t.sent.filter((s) => s.url.pathname.endsWith("/generate_title")).length;
  assert.equal(asksBefore, 1, "asked once, then waiting");
  t.queues.set("generate_title", [{ taskId: "g1", workflowInstanceId: "w1" }]);
  await f(new Request("http://c:8080/api/tasks", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ taskId: "d1", workflowInstanceId: "w1", status: "COMPLETED" }) }));
  const got = (await (await held).json()) as { taskId: string }[];
  assert.deepEqual(got.map((x) => x.taskId), ["g1"]);
  assert.equal(t.sent.find((s) => s.method === "POST")!.body!.includes('"taskId":"d1"'), true, "the update itself went out unchanged");
  // a lease extension (IN_PROGRESS) wakes nothing; with no task the window ends with the server's empty answer
  const empty = f("http://c:8080/api/tasks/poll/batch/suppress_bleed?count=1&timeout=30");
  assert.deepEqual(await (await empty).json(), []);
  hints.close();
});

test("a JOIN-gated step is woken only by the workflow's last branch in this process, over a burst", async () => {
  const { hints, t, f } = setup(600_000);
  t.queues.set("transcribe_track", [{ taskId: "t0", workflowInstanceId: "w" }, { taskId: "t1", workflowInstanceId: "w" }]);
  await (await f("http://c:8080/api/tasks/poll/batch/transcribe_track?count=2&timeout=1000")).json();
  const update = (taskId: string) =>
    f("http://c:8080/api/tasks", { method: "POST", body: JSON.stringify({ taskId, workflowInstanceId: "w", status: "COMPLETED" }) });
  const merges = () => t.sent.filter((s) => s.url.pathname.endsWith("/merge_transcripts")).length;
  const held = f("http://c:8080/api/tasks/poll/batch/merge_transcripts?count=1&timeout=600000");
  await new Promise((r) => setTimeout(r, 10));
  await update("t0");
  await new Promise((r) => setTimeout(r, GATED_BURST_MS.at(-1)! + 50));
  assert.equal(merges(), 1, "t1 still runs here: the JOIN cannot be done, nothing asked");
  await update("t1");
  // the JOIN completes on the server a little later: the merge task appears after the first ask
  await new Promise((r) => setTimeout(r, GATED_BURST_MS[1]! + 5));
  t.queues.set("merge_transcripts", [{ taskId: "m", workflowInstanceId: "w" }]);
  assert.deepEqual(((await (await held).json()) as { taskId: string }[]).map((x) => x.taskId), ["m"]);
  assert.ok(merges() >= 2);
  hints.close();
});

test("a keyed burst ends when its task has arrived; another workflow's burst for the same step goes on", async () => {
  const h = createPollHints();
  h.wake(["m"], [20, 40, 60], "w1");
  h.wake(["m"], [20, 40, 60], "w2");
  assert.equal(await h.wait("m", 1), "woken", "the first wake-up of the bursts is kept");
  h.arrived("m", "w1");
  h.arrived("m", "other-type-or-workflow-is-no-op");
  // w2's later wake-ups still come
  assert.equal(await h.wait("m", 1000), "woken");
  h.arrived("m", "w2");
  assert.equal(await h.wait("m", 200), "timeout", "both bursts ended: nothing wakes the step any more");
  h.close();
});

test("after the last branch the gated step is asked for until it arrives, and not after", async () => {
  const { hints, t, f } = setup(600_000);
  t.queues.set("mixdown", [{ taskId: "x", workflowInstanceId: "w" }]);
  await (await f("http://c:8080/api/tasks/poll/batch/mixdown?count=1&timeout=1000")).json();
  const finals = () => t.sent.filter((s) => s.url.pathname.endsWith("/finalize")).length;
  // the SDK's loop: poll again right after each answer
  let stop = false;
  const got: string[] = [];
  const loop = (async () => {
    while (!stop) {
      const tasks = (await (await f("http://c:8080/api/tasks/poll/batch/finalize?count=1&timeout=600000")).json()) as { taskId: string }[];
      got.push(...tasks.map((x) => x.taskId));
    }
  })();
  try {
    await new Promise((r) => setTimeout(r, 10));
    await f("http://c:8080/api/tasks", { method: "POST", body: JSON.stringify({ taskId: "x", workflowInstanceId: "w", status: "COMPLETED" }) });
    // the JOIN completes between the burst's second and third ask
    await new Promise((r) => setTimeout(r, GATED_BURST_MS[1]! + 5));
    t.queues.set("finalize", [{ taskId: "f", workflowInstanceId: "w" }]);
    await new Promise((r) => setTimeout(r, GATED_BURST_MS[2]! + 20));
    assert.deepEqual(got, ["f"]);
    const asked = finals();
    await new Promise((r) => setTimeout(r, GATED_BURST_MS.at(-1)! + 50));
    assert.equal(finals(), asked, `no ask after the step arrived (${asked} asks in all)`);
    // the first ask, one at the update, at 15 and 30 ms, the one at 45 ms that finds it, and
    // the SDK's next poll asking once before it waits
    assert.equal(asked, 6, `asks in all`);
  } finally {
    stop = true;
    hints.close();
    await loop;
  }
});

test("a type found empty again and again is asked ever less often; a wake-up, a task of its own or a failed result of its own brings it back, work for other types does not", async () => {
  const { hints, t, f } = setup(20, true, 160);
  const asks = () => t.sent.filter((s) => s.url.pathname.endsWith("/detect_topics")).map((s) => s.at);
  // one long window (what the SDK asks for): pauses of 20, 40, 80, 160, 160… ms between asks
  assert.deepEqual(await (await f("http://c:8080/api/tasks/poll/batch/detect_topics?count=1&timeout=700")).json(), []);
  const quietAsks = asks();
  // without the back-off: 700 / 20 ≈ 35 asks; with it about 7 (0, 20, 60, 140, 300, 460, 620)
  assert.ok(quietAsks.length >= 4 && quietAsks.length <= 10, `asks in 700 ms: ${quietAsks.length}`);
  const gaps = quietAsks.slice(1).map((x, i) => x - quietAsks[i]!);
  assert.ok(gaps.at(-1)! >= 140, `the last pause is the longest one: ${gaps.map((g) => g.toFixed(0)).join(", ")} ms`);
  // a new window of the same quiet type does not ask at its start: the pause goes on
  const n = t.sent.length;
  assert.deepEqual(await (await f("http://c:8080/api/tasks/poll/batch/detect_topics?count=1&timeout=10")).json(), []);
  assert.equal(t.sent.length, n, "a short window inside the pause ends without asking the server");
  // a wake-up (a delivered result of the step before) makes it ask at once
  const held = f("http://c:8080/api/tasks/poll/batch/detect_topics?count=1&timeout=600000");
  await new Promise((r) => setTimeout(r, 5));
  t.queues.set("detect_topics", [{ taskId: "d", workflowInstanceId: "w" }]);
  const before = t.sent.length;
  const woke = performance.now();
  hints.wake(["detect_topics"]);
  assert.deepEqual(((await (await held).json()) as { taskId: string }[]).map((x) => x.taskId), ["d"]);
  assert.equal(t.sent.length, before + 1, "one ask, right after the wake-up");
  assert.ok(performance.now() - woke < 100);
  // after a task of its own the type is back at the slice: the next empty window asks at its start, then a slice later
  const m = t.sent.length;
  await (await f("http://c:8080/api/tasks/poll/batch/detect_topics?count=1&timeout=30")).json();
  assert.equal(t.sent.length - m, 2, "asked at once and after one slice");
  // quiet again (pauses of 160 ms); work for other types (a task handed over, a result
  // delivered) leaves its pause alone. Asks in a 300 ms window tell them apart: at most 2
  // while the pause goes on, 4 or more (0, 20, 60, 140…) once it is back at the slice
  await (await f("http://c:8080/api/tasks/poll/batch/detect_topics?count=1&timeout=300")).json();
  const window = async (): Promise<number> => {
    const k = t.sent.length;
    await (await f("http://c:8080/api/tasks/poll/batch/detect_topics?count=1&timeout=300")).json();
    return t.sent.slice(k).filter((x) => x.url.pathname.endsWith("/detect_topics")).length;
  };
  assert.ok((await window()) <= 2, "quiet");
  t.queues.set("suppress_bleed", [{ taskId: "s", workflowInstanceId: "w" }]);
  await (await f("http://c:8080/api/tasks/poll/batch/suppress_bleed?count=1&timeout=10")).json();
  assert.ok((await window()) <= 2, "a task of another type does not end this type's pause");
  await f("http://c:8080/api/tasks", { method: "POST", body: JSON.stringify({ taskId: "elsewhere", workflowInstanceId: "w9", status: "FAILED" }) });
  assert.ok((await window()) <= 2, "nor does a result of a task this process did not poll");
  // the failed result of a task of this type: its retry comes unannounced, the type asks every slice again
  t.queues.set("detect_topics", [{ taskId: "d2", workflowInstanceId: "w" }]);
  assert.deepEqual(((await (await f("http://c:8080/api/tasks/poll/batch/detect_topics?count=1&timeout=600000")).json()) as { taskId: string }[]).map((x) => x.taskId), ["d2"]);
  await (await f("http://c:8080/api/tasks/poll/batch/detect_topics?count=1&timeout=300")).json();
  assert.ok((await window()) <= 2, "quiet once more");
  await f("http://c:8080/api/tasks", { method: "POST", body: JSON.stringify({ taskId: "d2", workflowInstanceId: "w", status: "FAILED" }) });
  const n2 = await window();
  assert.ok(n2 >= 4, `a failed result of its own type ends the pause (${n2} asks in 300 ms)`);
  hints.close();
});

test("held are the types whose every task is announced in this process: a host serving some steps leaves the rest on the server", () => {
  const m = successorMap(loadWorkflowDef(), FORKED_BY);
  const all = announcedTypes(m, CONDUCTOR_TASKS, false);
  assert.deepEqual([...CONDUCTOR_TASKS].filter((x) => !all.has(x)), ["plan_tracks"], "a full worker host: all but the first step");
  assert.ok(announcedTypes(m, CONDUCTOR_TASKS, true).has("plan_tracks"), "where workflows are started, the first step too");
  // a transcription host: its step follows plan_speech, which runs elsewhere
  assert.deepEqual([...announcedTypes(m, ["transcribe_track"], false)], []);
  // a host with the steps after the transcription: merge waits on transcribe_track (elsewhere); the rest follow steps it runs
  assert.deepEqual(
    [...announcedTypes(m, ["merge_transcripts", "suppress_bleed", "detect_topics", "generate_title", "generate_summary", "extract_action_items", "mixdown", "finalize"], false)].sort(),
    ["detect_topics", "extract_action_items", "finalize", "generate_summary", "generate_title", "mixdown", "suppress_bleed"],
  );
  // finalize follows four steps: one of them elsewhere is enough to leave it on the server
  assert.ok(!announcedTypes(m, ["generate_title", "generate_summary", "finalize"], false).has("finalize"));
  const hints = createPollHints();
  const o = heldPollOptions({ CONDUCTOR_HELD_POLLS: true, CONDUCTOR_POLL_SLICE_MS: 1000, CONDUCTOR_POLL_IDLE_MAX_MS: 3000 }, hints, m, false, ["transcribe_track"]);
  assert.equal(o.held.size, 0);
  assert.equal(o.ours.size, CONDUCTOR_TASKS.length, "all our types are still recognised (their results still wake successors)");
  hints.close();
});

test("closing the hints ends a held poll at once with an empty answer", async () => {
  const { hints, t, f } = setup(600_000);
  const held = f("http://c:8080/api/tasks/poll/batch/finalize?count=1&timeout=600000");
  await new Promise((r) => setTimeout(r, 10));
  hints.close();
  assert.deepEqual(await (await held).json(), []);
  const after = await f("http://c:8080/api/tasks/poll/batch/finalize?count=1&timeout=600000");
  assert.deepEqual(await after.json(), []);
  assert.equal(t.sent.length, 1, "after close nothing more is asked of the server");
});

test("heldPollType recognises only batch polls of the given types", () => {
  assert.equal(heldPollType(new URL("http://c/api/tasks/poll/batch/mixdown?count=1"), OURS), "mixdown");
  assert.equal(heldPollType(new URL("http://c/api/tasks/poll/batch/other?count=1"), OURS), undefined);
  assert.equal(heldPollType(new URL("http://c/api/tasks/poll/mixdown"), OURS), undefined);
  assert.equal(heldPollType(new URL("http://c/api/tasks"), OURS), undefined);
});

test("the workflow's first step (started by other processes) keeps its long poll on the server, for one task", async () => {
  const { hints, t, o, f } = setup();
  assert.deepEqual([...CONDUCTOR_TASKS].filter((x) => !o.held.has(x)), ["plan_tracks"]);
  await f("http://x:1/api/tasks/poll/batch/plan_tracks?workerid=w&count=2&timeout=1000");
  assert.equal(t.sent[0]!.url.searchParams.get("timeout"), "1000");
  assert.equal(t.sent[0]!.url.searchParams.get("count"), "1");
  hints.close();
});

test("with held polls off, our polls go to the server as they were asked, for one task at a time", async () => {
  const { hints, t, f } = setup(1000, false);
  await f("http://x:1/api/tasks/poll/batch/transcribe_track?workerid=w&count=3&timeout=1000");
  assert.equal(t.sent[0]!.url.host, "c:8080");
  assert.equal(t.sent[0]!.url.searchParams.get("timeout"), "1000");
  assert.equal(t.sent[0]!.url.searchParams.get("count"), "1");
  hints.close();
});

test("a process that starts workflows itself holds the first step's poll too, and wakes it", async () => {
  const hints = createPollHints();
  const t = transport();
  const o = heldPollOptions({ CONDUCTOR_HELD_POLLS: true, CONDUCTOR_POLL_SLICE_MS: 600_000, CONDUCTOR_POLL_IDLE_MAX_MS: 600_000 }, hints, successorMap(loadWorkflowDef(), FORKED_BY), true);
  assert.ok(o.held.has("plan_tracks"));
  const f = createPollingFetch("http://c:8080/api", o, t.base);
  const held = f("http://x:1/api/tasks/poll/batch/plan_tracks?workerid=w&count=2&timeout=600000");
  await new Promise((r) => setTimeout(r, 10));
  t.queues.set("plan_tracks", [{ taskId: "p", workflowInstanceId: "w" }]);
  hints.wake(o.successors.start.map((s) => s.type));
  assert.deepEqual(((await (await held).json()) as { taskId: string }[]).map((x) => x.taskId), ["p"]);
  assert.equal(t.sent[0]!.url.searchParams.get("timeout"), "0");
  hints.close();
});

test("a task handed over by a poll the server held still wakes the next step when its result is delivered", async () => {
  const hints = createPollHints();
  const t = transport();
  const o = options(hints, 600_000);
  const f = createPollingFetch("http://c:8080/api", o, t.base);
  t.queues.set("plan_tracks", [{ taskId: "p", workflowInstanceId: "w" }]);
  await (await f("http://x:1/api/tasks/poll/batch/plan_tracks?workerid=w&count=1&timeout=1000")).json();
  const held = f("http://x:1/api/tasks/poll/batch/prepare_track?workerid=w&count=3&timeout=600000");
  await new Promise((r) => setTimeout(r, 10));
  t.queues.set("prepare_track", [{ taskId: "a", workflowInstanceId: "w" }, { taskId: "b", workflowInstanceId: "w" }]);
  await f("http://x:1/api/tasks", { method: "POST", body: JSON.stringify({ taskId: "p", workflowInstanceId: "w", status: "COMPLETED" }) });
  assert.deepEqual(((await (await held).json()) as { taskId: string }[]).map((x) => x.taskId), ["a", "b"]);
  hints.close();
});

test("the engine following a workflow here is told of its last step's result and of failures, not of every step", async () => {
  const { hints, t, f } = setup(600_000);
  t.queues.set("detect_topics", [{ taskId: "d", workflowInstanceId: "w" }]);
  t.queues.set("finalize", [{ taskId: "z", workflowInstanceId: "w" }]);
  t.queues.set("mixdown", [{ taskId: "m", workflowInstanceId: "w2" }]);
  for (const type of ["detect_topics", "finalize", "mixdown"]) await (await f(`http://c:8080/api/tasks/poll/batch/${type}?count=1&timeout=10`)).json();
  const post = (taskId: string, workflowInstanceId: string, status: string) =>
    f("http://c:8080/api/tasks", { method: "POST", body: JSON.stringify({ taskId, workflowInstanceId, status }) });
  let told = hints.waitForWorkflow("w", 60_000);
  await post("d", "w", "COMPLETED");
  assert.equal(await Promise.race([told, new Promise((r) => setTimeout(() => r("not told"), 50))]), "not told");
  await post("z", "w", "COMPLETED");
  assert.equal(await told, "woken", "finalize is the last step");
  told = hints.waitForWorkflow("w2", 60_000);
  await post("m", "w2", "FAILED_WITH_TERMINAL_ERROR");
  assert.equal(await told, "woken", "a failure may end it");
  hints.close();
});
