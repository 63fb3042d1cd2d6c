-- Up Migration
-- Event log of the pure pipeline state machine (BullMQ engine) and shadow-mode comparisons.
-- Owned by the BullMQ/shadow engineer (workers/bullmq/event-log.ts, server/shadow/store.ts).

CREATE TABLE IF NOT EXISTS pipeline_runs (
  run_id        text PRIMARY KEY,
  recording_id  text NOT NULL,
  namespace     text NOT NULL,
  engine        text NOT NULL,
  status        text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
  started_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
  finished_at   timestamptz,
  error         text,
  -- the state machine's state after the last logged event; replay must reproduce it exactly
  final_state   jsonb
);
CREATE INDEX IF NOT EXISTS pipeline_runs_recording ON pipeline_runs (recording_id, namespace, started_at DESC);

CREATE TABLE IF NOT EXISTS pipeline_events (
  run_id    text NOT NULL REFERENCES pipeline_runs (run_id) ON DELETE CASCADE,
  seq       integer NOT NULL,
  event_id  text NOT NULL,
  type      text NOT NULL,
  outcome   text NOT NULL CHECK (outcome IN ('applied', 'ignored', 'rejected')),
  note      text,
  event     jsonb NOT NULL,
  at        timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (run_id, seq)
);

CREATE TABLE IF NOT EXISTS shadow_runs (
  recording_id          text PRIMARY KEY,
  status                text NOT NULL CHECK (status IN ('running', 'matched', 'mismatched', 'error')),
  bullmq_run_id         text,
  conductor_workflow_id text,
  matched               integer NOT NULL DEFAULT 0,
  mismatched            integer NOT NULL DEFAULT 0,
  ignored               integer NOT NULL DEFAULT 0,
  report                jsonb,
  error                 text,
  started_at            timestamptz NOT NULL DEFAULT clock_timestamp(),
  compared_at           timestamptz
);

CREATE TABLE IF NOT EXISTS shadow_items (
  recording_id    text NOT NULL REFERENCES shadow_runs (recording_id) ON DELETE CASCADE,
  step            text NOT NULL,
  track_index     integer NOT NULL DEFAULT -1, -- -1: not a per-track step
  check_name      text NOT NULL,
  classification  text NOT NULL CHECK (classification IN ('matched', 'mismatched', 'ignored')),
  summary         text NOT NULL,
  PRIMARY KEY (recording_id, step, track_index, check_name)
);
CREATE INDEX IF NOT EXISTS shadow_items_mismatched ON shadow_items (step) WHERE classification = 'mismatched';

CREATE TABLE IF NOT EXISTS shadow_step_durations (
  recording_id  text NOT NULL REFERENCES shadow_runs (recording_id) ON DELETE CASCADE,
  engine        text NOT NULL,
  step          text NOT NULL,
  track_index   integer NOT NULL DEFAULT -1,
  status        text NOT NULL,
  attempts      integer NOT NULL,
  duration_ms   double precision,
  PRIMARY KEY (recording_id, engine, step, track_index)
);

-- Down Migration
DROP TABLE IF EXISTS shadow_step_durations;
DROP TABLE IF EXISTS shadow_items;
DROP TABLE IF EXISTS shadow_runs;
DROP TABLE IF EXISTS pipeline_events;
DROP TABLE IF EXISTS pipeline_runs;
