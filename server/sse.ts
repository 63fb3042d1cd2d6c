/**
 * GET /v1/recordings/:id/events: Server-Sent Events. On connect every stored event is
 * replayed (or those after `Last-Event-ID`), then new ones follow as they are written
 * (woken by Postgres NOTIFY, with a poll as a safety net that also reconciles with
 * Conductor). The stream ends with an `end` event once the recording has completed or
 * failed, or has been deleted.
 */
import type { ServerResponse } from "node:http";
import { clientFailure } from "../pipeline/failures.ts";
import type { StoredEvent } from "../adapters/postgres/events.ts";
import type { EventHub } from "../adapters/postgres/notify.ts";
import type { RecordingRow, RecordingsRepo, RecordingStatus } from "../adapters/postgres/recordings-repo.ts";
import { totalSteps } from "./recordings.ts";

export interface EventStreamDeps {
  repo: RecordingsRepo;
  hub?: EventHub;
  reconcile(rec: RecordingRow): Promise<RecordingRow>;
  heartbeatMs: number;
  /** how often to look without a notification (default 1000 ms) */
  pollMs?: number;
  /** aborted when the server shuts down */
  shutdown: AbortSignal;
  /** how long a final recording's stream waits for steps still reporting (default 3000 ms) */
  settleMs?: number;
}

/** One SSE message; `data` is JSON on a single line. */
export function sseMessage(m: { id?: number; event?: string; data: unknown }): string {
  let out = "";
  if (m.id !== undefined) out += `id: ${m.id}\n`;
  if (m.event) out += `event: ${m.event}\n`;
  return `${out}data: ${JSON.stringify(m.data)}\n\n`;
}

/** A failure's text as a client may read it (pipeline/failures.ts); other messages as stored. */
const FAILING = new Set(["failed", "retrying"]);

export function eventPayload(e: StoredEvent, progress: { completed_steps: number; total_steps: number }): Record<string, unknown> {
  const failure = FAILING.has(e.status) ? clientFailure(e.message, `${e.step}_failed`) : null;
  return {
    id: e.id,
    step: e.step,
    ...(e.track_index !== null ? { track_index: e.track_index } : {}),
    status: e.status,
    ...(failure ? { code: failure.code, message: failure.message } : e.message ? { message: e.message } : {}),
    ...(e.duration_ms !== null ? { duration_ms: e.duration_ms } : {}),
    ...(e.worker_id ? { worker_id: e.worker_id } : {}),
    at: new Date(e.at).toISOString(),
    ...progress,
  };
}

/** A rename event's data: `{id, participants: [{speaker, name}], at}`. */
export function participantsPayload(e: StoredEvent): Record<string, unknown> {
  let participants: unknown = [];
  try {
    participants = (JSON.parse(e.message ?? "{}") as { participants?: unknown }).participants ?? [];
  } catch {
    /* stored by this API as JSON; anything else shows no names */
  }
  return { id: e.id, participants, at: new Date(e.at).toISOString() };
}

/**
 * Stream the events of `rec` to `res` (already hijacked from Fastify). Resolves when the
 * stream has ended, whoever ended it.
 */
export async function streamEvents(res: ServerResponse, rec: RecordingRow, trackCount: number, lastEventId: number, deps: EventStreamDeps): Promise<void> {
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache, no-transform",
    connection: "keep-alive",
    "x-accel-buffering": "no",
  });
  res.write(`retry: 2000\n\n`);
  res.write(sseMessage({ event: "status", data: { id: rec.id, status: rec.status, total_steps: totalSteps(trackCount) } }));

  let wake: (() => void) | undefined;
  let woken = false;
  const poke = (): void => {
    woken = true;
    wake?.();
  };
  const unsubscribe = deps.hub?.subscribe(rec.id, poke);
  let closed = false;
  const onClose = (): void => {
    closed = true;
    poke();
  };
  res.on("close", onClose);
  deps.shutdown.addEventListener("abort", onClose);
  const heartbeat = setInterval(() => {
    if (!closed) res.write(`: ping\n\n`);
  }, deps.heartbeatMs);

  const done = new Set<string>();
  const total = totalSteps(trackCount);
  let lastSeen = 0;
  let row = rec;
  /** when the stream first saw the recording final */
  let finalAt: number | undefined;
  try {
    while (!closed) {
      woken = false;
      const { events, status, running } = await deps.repo.tail(rec.id, lastSeen);
      for (const e of events) {
        lastSeen = e.id;
        if (e.status === "succeeded" && e.step !== "pipeline") done.add(`${e.step}:${e.track_index ?? -1}`);
        if (e.id <= lastEventId) continue; // already delivered before the client reconnected
        if (e.step === "participants") {
          // a speaker rename (PATCH …/participants): the new names, not a step's progress
          res.write(sseMessage({ id: e.id, event: "participants", data: participantsPayload(e) }));
          continue;
        }
        const completed = e.step === "pipeline" && e.status === "completed" ? total : Math.min(done.size, total);
        res.write(sseMessage({ id: e.id, event: "progress", data: eventPayload(e, { completed_steps: completed, total_steps: total }) }));
      }
      if (events.length === 500) continue; // more to replay
      if (status === undefined) {
        res.write(sseMessage({ event: "end", data: { id: rec.id, status: "deleted" } }));
        break;
      }
      if (status === "completed" && running > 0 && Date.now() - (finalAt ??= Date.now()) < (deps.settleMs ?? 3000)) {
        // the recording is final but a step's own report is still on its way (finalize's
        // success is written after the Result that completes the recording): wait for it a
        // little, so the stream carries every event before its end, as a replay later does
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      if (status === "completed" || status === "failed") {
        const final = await deps.repo.get(rec.id);
        const failure = clientFailure(final?.error, "pipeline_failed");
        res.write(sseMessage({ event: "end", data: { id: rec.id, status, ...(failure ? { error: failure.message, error_code: failure.code } : {}) } }));
        break;
      }
      row = { ...row, status: status as RecordingStatus };
      if (!woken) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, deps.pollMs ?? 1000);
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        wake = undefined;
      }
      if (!closed && !woken) {
        // nothing new for a while: ask Conductor whether the workflow ended without us hearing
        row = await deps.reconcile(row).catch(() => row);
      }
    }
  } finally {
    clearInterval(heartbeat);
    unsubscribe?.();
    res.off("close", onClose);
    deps.shutdown.removeEventListener("abort", onClose);
    if (!res.writableEnded) res.end();
  }
}
