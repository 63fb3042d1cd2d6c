/**
 * Shadow comparisons in Postgres: one shadow_runs row per sampled recording (status,
 * engines' run ids, counts, the full report), its classified items (shadow_items, for
 * "mismatches by step") and every task's duration on each engine (shadow_step_durations,
 * for p50/p95 per step and engine).
 */
import type pg from "pg";
import { withTransaction } from "../../adapters/postgres/pool.ts";
import type { ShadowReport } from "./compare.ts";

export type ShadowStatus = "running" | "matched" | "mismatched" | "error";

export interface ShadowRecord {
  recording_id: string;
  status: ShadowStatus;
  bullmq_run_id: string | null;
  conductor_workflow_id: string | null;
  matched: number;
  mismatched: number;
  ignored: number;
  report: ShadowReport | null;
  error: string | null;
  started_at: Date;
  compared_at: Date | null;
}

export interface ShadowSummary {
  recordings: number;
  running: number;
  compared: number;
  matched: number;
  mismatched: number;
  errors: number;
  /** matched / compared (null before the first comparison) */
  match_rate: number | null;
  mismatches_by_step: { step: string; mismatches: number; recordings: number }[];
  durations: { step: string; engine: string; samples: number; p50_ms: number; p95_ms: number }[];
}

export interface ShadowStore {
  begin(recordingId: string): Promise<void>;
  setRunIds(recordingId: string, ids: { bullmq_run_id?: string | null; conductor_workflow_id?: string | null }): Promise<void>;
  saveReport(recordingId: string, report: ShadowReport): Promise<void>;
  saveError(recordingId: string, error: string): Promise<void>;
  get(recordingId: string): Promise<ShadowRecord | undefined>;
  summary(): Promise<ShadowSummary>;
  /** this process's runs are alive: their heartbeat is renewed */
  heartbeat(recordingIds: string[]): Promise<void>;
  /**
   * Runs left `running` by an API process that stopped (no heartbeat for `staleSeconds`)
   * are marked `error` with a reason: none stays running for ever. Returns how many.
   */
  failAbandoned(staleSeconds: number): Promise<number>;
    /** delete everything shadow mode and the BullMQ engine kept about a recording (its comparison, runs and event logs) */
  forget(recordingId: string): Promise<void>;
}

/** `runner`: this API process (its runs' heartbeat); a store without one only reads and compares. */
export function createShadowStore(pool: pg.Pool, opts: { runner?: string } = {}): ShadowStore {
  const runner = opts.runner ?? null;
  return {
    async begin(recordingId) {
      await pool.query(
        `INSERT INTO shadow_runs (recording_id, status, runner, heartbeat_at) VALUES ($1, 'running', $2, clock_timestamp())
         ON CONFLICT (recording_id) DO UPDATE SET status = 'running', report = NULL, error = NULL,
           matched = 0, mismatched = 0, ignored = 0, started_at = clock_timestamp(), compared_at = NULL,
           runner = EXCLUDED.runner, heartbeat_at = EXCLUDED.heartbeat_at`,
        [recordingId, runner],
      );
    },
    async heartbeat(recordingIds) {
      if (!runner || recordingIds.length === 0) return;
      await pool.query(
        `UPDATE shadow_runs SET heartbeat_at = clock_timestamp() WHERE recording_id = ANY($1::text[]) AND runner = $2 AND status = 'running'`,
        [recordingIds, runner],
      );
    },
    async failAbandoned(staleSeconds) {
      const { rowCount } = await pool.query(
        `UPDATE shadow_runs SET status = 'error', compared_at = clock_timestamp(),
           error = 'the API process running this shadow run stopped before it finished (restarted or killed)'
         WHERE status = 'running' AND COALESCE(heartbeat_at, started_at) < clock_timestamp() - make_interval(secs => $1)`,
        [staleSeconds],
      );
      return rowCount ?? 0;
    },
    async setRunIds(recordingId, ids) {
      await pool.query(
        `UPDATE shadow_runs SET bullmq_run_id = COALESCE($2, bullmq_run_id), conductor_workflow_id = COALESCE($3, conductor_workflow_id)
          WHERE recording_id = $1`,
        [recordingId, ids.bullmq_run_id ?? null, ids.conductor_workflow_id ?? null],
      );
    },
    async saveReport(recordingId, report) {
      await withTransaction(pool, async (client) => {
        await client.query(
          `UPDATE shadow_runs SET status = $2, matched = $3, mismatched = $4, ignored = $5, report = $6,
             bullmq_run_id = COALESCE($7, bullmq_run_id), conductor_workflow_id = COALESCE($8, conductor_workflow_id),
             error = NULL, compared_at = clock_timestamp()
           WHERE recording_id = $1`,
          [recordingId, report.verdict, report.counts.matched, report.counts.mismatched, report.counts.ignored, JSON.stringify(report), report.shadow.run_id, report.primary.run_id],
        );
        await client.query(`DELETE FROM shadow_items WHERE recording_id = $1`, [recordingId]);
        await client.query(`DELETE FROM shadow_step_durations WHERE recording_id = $1`, [recordingId]);
        const items = report.items;
        if (items.length) {
          await client.query(
            `INSERT INTO shadow_items (recording_id, step, track_index, check_name, classification, summary)
             SELECT $1, * FROM unnest($2::text[], $3::int[], $4::text[], $5::text[], $6::text[])
             ON CONFLICT DO NOTHING`,
            [
              recordingId,
              items.map((i) => i.step),
              items.map((i) => i.track_index ?? -1),
              items.map((i) => i.check),
              items.map((i) => i.classification),
              items.map((i) => i.summary),
            ],
          );
        }
        const rows = report.durations.flatMap((d) => [
          { engine: report.primary.engine, step: d.step, track: d.track_index ?? -1, ms: d.primary_ms, attempts: d.primary_attempts },
          { engine: report.shadow.engine, step: d.step, track: d.track_index ?? -1, ms: d.shadow_ms, attempts: d.shadow_attempts },
        ]).filter((r) => r.attempts > 0);
        if (rows.length) {
          await client.query(
            `INSERT INTO shadow_step_durations (recording_id, engine, step, track_index, status, attempts, duration_ms)
             SELECT $1, e, s, t, 'done', a, d FROM unnest($2::text[], $3::text[], $4::int[], $5::int[], $6::float8[]) AS u(e, s, t, a, d)`,
            [recordingId, rows.map((r) => r.engine), rows.map((r) => r.step), rows.map((r) => r.track), rows.map((r) => r.attempts), rows.map((r) => r.ms)],
          );
        }
      });
    },
    async saveError(recordingId, error) {
      await pool.query(`UPDATE shadow_runs SET status = 'error', error = $2, compared_at = clock_timestamp() WHERE recording_id = $1`, [recordingId, error]);
    },
    async forget(recordingId) {
      await pool.query(`DELETE FROM shadow_runs WHERE recording_id = $1`, [recordingId]);
      await pool.query(`DELETE FROM pipeline_runs WHERE recording_id = $1`, [recordingId]);
    },
    async get(recordingId) {
      const { rows } = await pool.query(`SELECT * FROM shadow_runs WHERE recording_id = $1`, [recordingId]);
      return rows[0] as ShadowRecord | undefined;
    },
    async summary() {
      const totals = await pool.query(
        `SELECT count(*)::int AS recordings,
                count(*) FILTER (WHERE status = 'running')::int AS running,
                count(*) FILTER (WHERE status IN ('matched', 'mismatched'))::int AS compared,
                count(*) FILTER (WHERE status = 'matched')::int AS matched,
                count(*) FILTER (WHERE status = 'mismatched')::int AS mismatched,
                count(*) FILTER (WHERE status = 'error')::int AS errors
           FROM shadow_runs`,
      );
      const byStep = await pool.query(
        `SELECT step, count(*)::int AS mismatches, count(DISTINCT recording_id)::int AS recordings
           FROM shadow_items WHERE classification = 'mismatched'
          GROUP BY step ORDER BY mismatches DESC, step`,
      );
      const durations = await pool.query(
        `SELECT step, engine, count(*)::int AS samples,
                percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) AS p50_ms,
                percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95_ms
           FROM shadow_step_durations WHERE duration_ms IS NOT NULL
          GROUP BY step, engine ORDER BY step, engine`,
      );
      const t = totals.rows[0] as Omit<ShadowSummary, "match_rate" | "mismatches_by_step" | "durations">;
      return {
        ...t,
        match_rate: t.compared > 0 ? t.matched / t.compared : null,
        mismatches_by_step: byStep.rows as ShadowSummary["mismatches_by_step"],
        durations: durations.rows.map((r: { step: string; engine: string; samples: number; p50_ms: number; p95_ms: number }) => ({
          step: r.step,
          engine: r.engine,
          samples: r.samples,
          p50_ms: Math.round(Number(r.p50_ms)),
          p95_ms: Math.round(Number(r.p95_ms)),
        })),
      };
    },
  };
}
