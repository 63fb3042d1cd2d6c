-- Up Migration
-- The API's tables (adapters/postgres/recordings-repo.ts, adapters/postgres/sinks.ts). Owned by the API engineer.

-- One uploaded (or bucket-referenced) multitrack recording. `status` is what users see:
-- queued (stored, workflow started) → processing (first task event) → completed | failed.
CREATE TABLE IF NOT EXISTS recordings (
  id            text PRIMARY KEY,
  status        text NOT NULL CHECK (status IN ('queued', 'processing', 'completed', 'failed')),
  language      text NOT NULL,
  source        text NOT NULL CHECK (source IN ('upload', 'bucket')),
  workflow_id   text,
  error         text,
  failed_step   text,
  created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
  updated_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
  completed_at  timestamptz
);
CREATE INDEX IF NOT EXISTS recordings_created ON recordings (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS recordings_active ON recordings (updated_at) WHERE status IN ('queued', 'processing');

CREATE TABLE IF NOT EXISTS tracks (
  recording_id    text NOT NULL REFERENCES recordings (id) ON DELETE CASCADE,
  track_index     integer NOT NULL CHECK (track_index >= 0),
  participant     text NOT NULL,
  offset_seconds  double precision NOT NULL CHECK (offset_seconds >= 0),
  source_key      text NOT NULL,
  -- true when the object lives under recordings/{id}/ and is deleted with the recording
  owned           boolean NOT NULL,
  filename        text,
  size_bytes      bigint,
  format          text,
  PRIMARY KEY (recording_id, track_index)
);

-- One Result per (recording, engine): 'conductor' is the user-visible one; a shadow run
-- ('bullmq') writes its own row and never touches it. Upserted: a retried finalize overwrites.
CREATE TABLE IF NOT EXISTS results (
  recording_id  text NOT NULL REFERENCES recordings (id) ON DELETE CASCADE,
  engine        text NOT NULL,
  result        jsonb NOT NULL,
  audio_key     text,
  waveform      jsonb,
  saved_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (recording_id, engine)
);

-- Latest state of every step (per track for per-track steps; -1 otherwise), per engine.
CREATE TABLE IF NOT EXISTS step_runs (
  recording_id  text NOT NULL REFERENCES recordings (id) ON DELETE CASCADE,
  engine        text NOT NULL,
  step          text NOT NULL,
  track_index   integer NOT NULL DEFAULT -1,
  status        text NOT NULL CHECK (status IN ('started', 'succeeded', 'failed', 'retrying')),
  attempts      integer NOT NULL DEFAULT 0,
  worker_id     text,
  duration_ms   double precision,
  message       text,
  updated_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (recording_id, engine, step, track_index)
);

-- Progress events in arrival order (the SSE replay). `event_key` makes a re-sent event a no-op.
CREATE TABLE IF NOT EXISTS events (
  id            bigserial PRIMARY KEY,
  recording_id  text NOT NULL REFERENCES recordings (id) ON DELETE CASCADE,
  engine        text NOT NULL,
  event_key     text NOT NULL,
  step          text NOT NULL,
  track_index   integer,
  status        text NOT NULL,
  message       text,
  duration_ms   double precision,
  worker_id     text,
  at            timestamptz NOT NULL,
  UNIQUE (recording_id, engine, event_key)
);
CREATE INDEX IF NOT EXISTS events_by_recording ON events (recording_id, engine, id);

-- Idempotency-Key → recording. A key is 'pending' while its upload runs (a concurrent
-- duplicate gets 409) and removed again if that upload fails.
CREATE TABLE IF NOT EXISTS idempotency_keys (
  key           text PRIMARY KEY,
  recording_id  text REFERENCES recordings (id) ON DELETE CASCADE,
  state         text NOT NULL CHECK (state IN ('pending', 'done')),
  created_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Down Migration
DROP TABLE IF EXISTS idempotency_keys;
DROP TABLE IF EXISTS events;
DROP TABLE IF EXISTS step_runs;
DROP TABLE IF EXISTS results;
DROP TABLE IF EXISTS tracks;
DROP TABLE IF EXISTS recordings;
