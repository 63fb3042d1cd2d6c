-- Up Migration
-- What the API's storage sweeper (adapters/storage/sweeper.ts) works from, so that no object under
-- recordings/<id>/ outlives the recording it belongs to, whatever process stops when:
--  - upload_intents: an upload's objects are written before its recording row exists; the row
--    is created in the same transaction that drops the intent, and a refused upload drops it
--    once its objects are gone. An intent that stays (the API stopped mid-upload) is the
--    sweeper's to clear after STORAGE_SWEEP_UPLOAD_STALE_SECONDS.
--  - deleted_recordings: a deleted recording's prefix is swept again on a schedule, since a
--    step that was already running (a Conductor task, a shadow step) may still write there.

CREATE TABLE IF NOT EXISTS upload_intents (
  id          text PRIMARY KEY,
  started_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS upload_intents_started ON upload_intents (started_at);

CREATE TABLE IF NOT EXISTS deleted_recordings (
  id             text PRIMARY KEY,
  deleted_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
  sweeps         integer NOT NULL DEFAULT 0,
  next_sweep_at  timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS deleted_recordings_due ON deleted_recordings (next_sweep_at);

-- Down Migration
DROP TABLE IF EXISTS deleted_recordings;
DROP TABLE IF EXISTS upload_intents;
