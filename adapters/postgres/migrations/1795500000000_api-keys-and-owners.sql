-- Up Migration
-- API keys with owners (server/auth/keys.ts). A key is shown once when created; only its
-- SHA-256 is stored, with a short public prefix to find the row. Every recording belongs to
-- the key that created it (owner_key_id); the operator's API_TOKEN creates recordings with
-- no owner and sees every recording. Idempotency keys are scoped per owner.

CREATE TABLE IF NOT EXISTS api_keys (
  id            text PRIMARY KEY,
  name          text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
  prefix        text NOT NULL UNIQUE,
  key_hash      text NOT NULL CHECK (key_hash ~ '^[0-9a-f]{64}$'),
  created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
  last_used_at  timestamptz,
  revoked_at    timestamptz
);
-- a name names one live key; a revoked key keeps its name for the record
CREATE UNIQUE INDEX IF NOT EXISTS api_keys_live_name ON api_keys (name) WHERE revoked_at IS NULL;

ALTER TABLE recordings ADD COLUMN IF NOT EXISTS owner_key_id text REFERENCES api_keys (id);
CREATE INDEX IF NOT EXISTS recordings_owner_created ON recordings (owner_key_id, created_at DESC, id DESC);

-- the scope of an idempotency key: '' for the operator (API_TOKEN), else the owner's key id
ALTER TABLE idempotency_keys ADD COLUMN IF NOT EXISTS owner text NOT NULL DEFAULT '';
ALTER TABLE idempotency_keys DROP CONSTRAINT IF EXISTS idempotency_keys_pkey;
ALTER TABLE idempotency_keys ADD PRIMARY KEY (owner, key);

-- Down Migration
ALTER TABLE idempotency_keys DROP CONSTRAINT IF EXISTS idempotency_keys_pkey;
DELETE FROM idempotency_keys WHERE owner <> '';
ALTER TABLE idempotency_keys DROP COLUMN IF EXISTS owner;
ALTER TABLE idempotency_keys ADD PRIMARY KEY (key);
DROP INDEX IF EXISTS recordings_owner_created;
ALTER TABLE recordings DROP COLUMN IF EXISTS owner_key_id;
DROP TABLE IF EXISTS api_keys;
