-- Up Migration
-- Crash-safe creation (server/recordings.ts):
--  * an idempotency key is bound to a hash of its request's manifest: the same key with
--    another manifest is refused (422), never answered with the first request's recording;
--  * a recording is created `queued` with no workflow, and started under a per-owner lock
--    (MAX_WORKFLOWS_PER_OWNER); the API's reconciler starts what is left queued without a
--    workflow (a crash between row and start, or an owner at the cap), oldest first.
-- Shadow runs carry the API process that runs them and its heartbeat, so a run whose
-- process died is marked failed by any other (or the restarted) API.
ALTER TABLE idempotency_keys ADD COLUMN IF NOT EXISTS request_hash text;
CREATE INDEX IF NOT EXISTS recordings_unstarted ON recordings (created_at) WHERE workflow_id IS NULL AND status IN ('queued', 'processing');
CREATE INDEX IF NOT EXISTS recordings_in_flight ON recordings (owner_key_id) WHERE status IN ('queued', 'processing') AND workflow_id IS NOT NULL;
ALTER TABLE shadow_runs ADD COLUMN IF NOT EXISTS runner text;
ALTER TABLE shadow_runs ADD COLUMN IF NOT EXISTS heartbeat_at timestamptz;

-- Down Migration
ALTER TABLE shadow_runs DROP COLUMN IF EXISTS heartbeat_at;
ALTER TABLE shadow_runs DROP COLUMN IF EXISTS runner;
DROP INDEX IF EXISTS recordings_in_flight;
DROP INDEX IF EXISTS recordings_unstarted;
ALTER TABLE idempotency_keys DROP COLUMN IF EXISTS request_hash;
