/**
 * What workers write into Postgres, idempotently (a retried task overwrites, never
 * duplicates):
 *   createPgResultSink(pool)  finalize's ResultSink: upserts results(recording, engine); for
 *                             the user-visible engine also marks the recording completed
 *                             and appends the terminal 'pipeline completed' event.
 *   createPgEventSink(pool)   progress events (ProgressEvent), deduplicated by event key.
 * A recording deleted while its workflow was still running makes both no-ops (logged).
 */
import type pg from "pg";
import type { Logger } from "pino";
import { ProgressEvent, Result } from "../../pipeline/contracts/index.ts";
import type { ResultSink } from "../../pipeline/steps/deps.ts";
import { appendEvent, PRIMARY_ENGINE, type StoredEvent } from "./events.ts";
import { pgCode, PgCode } from "./pool.ts";

export interface SinkOptions {
  log?: Logger;
}

export function createPgResultSink(pool: pg.Pool, opts: SinkOptions = {}): ResultSink {
  return {
    async saveResult(recordingId, namespace, result, extras = {}) {
      const checked = Result.parse(result);
      const client = await pool.connect();
      try {
        await client.query("BEGIN");
        const { rowCount } = await client.query(
          `INSERT INTO results (recording_id, engine, result, audio_key, waveform, saved_at)
           SELECT $1, $2, $3, $4, $5, clock_timestamp() FROM recordings WHERE id = $1
           ON CONFLICT (recording_id, engine) DO UPDATE SET
             result = EXCLUDED.result,
             audio_key = COALESCE(EXCLUDED.audio_key, results.audio_key),
             waveform = COALESCE(EXCLUDED.waveform, results.waveform),
             saved_at = EXCLUDED.saved_at`,
          [recordingId, namespace, JSON.stringify(checked), extras.audio_key ?? null, extras.waveform ? JSON.stringify(extras.waveform) : null],
        );
        if (!rowCount) {
          await client.query("ROLLBACK");
          opts.log?.warn({ recording_id: recordingId, engine: namespace }, "result for an unknown (deleted?) recording dropped");
          return;
        }
        if (namespace === PRIMARY_ENGINE) {
          await client.query(
            `UPDATE recordings SET status = 'completed', error = NULL, failed_step = NULL,
               completed_at = COALESCE(completed_at, clock_timestamp()), updated_at = clock_timestamp()
             WHERE id = $1`,
            [recordingId],
          );
          await appendEvent(
            client,
            { recording_id: recordingId, engine: namespace, step: "pipeline", status: "completed", message: checked.title, at: new Date().toISOString() },
            "pipeline:completed",
          );
        }
        await client.query("COMMIT");
      } catch (err) {
        await client.query("ROLLBACK").catch(() => undefined);
        if (pgCode(err) === PgCode.foreignKeyViolation) {
          opts.log?.warn({ recording_id: recordingId, engine: namespace }, "result for a deleted recording dropped");
          return;
        }
        throw err;
      } finally {
        client.release();
      }
    },
  };
}

export interface EventSink {
  /**
   * Store one progress event. `key` identifies the event across re-sends (e.g.
   * `${taskId}:${status}`); by default step, track, status and time. Resolves with the
   * stored row, or undefined for a duplicate or a deleted recording.
   */
  record(event: ProgressEvent, key?: string): Promise<StoredEvent | undefined>;
}

export function createPgEventSink(pool: pg.Pool, opts: SinkOptions = {}): EventSink {
  return {
    async record(event, key) {
      const e = ProgressEvent.parse(event);
      try {
        return await appendEvent(pool, e, key);
      } catch (err) {
        if (pgCode(err) === PgCode.foreignKeyViolation) {
          opts.log?.debug({ recording_id: e.recording_id }, "event for a deleted recording dropped");
          return undefined;
        }
        throw err;
      }
    },
  };
}
