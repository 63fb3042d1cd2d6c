/**
 * The event log of pipeline runs: every event the state machine handled, in order, with
 * its outcome, appended BEFORE the event's instructions run; plus one row per run with
 * the final state. `trackscribe replay` rebuilds a run's state from it.
 * Postgres tables: pipeline_runs, pipeline_events (adapters/postgres/migrations).
 */
import type pg from "pg";
import type { PipelineEventInput, PipelineState, Outcome } from "../../pipeline/state/index.ts";
import { isDependencyOutage } from "../outage.ts";

export interface RunRecord {
  run_id: string;
  recording_id: string;
  namespace: string;
  engine: string;
  status: "running" | "succeeded" | "failed";
  started_at: Date;
  finished_at: Date | null;
  error: string | null;
  final_state: PipelineState | null;
}

export interface LoggedEvent {
  seq: number;
  event: PipelineEventInput;
  outcome: Outcome;
  note: string | null;
  at: Date;
}

export interface EventLog {
  readonly describe: string;
  createRun(run: { run_id: string; recording_id: string; namespace: string; engine: string }): Promise<void>;
  append(runId: string, seq: number, event: PipelineEventInput, outcome: Outcome, note: string | null): Promise<void>;
  finishRun(runId: string, status: "succeeded" | "failed", finalState: PipelineState, error: string | null): Promise<void>;
  events(runId: string): Promise<LoggedEvent[]>;
  run(runId: string): Promise<RunRecord | undefined>;
  /** the newest run of a recording (in one namespace, or any) */
  latestRun(recordingId: string, namespace?: string): Promise<RunRecord | undefined>;
}

export class EventLogError extends Error {
  override readonly name = "EventLogError";
}

/**
 * The log in Postgres. A query that meets Postgres down or restarting (refused, dropped,
 * "starting up") is tried again with a growing pause for up to `outageWaitMs`: a run on
 * BullMQ outlives a database restart as its jobs outlive a Redis one, instead of ending in
 * error for a fault of nobody's. An insert tried again after its connection dropped may
 * have committed the first time: its duplicate key then means done.
 */
export function createPgEventLog(pool: pg.Pool, opts: { outageWaitMs?: number } = {}): EventLog {
  const waitMs = opts.outageWaitMs ?? 60_000;
  const query = async (sql: string, params: unknown[]): Promise<pg.QueryResult> => {
    const deadline = Date.now() + waitMs;
    for (let attempt = 1, pause = 200; ; attempt++, pause = Math.min(pause * 2, 2000)) {
      try {
        return await pool.query(sql, params);
      } catch (err) {
        if (attempt > 1 && (err as { code?: string }).code === "23505") return { rows: [], rowCount: 0 } as unknown as pg.QueryResult;
        if (!isDependencyOutage(err) || Date.now() + pause > deadline) throw err;
        await new Promise((r) => setTimeout(r, pause));
      }
    }
  };
  const toRun = (r: Record<string, unknown>): RunRecord => r as unknown as RunRecord;
  return {
    describe: "postgres pipeline_events",
    async createRun(run) {
      await query(
        `INSERT INTO pipeline_runs (run_id, recording_id, namespace, engine, status) VALUES ($1, $2, $3, $4, 'running')`,
        [run.run_id, run.recording_id, run.namespace, run.engine],
      );
    },
    async append(runId, seq, event, outcome, note) {
      await query(
        `INSERT INTO pipeline_events (run_id, seq, event_id, type, outcome, note, event) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [runId, seq, event.id, event.type, outcome, note, JSON.stringify(event)],
      );
    },
    async finishRun(runId, status, finalState, error) {
      await query(
        `UPDATE pipeline_runs SET status = $2, final_state = $3, error = $4, finished_at = now() WHERE run_id = $1`,
        [runId, status, JSON.stringify(finalState), error],
      );
    },
    async events(runId) {
      const { rows } = await query(`SELECT seq, event, outcome, note, at FROM pipeline_events WHERE run_id = $1 ORDER BY seq`, [runId]);
      return rows as LoggedEvent[];
    },
    async run(runId) {
      const { rows } = await query(`SELECT * FROM pipeline_runs WHERE run_id = $1`, [runId]);
      return rows[0] ? toRun(rows[0]) : undefined;
    },
    async latestRun(recordingId, namespace) {
      const { rows } = await query(
        `SELECT * FROM pipeline_runs WHERE recording_id = $1 AND ($2::text IS NULL OR namespace = $2)
          ORDER BY started_at DESC, run_id DESC LIMIT 1`,
        [recordingId, namespace ?? null],
      );
      return rows[0] ? toRun(rows[0]) : undefined;
    },
  };
}

/** For CLI runs without DATABASE_URL: the same contract, kept in memory for the process. */
export function createMemoryEventLog(): EventLog {
  const runs = new Map<string, RunRecord>();
  const events = new Map<string, LoggedEvent[]>();
  const copy = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;
  return {
    describe: "in-memory event log",
    async createRun(run) {
      if (runs.has(run.run_id)) throw new EventLogError(`run ${run.run_id} already exists`);
      runs.set(run.run_id, { ...run, status: "running", started_at: new Date(), finished_at: null, error: null, final_state: null });
      events.set(run.run_id, []);
    },
    async append(runId, seq, event, outcome, note) {
      const list = events.get(runId);
      if (!list) throw new EventLogError(`no run ${runId}`);
      if (list.some((e) => e.seq === seq)) throw new EventLogError(`run ${runId} already has event #${seq}`);
      list.push({ seq, event: copy(event), outcome, note, at: new Date() });
    },
    async finishRun(runId, status, finalState, error) {
      const r = runs.get(runId);
      if (!r) throw new EventLogError(`no run ${runId}`);
      Object.assign(r, { status, final_state: copy(finalState), error, finished_at: new Date() });
    },
    async events(runId) {
      return [...(events.get(runId) ?? [])].sort((a, b) => a.seq - b.seq);
    },
    async run(runId) {
      return runs.get(runId);
    },
    async latestRun(recordingId, namespace) {
      return [...runs.values()]
        .filter((r) => r.recording_id === recordingId && (namespace === undefined || r.namespace === namespace))
        .sort((a, b) => b.started_at.getTime() - a.started_at.getTime())
        .at(0);
    },
  };
}
