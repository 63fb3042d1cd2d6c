/**
 * The SDK client for TaskManager, with the fetch it uses.
 *
 * 1. Pinned origin. The SDK prefers `process.env.CONDUCTOR_SERVER_URL` over the URL it is
 *    given (a hidden global read); every request is rewritten to the configured server, so
 *    a process talks to the server its config names.
 *
 * 2. Held polls. Conductor's SQLite queue answers a long poll by popping every 100 ms, and
 *    each hand-off between two steps waited for that cadence: median 70–90 ms, about a
 *    dozen times on a recording's critical path. For the steps that follow another step,
 *    the SDK's long poll (`timeout=T`) is held here instead: ask without a wait
 *    (`timeout=0`); when nothing is there, wait for a wake-up from this process
 *    (poll-hints.ts) or the end of a slice, and ask again, until T has passed. A result
 *    this process delivers wakes the polls for the steps that follow it (successors.ts),
 *    so the next step is asked for right after Conductor scheduled it. Nothing is ever
 *    popped for a request that is given up: every request sent is read to the end.
 *    Asking without a wait also means the server never holds a poll until it has `count`
 *    tasks, so a fork's tracks come back together in one answer. A type that keeps coming
 *    back empty with no wake-up in between is asked ever less often (quiet back-off, up to
 *    `idleMaxMs`); a wake-up or a task of that type brings it back at once.
 *
 * 3. Hints out. Each acknowledged task result (POST /tasks with a terminal status) wakes
 *    the polls for the task types that follow it. A failure, or the result of the last
 *    step, also tells anyone following that workflow here (the engine sees the end at once
 *    and needs to look only now and then otherwise).
 */
import { createConductorClient } from "@io-orkes/conductor-javascript";
import { GATED_BURST_MS, type PollHints } from "./poll-hints.ts";
import type { SuccessorMap } from "./successors.ts";

export type SdkClient = Awaited<ReturnType<typeof createConductorClient>>;

const BATCH_POLL = /\/tasks\/poll\/batch\/([^/?]+)$/;
const TASK_UPDATE = /\/api\/tasks\/?$/;
const TERMINAL = new Set(["COMPLETED", "FAILED", "FAILED_WITH_TERMINAL_ERROR", "COMPLETED_WITH_ERRORS"]);

/** The task type of a batch poll URL for one of `types`, else undefined. */
export function heldPollType(url: URL, types: ReadonlySet<string>): string | undefined {
  const m = BATCH_POLL.exec(url.pathname);
  if (!m) return undefined;
  const type = decodeURIComponent(m[1]!);
  return types.has(type) ? type : undefined;
}

export interface HeldPollOptions {
  /** our task types: polls for these are held here (`held`) or go to the server asking for one task */
  ours: ReadonlySet<string>;
  /**
   * the types whose polls are held here: all of ours but, in a worker process, the
   * workflow's first step, whose tasks other processes start (the API) and so are never
   * announced here; its long poll stays on the server, which finds a new task within its
   * 100 ms cadence. A process that starts workflows itself (the CLI) holds that one too.
   */
  held: ReadonlySet<string>;
  /** false: every poll goes to the server (CONDUCTOR_HELD_POLLS=false) */
  enabled?: boolean;
  hints: PollHints;
  successors: SuccessorMap;
  /**
   * longest wait between two asks without a wake-up (default 1000 ms): how late a task that
   * nothing in this process announced (a retry, a rescue, one freed by another process) is
   * seen. Each ask is an HTTP request (≈ 1.5 ms of server CPU, measured), so short slices
   * cost the decoders CPU: idle server + workers on 2 cores measured 0.18 cores at 250 ms,
   * 0.13 at 500 ms and 0.08 at 1000 ms, against 0.11 with the server holding the polls.
   */
  sliceMs?: number;
  /**
   * quiet back-off (default 3000 ms): a type asked for again and again without a wake-up
   * in between and found empty each time is asked ever less often, the pause doubling from
   * `sliceMs` up to this. A wake-up for the type, a task of the type handed over, or a
   * failed result of the type delivered (its retry follows) brings it back to `sliceMs`;
   * the other types keep their pause, busy process or not. An idle worker host asked for
   * each of its 11 types once a second, and during a recording every type not up next
   * was asked once a second as well (one recording through the CLI engine: 81 requests to
   * the server before, 66–68 after, in Tomcat's access log).
   * The cost: a task nothing here announced (one another process could not take, a
   * retry, a rescue) is seen up to `idleMaxMs` late instead of `sliceMs`. The steps of a
   * workflow this process runs are announced (successors.ts), and only types whose every
   * predecessor runs here are held (runtime.ts, heldPollOptions).
   */
  idleMaxMs?: number;
}

interface Polled {
  type: string;
  workflowId: string;
}

/**
 * A fetch that pins the origin and holds our polls (see the file comment). `base` is the
 * fetch it sends with (the global one; tests pass a recording one).
 */
export function createPollingFetch(serverUrl: string, held: HeldPollOptions | undefined, base: typeof fetch = fetch): typeof fetch {
  const target = new URL(serverUrl.replace(/\/+$/, "").replace(/\/api$/, ""));
  const slice = held?.sliceMs ?? 1000;
  const idleMax = Math.max(slice, held?.idleMaxMs ?? 3000);
  /** types found empty since their last wake-up: when last asked, and the pause before the next ask */
  const quiet = new Map<string, { at: number; gap: number }>();
  const emptyAnswer = (): Response => new Response("[]", { status: 200, headers: { "content-type": "application/json" } });
  /** tasks handed to this process and not yet reported done: taskId → type and workflow */
  const polled = new Map<string, Polled>();

  const pin = (raw: string): URL => {
    const url = new URL(raw);
    url.protocol = target.protocol;
    url.host = target.host;
    return url;
  };
  const copy = (text: string, res: Response): Response =>
    new Response([204, 205, 304].includes(res.status) ? null : text, { status: res.status, statusText: res.statusText, headers: res.headers });

  /** a poll's answer as a task list; undefined when it is not one */
  const parseTasks = (text: string): { taskId?: string; workflowInstanceId?: string }[] | undefined => {
    try {
      const v: unknown = text ? JSON.parse(text) : [];
      return Array.isArray(v) ? v : undefined;
    } catch {
      return undefined;
    }
  };
  const remember = (tasks: readonly { taskId?: string; workflowInstanceId?: string }[], type: string): void => {
    // work of this type came in: more may follow (a fork's other tracks, a retry)
    if (tasks.length > 0) quiet.delete(type);
    for (const t of tasks) {
      if (t.taskId) polled.set(t.taskId, { type, workflowId: t.workflowInstanceId ?? "" });
      // the step a JOIN-gated burst was waiting for is here: the rest of the burst would only ask an empty queue
      if (t.workflowInstanceId) held?.hints.arrived(type, t.workflowInstanceId);
    }
  };

  async function holdPoll(url: URL, type: string, req: Request | undefined, init: RequestInit | undefined, h: HeldPollOptions): Promise<Response> {
    const window = Math.max(0, Number(url.searchParams.get("timeout") ?? 0) || 0);
    const deadline = Date.now() + window;
    const ask = new URL(url);
    ask.searchParams.set("timeout", "0");
    /** the server's last empty answer in this window, to hand back when the window ends */
    let last: Response | undefined;
    for (;;) {
      if (h.hints.closed) return emptyAnswer();
      // a quiet type is asked again only when its pause is over, or at once when woken
      const q = quiet.get(type);
      const due = q ? q.at + q.gap : 0;
      if (Date.now() < due) {
        const woke = await h.hints.wait(type, Math.min(due, deadline) - Date.now());
        if (woke === "closed") return emptyAnswer();
        if (woke === "woken") quiet.delete(type);
        // the window ended before the pause: the SDK polls again at once, and that poll waits
        // on. (Which one ended is read from the two times, not the clock: a timer may fire a
        // millisecond before Date.now() reaches its end.)
        else if (deadline < due) return last ?? emptyAnswer();
      }
      const res = req ? await base(new Request(ask, req), init) : await base(ask, init);
      if (!res.ok) return res;
      const text = await res.text();
      const tasks = parseTasks(text);
      if (!tasks) return copy(text, res);
      if (tasks.length > 0) {
        remember(tasks, type);
        return copy(text, res);
      }
      // empty: the first time after a wake-up wait a slice, then twice as long each time
      const prev = quiet.get(type);
      quiet.set(type, { at: Date.now(), gap: prev ? Math.min(prev.gap * 2, idleMax) : slice });
      last = copy(text, res);
      if (deadline - Date.now() <= 0) return last;
    }
  }

  function delivered(body: { taskId?: string; workflowInstanceId?: string; status?: string }, h: HeldPollOptions): void {
    if (!body.taskId || !body.status || !TERMINAL.has(body.status)) return;
    const task = polled.get(body.taskId);
    // a failed attempt comes back after its retry delay, announced by nobody: its type
    // goes back to asking every slice
    if (task && body.status !== "COMPLETED" && body.status !== "COMPLETED_WITH_ERRORS") quiet.delete(task.type);
    polled.delete(body.taskId);
    const workflowId = body.workflowInstanceId ?? task?.workflowId ?? "";
    if (task && body.status === "COMPLETED") {
      const next = h.successors.after.get(task.type) ?? [];
      const now = next.filter((s) => !s.gated).map((s) => s.type);
      if (now.length) h.hints.wake(now);
      // a JOIN completes only after the last branch: while this process still runs another
      // task of the workflow, this was not the last one here
      const gated = next.filter((s) => s.gated).map((s) => s.type);
      const siblings = [...polled.values()].some((p) => p.workflowId === workflowId);
      if (gated.length && !siblings) h.hints.wake(gated, GATED_BURST_MS, workflowId || undefined);
    }
    // the workflow may have ended: after its last step, or after a failure
    if (workflowId && (body.status !== "COMPLETED" || (task && (h.successors.after.get(task.type) ?? []).length === 0))) h.hints.touched(workflowId);
  }

  return async (input, init) => {
    const req = input instanceof Request ? input : undefined;
    const url = pin(req ? req.url : input instanceof URL ? input.toString() : String(input));
    const method = (req?.method ?? init?.method ?? "GET").toUpperCase();
    if (held && method === "GET") {
      const type = heldPollType(url, held.ours);
      const on = held.enabled !== false;
      if (type && on && held.held.has(type)) return holdPoll(url, type, req, init, held);
      // the server holds this poll until it has `count` tasks or its window ends: ask for one
      if (type && url.searchParams.has("count")) url.searchParams.set("count", "1");
      if (type && on) {
        // remember what the server hands over, so its result wakes the next step too
        const res = req ? await base(new Request(url, req), init) : await base(url, init);
        if (!res.ok) return res;
        const text = await res.text();
        remember(parseTasks(text) ?? [], type);
        return copy(text, res);
      }
    }
    if (held && held.enabled !== false && method === "POST" && TASK_UPDATE.test(url.pathname)) {
      let body: { taskId?: string; workflowInstanceId?: string; status?: string } = {};
      try {
        const raw = req ? await req.clone().text() : typeof init?.body === "string" ? init.body : "";
        body = raw ? (JSON.parse(raw) as typeof body) : {};
      } catch {
        body = {};
      }
      const res = req ? await base(new Request(url, req), init) : await base(url, init);
      if (res.ok) delivered(body, held);
      return res;
    }
    return req ? base(new Request(url, req), init) : base(url, init);
  };
}

export async function createSdkClient(serverUrl: string, held?: HeldPollOptions): Promise<SdkClient> {
  const target = new URL(serverUrl.replace(/\/+$/, "").replace(/\/api$/, ""));
  return createConductorClient({ serverUrl: target.toString().replace(/\/$/, "") }, createPollingFetch(serverUrl, held));
}
