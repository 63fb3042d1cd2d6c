/**
 * Writing progress events: one row per event in `events` (deduplicated by its key, so a
 * re-sent event is a no-op), the step's latest state in `step_runs`, the recording's
 * status for the user-visible engine, and a NOTIFY so SSE streams wake up at once.
 * Everything for one event happens in one statement sequence on one client.
 */
import type pg from "pg";
import type { ProgressEvent } from "../../pipeline/contracts/index.ts";

/** The engine whose progress and Result users see; shadow engines write their own rows. */
export const PRIMARY_ENGINE = "conductor";
/** NOTIFY channel; the payload is the recording id. */
export const EVENTS_CHANNEL = "trackscribe_events";

type Queryable = Pick<pg.Pool | pg.PoolClient | pg.Client, "query">;

export interface StoredEvent {
  id: number;
  recording_id: string;
  engine: string;
  step: string;
  track_index: number | null;
  status: string;
  message: string | null;
  duration_ms: number | null;
  worker_id: string | null;
  at: string;
}

/** The natural key of an event: the same event written twice is stored once. */
export const defaultEventKey = (e: Pick<ProgressEvent, "step" | "track_index" | "status" | "at">): string =>
  `${e.step}:${e.track_index ?? -1}:${e.status}:${e.at}`;

/**
 * Insert one event. Returns the stored event, or undefined when it was a duplicate, its
 * recording no longer exists (deleted while a worker was still running), or it is a step's
 * report arriving after its recording failed or completed that is no longer news (the replay
 * ends with the final event; a completed recording still takes the report of a step that
 * was running when it completed, such as finalize's own success).
 */
export async function appendEvent(db: Queryable, e: ProgressEvent, key = defaultEventKey(e)): Promise<StoredEvent | undefined> {
  // one statement: the insert, the step state, the recording's status and the notify
  // all happen or none do (a CTE runs as a single snapshot).
  // The recording's row lock comes first, before the event's id is drawn, and is held to
  // commit: a recording's events commit in id order. Readers tail by id (SSE replay,
  // Last-Event-ID), so without it two workers' concurrent events could commit out of order
  // and a reader that had already seen the higher id would never see the lower one.
  const { rows } = await db.query<StoredEvent>(
    `WITH rec AS (
       SELECT id, status FROM recordings WHERE id = $1::text FOR NO KEY UPDATE
     ), ins AS (
       INSERT INTO events (recording_id, engine, event_key, step, track_index, status, message, duration_ms, worker_id, at)
       SELECT $1::text, $2::text, $3::text, $4::text, $5::int, $6::text, $7::text, $8::float8, $9::text, $10::timestamptz FROM rec
        -- a final recording's story has ended: a step that reports afterwards is not added after
        -- the final event. Failed: a sibling of the failed step, cancelled with its workflow,
        -- finishing its last write. Completed: a worker that lost its task (paused past its
        -- response timeout) delivering a result the retry already gave; only a step still
        -- running at completion (finalize reports its success after the Result) is added.
        -- The recording's own events (a retry, a speaker rename) and other engines' still are.
        WHERE $2::text <> $11::text OR $4::text IN ('pipeline', 'participants')
           OR rec.status NOT IN ('failed', 'completed')
           OR (rec.status = 'completed' AND EXISTS (
                SELECT 1 FROM step_runs s WHERE s.recording_id = $1::text AND s.engine = $2::text AND s.step = $4::text
                   AND s.track_index = COALESCE($5::int, -1) AND s.status = 'started'))
       ON CONFLICT (recording_id, engine, event_key) DO NOTHING
       RETURNING id, recording_id, engine, step, track_index, status, message, duration_ms, worker_id, at
     ), step AS (
       INSERT INTO step_runs AS s (recording_id, engine, step, track_index, status, attempts, worker_id, duration_ms, message, updated_at)
       SELECT recording_id, engine, step, COALESCE(track_index, -1), status, CASE WHEN status = 'started' THEN 1 ELSE 0 END,
              worker_id, duration_ms, message, at
         FROM ins WHERE step NOT IN ('pipeline', 'participants') -- 'participants': a speaker rename, not a step
       ON CONFLICT (recording_id, engine, step, track_index) DO UPDATE SET
         status = EXCLUDED.status,
         attempts = s.attempts + EXCLUDED.attempts,
         worker_id = COALESCE(EXCLUDED.worker_id, s.worker_id),
         duration_ms = COALESCE(EXCLUDED.duration_ms, CASE WHEN EXCLUDED.status = 'started' THEN NULL ELSE s.duration_ms END),
         message = EXCLUDED.message,
         updated_at = EXCLUDED.updated_at
       RETURNING 1
     ), upd AS (
       UPDATE recordings r SET
         status = CASE
           WHEN i.step = 'pipeline' AND i.status = 'completed' THEN 'completed'
           WHEN i.step = 'pipeline' AND i.status = 'failed' THEN 'failed'
           WHEN r.status = 'queued' THEN 'processing'
           ELSE r.status END,
         error = CASE WHEN i.step = 'pipeline' AND i.status = 'failed' THEN i.message ELSE r.error END,
         completed_at = CASE WHEN i.step = 'pipeline' AND i.status = 'completed' THEN clock_timestamp() ELSE r.completed_at END,
         updated_at = clock_timestamp()
       FROM ins i
       WHERE r.id = i.recording_id AND i.engine = $11::text
       RETURNING 1
     ), notified AS (
       SELECT pg_notify($12::text, recording_id) FROM ins
     )
     SELECT ins.*, (SELECT count(*) FROM step) AS _s, (SELECT count(*) FROM upd) AS _u, (SELECT count(*) FROM notified) AS _n FROM ins`,
    [
      e.recording_id,
      e.engine,
      key,
      e.step,
      e.track_index ?? null,
      e.status,
      e.message ?? null,
      e.duration_ms ?? null,
      e.worker_id ?? null,
      e.at,
      PRIMARY_ENGINE,
      EVENTS_CHANNEL,
    ],
  );
  const row = rows[0] as (StoredEvent & { _s?: unknown; _u?: unknown; _n?: unknown }) | undefined;
  if (!row) return undefined;
  const { _s, _u, _n, ...event } = row;
  void _s;
  void _u;
  void _n;
  return { ...event, id: Number(event.id) };
}

/** Events of a recording after `afterId` (the SSE replay and live tail). */
export async function eventsAfter(db: Queryable, recordingId: string, afterId: number, engine = PRIMARY_ENGINE, limit = 500): Promise<StoredEvent[]> {
  const { rows } = await db.query<StoredEvent>(
    `SELECT id, recording_id, engine, step, track_index, status, message, duration_ms, worker_id, at
       FROM events WHERE recording_id = $1 AND engine = $2 AND id > $3 ORDER BY id LIMIT $4`,
    [recordingId, engine, afterId, limit],
  );
  return rows.map((r) => ({ ...r, id: Number(r.id) }));
}
