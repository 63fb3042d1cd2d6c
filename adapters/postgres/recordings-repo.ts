/** Recordings, their tracks, results, step states and idempotency keys in Postgres. */
import type { Warning } from "../../pipeline/contracts/index.ts";
import { randomUUID } from "node:crypto";
import type pg from "pg";
import { Result } from "../../pipeline/contracts/index.ts";
import { appendEvent, eventsAfter, PRIMARY_ENGINE, type StoredEvent } from "./events.ts";
import { DELETED_SWEEPS_AFTER_SECONDS } from "../storage/sweeper.ts";
import { withTransaction } from "./pool.ts";
import { enqueueWebhookDeliveries, failedDelivery } from "./webhooks.ts";

export type RecordingStatus = "queued" | "processing" | "completed" | "failed";
export const TERMINAL: readonly RecordingStatus[] = ["completed", "failed"];

export interface RecordingRow {
  id: string;
  status: RecordingStatus;
  language: string;
  source: "upload" | "bucket";
  workflow_id: string | null;
  error: string | null;
  failed_step: string | null;
  created_at: Date;
  updated_at: Date;
  completed_at: Date | null;
  /** the API key that created it (null: the operator) */
  owner_key_id: string | null;
  /** a completed recording's warnings (tracks it went on without: pipeline/contracts/domain.ts Warning) */
  warnings: Warning[];
}

export interface TrackRow {
  track_index: number;
  participant: string;
  offset_seconds: number;
  source_key: string;
  owned: boolean;
  filename: string | null;
  size_bytes: number | null;
  format: string | null;
}

export interface StepRunRow {
  step: string;
  track_index: number;
  status: "started" | "succeeded" | "failed" | "retrying";
  attempts: number;
  worker_id: string | null;
  duration_ms: number | null;
  message: string | null;
  updated_at: Date;
}

export interface ResultRow {
  result: Result;
  audio_key: string | null;
  /** mixdown's peaks (0..1) for drawing a waveform; null in results stored without them */
  waveform?: number[] | null;
  saved_at: Date;
}

export interface NewRecording {
  id: string;
  language: string;
  source: "upload" | "bucket";
  tracks: TrackRow[];
  owner_key_id: string | null;
}

export type KeyReservation = { state: "reserved" } | { state: "pending" } | { state: "done"; recordingId: string } | { state: "mismatch" };

/** The request that reserved an idempotency key lost it before its recording was stored. */
export class IdempotencyKeyLostError extends Error {
  override readonly name = "IdempotencyKeyLostError";
}

/** What `startUnder` did with a queued recording. */
export type StartOutcome =
  | { outcome: "started"; workflowId: string }
  | { outcome: "already"; workflowId: string | null }
  | { outcome: "waiting"; inFlight: number }
  | { outcome: "gone"; workflowId?: string };

export interface ListPage {
  items: (RecordingRow & { track_count: number; participants: string[]; title: string | null; duration: number | null })[];
  next_cursor: string | null;
}

const encodeCursor = (r: { created_at: Date; id: string }): string =>
  Buffer.from(JSON.stringify([r.created_at.toISOString(), r.id])).toString("base64url");

export class InvalidCursorError extends Error {
  override readonly name = "InvalidCursorError";
}

function decodeCursor(cursor: string): [string, string] {
  try {
    const v = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as unknown;
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === "string" && typeof v[1] === "string" && !Number.isNaN(Date.parse(v[0]))) {
      return [v[0], v[1]];
    }
  } catch {
    /* fall through */
  }
  throw new InvalidCursorError("cursor is not one this API returned");
}

/**
 * A pending key is a lease: the request holding it renews it (touchKey) every few seconds
 * while its upload runs; one not renewed for this long belongs to an upload that died with
 * its process, and the client's retry with the same key takes it over. (It was 60 minutes
 * without renewal: the chaos run found every retry of an upload whose API was SIGKILLed
 * refused with 409 for an hour.)
 */
export const KEY_LEASE_SECONDS = 30;

export function createRecordingsRepo(pool: pg.Pool, opts: { keyLeaseSeconds?: number } = {}) {
  const keyLeaseSeconds = opts.keyLeaseSeconds ?? KEY_LEASE_SECONDS;
  const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
  const toTrack = (r: Record<string, unknown>): TrackRow => ({
    track_index: Number(r.track_index),
    participant: String(r.participant),
    offset_seconds: Number(r.offset_seconds),
    source_key: String(r.source_key),
    owned: Boolean(r.owned),
    filename: (r.filename as string | null) ?? null,
    size_bytes: num(r.size_bytes),
    format: (r.format as string | null) ?? null,
  });

  return {
    async ping(): Promise<void> {
      await pool.query("SELECT 1");
    },

    /**
     * Insert the recording and its tracks in one transaction (status queued, no workflow
     * yet), and complete its idempotency key in the same one: a crash leaves either nothing
     * or a recording its key answers with (and the reconciler starts).
     */
    async create(rec: NewRecording, idempotency?: { owner: string; key: string }): Promise<RecordingRow> {
      return withTransaction(pool, async (client) => {
        const { rows } = await client.query<RecordingRow>(
          `INSERT INTO recordings (id, status, language, source, owner_key_id) VALUES ($1, 'queued', $2, $3, $4) RETURNING *`,
          [rec.id, rec.language, rec.source, rec.owner_key_id],
        );
        for (const t of rec.tracks) {
          await client.query(
            `INSERT INTO tracks (recording_id, track_index, participant, offset_seconds, source_key, owned, filename, size_bytes, format)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
            [rec.id, t.track_index, t.participant, t.offset_seconds, t.source_key, t.owned, t.filename, t.size_bytes, t.format],
          );
        }
        if (idempotency) {
          const done = await client.query(
            `UPDATE idempotency_keys SET state = 'done', recording_id = $3 WHERE owner = $1 AND key = $2 AND state = 'pending'`,
            [idempotency.owner, idempotency.key, rec.id],
          );
          // taken over meanwhile (a stale reservation): this request no longer holds the key
          if (!done.rowCount) throw new IdempotencyKeyLostError(`the idempotency key was taken over by another request`);
        }
        // the upload's objects now belong to a row
        await client.query(`DELETE FROM upload_intents WHERE id = $1`, [rec.id]);
        return rows[0]!;
      });
    },

    /** An upload is about to write objects under recordings/<id>/ (cleared by create or clearUploadIntent). */
    async addUploadIntent(id: string): Promise<void> {
      await pool.query(`INSERT INTO upload_intents (id) VALUES ($1) ON CONFLICT (id) DO NOTHING`, [id]);
    },

    /** The upload's objects are gone (a refused upload, cleaned up). */
    async clearUploadIntent(id: string): Promise<void> {
      await pool.query(`DELETE FROM upload_intents WHERE id = $1`, [id]);
    },

    async setWorkflowId(id: string, workflowId: string): Promise<void> {
      await pool.query(`UPDATE recordings SET workflow_id = $2, updated_at = clock_timestamp() WHERE id = $1`, [id, workflowId]);
    },

    async get(id: string): Promise<RecordingRow | undefined> {
      const { rows } = await pool.query<RecordingRow>(`SELECT * FROM recordings WHERE id = $1`, [id]);
      return rows[0];
    },

    async tracks(id: string): Promise<TrackRow[]> {
      const { rows } = await pool.query(`SELECT * FROM tracks WHERE recording_id = $1 ORDER BY track_index`, [id]);
      return rows.map(toTrack);
    },

    /** Everything GET /v1/recordings/:id shows, in one round trip. */
    async details(id: string, engine = PRIMARY_ENGINE): Promise<
      { recording: RecordingRow; tracks: TrackRow[]; steps: StepRunRow[]; result: ResultRow | undefined } | undefined
    > {
      const { rows } = await pool.query(
        `SELECT to_jsonb(r) AS recording,
                COALESCE((SELECT jsonb_agg(to_jsonb(t) ORDER BY t.track_index) FROM tracks t WHERE t.recording_id = r.id), '[]') AS tracks,
                COALESCE((SELECT jsonb_agg(to_jsonb(s) ORDER BY s.updated_at, s.step, s.track_index) FROM step_runs s
                           WHERE s.recording_id = r.id AND s.engine = $2), '[]') AS steps,
                (SELECT jsonb_build_object('result', x.result, 'audio_key', x.audio_key, 'saved_at', x.saved_at)
                   FROM results x WHERE x.recording_id = r.id AND x.engine = $2) AS result
           FROM recordings r WHERE r.id = $1`,
        [id, engine],
      );
      const row = rows[0] as { recording: Record<string, unknown>; tracks: Record<string, unknown>[]; steps: Record<string, unknown>[]; result: Record<string, unknown> | null } | undefined;
      if (!row) return undefined;
      const date = (v: unknown): Date => new Date(String(v));
      const r = row.recording;
      return {
        recording: {
          ...(r as unknown as RecordingRow),
          created_at: date(r.created_at),
          updated_at: date(r.updated_at),
          completed_at: r.completed_at ? date(r.completed_at) : null,
        },
        tracks: row.tracks.map(toTrack),
        steps: row.steps.map((s) => ({ ...(s as unknown as StepRunRow), track_index: Number(s.track_index), updated_at: date(s.updated_at) })),
        result: row.result ? { result: row.result.result as Result, audio_key: (row.result.audio_key as string | null) ?? null, saved_at: date(row.result.saved_at) } : undefined,
      };
    },

    async result(id: string, engine = PRIMARY_ENGINE): Promise<ResultRow | undefined> {
      const { rows } = await pool.query<ResultRow>(`SELECT result, audio_key, waveform, saved_at FROM results WHERE recording_id = $1 AND engine = $2`, [id, engine]);
      return rows[0];
    },

    /** Newest first, keyset-paginated by (created_at, id); `owner` (a key id) limits it to that key's recordings. */
    async list(opts: { limit: number; cursor?: string; status?: RecordingStatus; owner?: string }): Promise<ListPage> {
      const after = opts.cursor ? decodeCursor(opts.cursor) : undefined;
      const { rows } = await pool.query<RecordingRow & { track_count: string; participants: string[]; title: string | null; duration: number | null }>(
        `SELECT r.*, (SELECT count(*) FROM tracks t WHERE t.recording_id = r.id) AS track_count,
                COALESCE((SELECT array_agg(t.participant ORDER BY t.track_index) FROM tracks t WHERE t.recording_id = r.id), '{}') AS participants,
                res.result->>'title' AS title, (res.result->>'duration')::double precision AS duration
           FROM recordings r
           LEFT JOIN results res ON res.recording_id = r.id AND res.engine = $6::text
          WHERE ($1::timestamptz IS NULL OR (r.created_at, r.id) < ($1::timestamptz, $2::text))
            AND ($3::text IS NULL OR r.status = $3)
            AND ($5::text IS NULL OR r.owner_key_id = $5)
          ORDER BY r.created_at DESC, r.id DESC
          LIMIT $4`,
        [after?.[0] ?? null, after?.[1] ?? null, opts.status ?? null, opts.limit + 1, opts.owner ?? null, PRIMARY_ENGINE],
      );
      const items = rows.slice(0, opts.limit).map((r) => ({ ...r, track_count: Number(r.track_count) }));
      return { items, next_cursor: rows.length > opts.limit ? encodeCursor(items[items.length - 1]!) : null };
    },

    /** Remove the recording and everything hanging off it; returns its tracks (for object cleanup). */
    async delete(id: string): Promise<{ recording: RecordingRow; tracks: TrackRow[] } | undefined> {
      return withTransaction(pool, async (client) => {
        const tracks = (await client.query(`SELECT * FROM tracks WHERE recording_id = $1`, [id])).rows.map(toTrack);
        const { rows } = await client.query<RecordingRow>(`DELETE FROM recordings WHERE id = $1 RETURNING *`, [id]);
        if (rows[0]) {
          // the BullMQ event log and shadow comparisons are keyed by recording id without a
          // foreign key (they also serve runs that have no recording row, e.g. the CLI)
          await client.query(`DELETE FROM shadow_runs WHERE recording_id = $1`, [id]);
          await client.query(`DELETE FROM pipeline_runs WHERE recording_id = $1`, [id]);
          // a step already running may still write under the recording's prefix: the storage
          // sweeper clears it again on a schedule (adapters/storage/sweeper.ts)
          await client.query(
            // one clock reading for both columns: the schedule is counted from the deletion exactly
            `INSERT INTO deleted_recordings (id, deleted_at, next_sweep_at)
             SELECT $1, t.now, t.now + make_interval(secs => $2) FROM (SELECT clock_timestamp() AS now) t
             ON CONFLICT (id) DO UPDATE SET deleted_at = EXCLUDED.deleted_at, sweeps = 0, next_sweep_at = EXCLUDED.next_sweep_at`,
            [id, DELETED_SWEEPS_AFTER_SECONDS[0]],
          );
        }
        return rows[0] ? { recording: rows[0], tracks } : undefined;
      });
    },

    /**
     * Mark a recording failed (once: a recording already failed or completed is left as it
     * is) and append the terminal event. Returns whether it changed.
     */
    async markFailed(id: string, reason: string, failedStep: string | null): Promise<boolean> {
      return withTransaction(pool, async (client) => {
        const { rowCount } = await client.query(
          `UPDATE recordings SET status = 'failed', error = $2, failed_step = $3, warnings = '[]'::jsonb, updated_at = clock_timestamp()
            WHERE id = $1 AND status IN ('queued', 'processing')`,
          [id, reason, failedStep],
        );
        if (rowCount) {
          await appendEvent(
            client,
            { recording_id: id, engine: PRIMARY_ENGINE, step: "pipeline", status: "failed", message: reason, at: new Date().toISOString() },
            `pipeline:failed:${randomUUID()}`,
          );
          await enqueueWebhookDeliveries(client, failedDelivery(id, reason)); // the outbox commits with the status
        }
        return Boolean(rowCount);
      });
    },

    /**
     * failed → processing after a Conductor retry (or → queued when its workflow never
     * started: the reconciler starts it); appends a 'pipeline retrying' event.
     */
    async markRetrying(id: string, to: "processing" | "queued" = "processing"): Promise<boolean> {
      return withTransaction(pool, async (client) => {
        const { rowCount } = await client.query(
          `UPDATE recordings SET status = $2, error = NULL, failed_step = NULL, warnings = '[]'::jsonb, updated_at = clock_timestamp()
            WHERE id = $1 AND status = 'failed'`,
          [id, to],
        );
        if (rowCount) {
          await appendEvent(
            client,
            { recording_id: id, engine: PRIMARY_ENGINE, step: "pipeline", status: "retrying", message: "retry requested", at: new Date().toISOString() },
            `pipeline:retrying:${randomUUID()}`,
          );
        }
        return Boolean(rowCount);
      });
    },

    /** Events after `afterId` and the recording's status, from one snapshot. */
    /**
     * Events after `afterId`, the status, and how many of the primary engine's steps are still
     * `started` (a step's own success is reported after the step: finalize's comes after the
     * recording is completed), all from one snapshot.
     */
    async tail(id: string, afterId: number): Promise<{ events: StoredEvent[]; status: RecordingStatus | undefined; running: number }> {
      const client = await pool.connect();
      try {
        await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
        const { rows } = await client.query<{ status: RecordingStatus; running: string }>(
          `SELECT r.status, (SELECT count(*) FROM step_runs s WHERE s.recording_id = r.id AND s.engine = $2 AND s.status = 'started') AS running
             FROM recordings r WHERE r.id = $1`,
          [id, PRIMARY_ENGINE],
        );
        const events = rows[0] ? await eventsAfter(client, id, afterId) : [];
        await client.query("COMMIT");
        return { events, status: rows[0]?.status, running: Number(rows[0]?.running ?? 0) };
      } catch (err) {
        await client.query("ROLLBACK").catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },

    /**
     * Start a queued recording's workflow, at most `maxPerOwner` of its owner's workflows in
     * flight. Runs under a per-owner advisory lock held until the workflow id is stored, so
     * two API processes (or a request and the reconciler) never start one recording twice
     * nor count past the cap. `start` is called with the row and its tracks and returns the
     * workflow id (it may find one already started); when it throws and `deleteOnFailure` is
     * set, the row goes in the same transaction (an upload intent is left for its objects).
     */
    async startUnder(
      id: string,
      maxPerOwner: number,
      start: (rec: RecordingRow, tracks: TrackRow[]) => Promise<string>,
      opts: { deleteOnFailure?: boolean } = {},
    ): Promise<StartOutcome> {
      const client = await pool.connect();
      try {
        await client.query("BEGIN");
        const first = await client.query<RecordingRow>(`SELECT * FROM recordings WHERE id = $1`, [id]);
        if (!first.rows[0]) {
          await client.query("COMMIT");
          return { outcome: "gone" };
        }
        await client.query(`SELECT pg_advisory_xact_lock(hashtext('trackscribe.start:' || $1::text))`, [first.rows[0].owner_key_id ?? ""]);
        // read again under the lock: another process may have started it meanwhile
        const { rows } = await client.query<RecordingRow>(`SELECT * FROM recordings WHERE id = $1`, [id]);
        const rec = rows[0];
        if (!rec) {
          await client.query("COMMIT");
          return { outcome: "gone" };
        }
        // processing with no workflow id: a workflow started (its tasks report) and the API
        // died before storing its id; `start` finds it by correlation id
        if (rec.workflow_id || (rec.status !== "queued" && rec.status !== "processing")) {
          await client.query("COMMIT");
          return { outcome: "already", workflowId: rec.workflow_id };
        }
        const counted = await client.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM recordings
            WHERE owner_key_id IS NOT DISTINCT FROM $1 AND status IN ('queued', 'processing') AND workflow_id IS NOT NULL`,
          [rec.owner_key_id],
        );
        const inFlight = counted.rows[0]!.n;
        if (inFlight >= maxPerOwner) {
          await client.query("COMMIT");
          return { outcome: "waiting", inFlight };
        }
        const tracks = (await client.query(`SELECT * FROM tracks WHERE recording_id = $1 ORDER BY track_index`, [id])).rows.map(toTrack);
        let workflowId: string;
        try {
          workflowId = await start(rec, tracks);
        } catch (err) {
          if (opts.deleteOnFailure) {
            await client.query(`INSERT INTO upload_intents (id) VALUES ($1) ON CONFLICT (id) DO NOTHING`, [id]);
            await client.query(`DELETE FROM recordings WHERE id = $1`, [id]);
            await client.query("COMMIT");
          } else await client.query("ROLLBACK");
          throw err;
        }
        const set = await client.query(`UPDATE recordings SET workflow_id = $2, updated_at = clock_timestamp() WHERE id = $1 AND workflow_id IS NULL`, [id, workflowId]);
        await client.query("COMMIT");
        return set.rowCount ? { outcome: "started", workflowId } : { outcome: "gone", workflowId };
      } catch (err) {
        await client.query("ROLLBACK").catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },

    /** Unfinished recordings with no workflow id, created more than `graceSeconds` ago, oldest first (the reconciler starts or adopts them). */
    async unstarted(graceSeconds: number, limit: number): Promise<(RecordingRow & { age_seconds: number })[]> {
      const { rows } = await pool.query<RecordingRow & { age_seconds: number }>(
        `SELECT *, extract(epoch FROM clock_timestamp() - created_at)::float8 AS age_seconds FROM recordings
          WHERE workflow_id IS NULL AND status IN ('queued', 'processing') AND created_at < clock_timestamp() - make_interval(secs => $1)
          ORDER BY created_at LIMIT $2`,
        [graceSeconds, limit],
      );
      return rows;
    },

    /** Unfinished recordings with a workflow, least recently updated first (for the reconciler). */
    async unfinished(limit: number): Promise<RecordingRow[]> {
      const { rows } = await pool.query<RecordingRow>(
        `SELECT * FROM recordings WHERE status IN ('queued', 'processing') AND workflow_id IS NOT NULL ORDER BY updated_at LIMIT $1`,
        [limit],
      );
      return rows;
    },

    async countByStatus(): Promise<Record<RecordingStatus, number>> {
      const { rows } = await pool.query<{ status: RecordingStatus; n: string }>(`SELECT status, count(*) AS n FROM recordings GROUP BY status`);
      const out: Record<RecordingStatus, number> = { queued: 0, processing: 0, completed: 0, failed: 0 };
      for (const r of rows) out[r.status] = Number(r.n);
      return out;
    },

    // ---- idempotency keys ----------------------------------------------------------
    /** Idempotency keys live in one owner's scope ('' for the operator). */
    /**
     * Reserve `key` for a request whose manifest hashes to `hash`. A key already used with
     * another manifest is a `mismatch` (the client reused a key for a different request).
     */
    async reserveKey(owner: string, key: string, hash: string): Promise<KeyReservation> {
      const inserted = await pool.query(
        `INSERT INTO idempotency_keys (owner, key, state, request_hash) VALUES ($1, $2, 'pending', $3) ON CONFLICT (owner, key) DO NOTHING`,
        [owner, key, hash],
      );
      if (inserted.rowCount) return { state: "reserved" };
      // take over a pending key whose upload died with its process
      const stale = await pool.query(
        `UPDATE idempotency_keys SET created_at = clock_timestamp(), request_hash = $4
          WHERE owner = $1 AND key = $2 AND state = 'pending' AND created_at < clock_timestamp() - make_interval(secs => $3)`,
        [owner, key, keyLeaseSeconds, hash],
      );
      if (stale.rowCount) return { state: "reserved" };
      const { rows } = await pool.query<{ state: "pending" | "done"; recording_id: string | null; request_hash: string | null }>(
        `SELECT state, recording_id, request_hash FROM idempotency_keys WHERE owner = $1 AND key = $2`,
        [owner, key],
      );
      const row = rows[0];
      if (!row) return this.reserveKey(owner, key, hash); // removed in between: try again
      if (row.request_hash !== null && row.request_hash !== hash) return { state: "mismatch" };
      if (row.state === "done" && row.recording_id) return { state: "done", recordingId: row.recording_id };
      return { state: "pending" };
    },
    /** renew a pending key's lease (its upload is still running) */
    async touchKey(owner: string, key: string): Promise<void> {
      await pool.query(`UPDATE idempotency_keys SET created_at = clock_timestamp() WHERE owner = $1 AND key = $2 AND state = 'pending'`, [owner, key]);
    },
    async releaseKey(owner: string, key: string): Promise<void> {
      await pool.query(`DELETE FROM idempotency_keys WHERE owner = $1 AND key = $2 AND state = 'pending'`, [owner, key]);
    },
  };
}

export type RecordingsRepo = ReturnType<typeof createRecordingsRepo>;
