/**
 * What workers write into Postgres, idempotently (a retried task overwrites, never
 * duplicates):
 *   createPgResultSink(pool)  finalize's ResultSink: upserts results(recording, engine); for
 *                             the user-visible engine also marks the recording completed
 *                             and appends the terminal 'pipeline completed' event, only
 *                             while it has not ended (a late finalize is logged, ignored).
 *   createPgEventSink(pool)   progress events (ProgressEvent), deduplicated by event key.
 * A recording deleted while its workflow was still running makes both no-ops (logged).
 */
import type pg from "pg";
import type { Logger } from "pino";
import { z } from "zod/v4";
import { ProgressEvent, Result, resultWarnings } from "../../pipeline/contracts/index.ts";
import type { TaskAttemptEvent } from "../../pipeline/contracts/progress.ts";
import type { ResultSink } from "../../pipeline/steps/deps.ts";
import { appendEvent, PRIMARY_ENGINE, type StoredEvent } from "./events.ts";
import { pgCode, PgCode } from "./pool.ts";
import { indexResult } from "./search.ts";
import { completedDelivery, enqueueWebhookDeliveries } from "./webhooks.ts";

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
        if (namespace === PRIMARY_ENGINE) {
          // finalize moves a recording to completed only from a state that is not final: a late
          // (zombie, or retried after a reconciler failed the recording) finalize changes nothing
          const { rows } = await client.query<{ status: string }>(`SELECT status FROM recordings WHERE id = $1 FOR UPDATE`, [recordingId]);
          const status = rows[0]?.status;
          if (status === "completed" || status === "failed") {
            await client.query("ROLLBACK");
            opts.log?.warn({ recording_id: recordingId, engine: namespace, status }, "late finalize ignored: the recording has already ended");
            return;
          }
        }
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
            `UPDATE recordings SET status = 'completed', error = NULL, failed_step = NULL, warnings = $2::jsonb,
               completed_at = COALESCE(completed_at, clock_timestamp()), updated_at = clock_timestamp()
             WHERE id = $1`,
            [recordingId, JSON.stringify(resultWarnings(checked))],
          );
          await appendEvent(
            client,
            { recording_id: recordingId, engine: namespace, step: "pipeline", status: "completed", message: checked.title, at: new Date().toISOString() },
            "pipeline:completed",
          );
          // committed with the status: the search rows and the webhook outbox (adapters/postgres/search.ts, webhooks.ts)
          await indexResult(client, recordingId, checked);
          await enqueueWebhookDeliveries(client, completedDelivery(recordingId, checked));
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

/** Progress events as stored: any lowercase step name (Conductor adds tasks such as plan_tracks). */
const StoredProgressEvent = ProgressEvent.extend({ step: z.string().regex(/^[a-z][a-z_]{0,63}$/, "step must be a lowercase task name") });

export function createPgEventSink(pool: pg.Pool, opts: SinkOptions = {}): EventSink {
  return {
    async record(event, key) {
      const e = StoredProgressEvent.parse(event) as ProgressEvent;
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

/** What a Conductor worker host reports per task attempt and status. */
export type ConductorTaskEvent = TaskAttemptEvent;

/**
 * The host's `onTaskEvent` hook writing into Postgres: one event per task attempt and
 * status (keyed by Conductor's task id, so a re-reported event is stored once). Never
 * throws: a progress write must not fail the task it describes.
 */
export function createConductorTaskEventHandler(pool: pg.Pool, opts: SinkOptions = {}): (e: ConductorTaskEvent) => Promise<void> {
  const sink = createPgEventSink(pool, opts);
  // steps such as merge_transcripts carry no recording id in their input: find it by workflow
  const byWorkflow = new Map<string, string>();
  const recordingOf = async (e: ConductorTaskEvent): Promise<string | undefined> => {
    if (e.recording_id) return e.recording_id;
    if (!e.workflow_id) return undefined;
    const known = byWorkflow.get(e.workflow_id);
    if (known) return known;
    const { rows } = await pool.query<{ id: string }>(`SELECT id FROM recordings WHERE workflow_id = $1`, [e.workflow_id]);
    if (rows[0]) {
      if (byWorkflow.size > 1000) byWorkflow.clear();
      byWorkflow.set(e.workflow_id, rows[0].id);
    }
    return rows[0]?.id;
  };
  return async (e) => {
    try {
      const recordingId = await recordingOf(e);
      if (!recordingId) return;
      await sink.record(
        {
          recording_id: recordingId,
          engine: e.namespace ?? "conductor",
          step: e.task as ProgressEvent["step"],
          ...(e.track_index !== undefined ? { track_index: e.track_index } : {}),
          status: e.status,
          ...(e.message ? { message: e.message.slice(0, 2000) } : {}),
          ...(e.duration_ms !== undefined ? { duration_ms: e.duration_ms } : {}),
          worker_id: e.worker_id,
          at: new Date().toISOString(),
        },
        `${e.task_id}:${e.status}`,
      );
    } catch (err) {
      opts.log?.warn({ err, recording_id: e.recording_id, task: e.task }, "could not store a task event");
    }
  };
}
