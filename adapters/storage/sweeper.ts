/**
 * The storage sweeper: no object under `recordings/<id>/` outlives the recording it belongs
 * to, whichever process stops when. It works only from what the database says the API put
 * there (migration 1795400000000_storage-sweeps.sql), never from a listing of the bucket,
 * so objects of others in the same bucket (a client's own tracks, the CLI's staged runs)
 * are never touched.
 *
 *  - A deleted recording: DELETE removes its rows and objects at once, but a step that was
 *    already running (a Conductor task past its workflow's termination, a shadow step) may
 *    still write derived audio there afterwards. Its prefix is swept again at each of
 *    DELETED_SWEEPS_AFTER_SECONDS after the deletion (a restart of the API loses nothing:
 *    the schedule is a row), then the row goes.
 *  - An upload that never finished: its objects are written before its recording row
 *    exists. When the API stops mid-upload (crash, kill, lost node) they would stay forever;
 *    the intent row written before the first byte is still there, and once it is older than
 *    `uploadStaleSeconds` (no upload takes that long) the prefix is removed.
 *
 * One pass handles at most `limit` rows of each kind; several API instances may sweep at
 * once (every step is idempotent).
 */
import type pg from "pg";
import type { Logger } from "pino";
import type { Storage } from "../../pipeline/ports.ts";

/**
 * When a deleted recording's prefix is swept again, seconds after the deletion: soon for a
 * step that was finishing (a task's result upload), later for a long one (a transcription
 * of an hour of audio runs for minutes), and a day on for anything stuck.
 */
export const DELETED_SWEEPS_AFTER_SECONDS = [30, 300, 3600, 86400] as const;

export interface StorageSweepDeps {
  pool: pg.Pool;
  storage: Pick<Storage, "deletePrefix">;
  log: Logger;
  /** an upload intent older than this is an upload that will never finish */
  uploadStaleSeconds: number;
  /**
   * what else a deleted recording may leave behind outside storage, removed at each of its
   * sweeps (the shadow engine's BullMQ jobs: one still running at the deletion finishes later)
   */
  forget?: (recordingId: string) => Promise<unknown>;
  /** objects removed, by why (metrics) */
  onRemoved?: (reason: "deleted_recording" | "abandoned_upload", objects: number) => void;
}

export interface SweepOutcome {
  /** deleted recordings whose prefix was swept in this pass */
  deleted: number;
  /** abandoned uploads removed in this pass */
  abandoned: number;
  /** objects removed in this pass */
  objects: number;
}

export const recordingPrefix = (id: string): string => `recordings/${id}/`;

export function createStorageSweeper(deps: StorageSweepDeps) {
  const { pool, storage, log } = deps;
  return {
    async sweep(limit = 100): Promise<SweepOutcome> {
      const out: SweepOutcome = { deleted: 0, abandoned: 0, objects: 0 };

      const due = await pool.query<{ id: string; sweeps: number }>(
        `SELECT id, sweeps FROM deleted_recordings WHERE next_sweep_at <= clock_timestamp() ORDER BY next_sweep_at LIMIT $1`,
        [limit],
      );
      for (const { id, sweeps } of due.rows) {
        const n = await storage.deletePrefix(recordingPrefix(id));
        // Redis down must not hold up the storage sweep: a later sweep of this id tries again
        if (deps.forget) await deps.forget(id).catch((err: unknown) => log.warn({ err, recording_id: id }, "could not remove a deleted recording's queue jobs; the next sweep tries again"));
        const next = DELETED_SWEEPS_AFTER_SECONDS[sweeps + 1];
        if (next === undefined) await pool.query(`DELETE FROM deleted_recordings WHERE id = $1`, [id]);
        else {
          await pool.query(`UPDATE deleted_recordings SET sweeps = $2, next_sweep_at = deleted_at + make_interval(secs => $3) WHERE id = $1`, [
            id,
            sweeps + 1,
            next,
          ]);
        }
        out.deleted++;
        out.objects += n;
        if (n > 0) {
          log.warn({ recording_id: id, removed_objects: n, sweep: sweeps + 1 }, "objects written after the recording was deleted were removed");
          deps.onRemoved?.("deleted_recording", n);
        }
      }

      const stale = await pool.query<{ id: string; committed: boolean }>(
        `SELECT u.id, EXISTS (SELECT 1 FROM recordings r WHERE r.id = u.id) AS committed
           FROM upload_intents u
          WHERE u.started_at <= clock_timestamp() - make_interval(secs => $1)
          ORDER BY u.started_at LIMIT $2`,
        [deps.uploadStaleSeconds, limit],
      );
      for (const { id, committed } of stale.rows) {
        // a row with this id owns the objects (the intent outlived its commit): keep them
        const n = committed ? 0 : await storage.deletePrefix(recordingPrefix(id));
        await pool.query(`DELETE FROM upload_intents WHERE id = $1`, [id]);
        if (committed) continue;
        out.abandoned++;
        out.objects += n;
        log.warn({ recording_id: id, removed_objects: n }, "objects of an upload that never finished were removed");
        if (n > 0) deps.onRemoved?.("abandoned_upload", n);
      }
      return out;
    },
  };
}

export type StorageSweeper = ReturnType<typeof createStorageSweeper>;
