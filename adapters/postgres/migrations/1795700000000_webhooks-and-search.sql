-- Up Migration
-- Integrations (adapters/postgres/webhooks.ts, adapters/postgres/search.ts).
--
-- Webhooks and their outbox. A webhook belongs to the API key that made it (owner_key_id;
-- null: the operator's, which hears about every recording). A delivery row is written in
-- the same transaction that commits a recording's final status, so a completion is never
-- lost and never announced for a state that did not commit; the API's dispatcher sends it
-- (claiming rows with FOR UPDATE SKIP LOCKED, so several API processes never send one
-- delivery at the same time). The secret is kept as given: it is needed to sign.

CREATE TABLE IF NOT EXISTS webhooks (
  id            text PRIMARY KEY,
  owner_key_id  text REFERENCES api_keys (id) ON DELETE CASCADE,
  url           text NOT NULL CHECK (length(url) <= 2048),
  events        text[] NOT NULL,
  secret        text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS webhooks_owner ON webhooks (owner_key_id, created_at);

CREATE TABLE IF NOT EXISTS webhook_deliveries (
  id               text PRIMARY KEY,
  webhook_id       text NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
  event            text NOT NULL,
  -- no foreign key: a delivery about a recording outlives the recording's deletion
  recording_id     text NOT NULL,
  -- the event's data as committed with the status; the body is built from it on every attempt
  data             jsonb NOT NULL,
  -- the same state change is enqueued once per webhook (a re-run finalize is not a new completion)
  dedupe_key       text NOT NULL,
  redelivery_of    text,
  status           text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts         integer NOT NULL DEFAULT 0,
  next_attempt_at  timestamptz,
  -- a dispatcher that claimed the row holds it until then (it sends, then records the outcome)
  claimed_until    timestamptz,
  last_status_code integer,
  last_error       text,
  created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
  delivered_at     timestamptz,
  UNIQUE (webhook_id, dedupe_key)
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS webhook_deliveries_by_hook ON webhook_deliveries (webhook_id, created_at DESC, id DESC);

CREATE TABLE IF NOT EXISTS webhook_attempts (
  delivery_id    text NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
  attempt        integer NOT NULL,
  at             timestamptz NOT NULL DEFAULT clock_timestamp(),
  status_code    integer,
  error          text,
  -- at most 1 KB of the receiver's answer (the owner's own endpoint)
  response_body  text CHECK (response_body IS NULL OR octet_length(response_body) <= 1024),
  duration_ms    double precision,
  PRIMARY KEY (delivery_id, attempt)
);

-- Search: one row per turn of a completed recording's transcript (consecutive words of one
-- speaker, as the transcript formats group them) and one per recording for its title and
-- summaries. Owner copied in so a key's search is one index scan. The 'simple'
-- configuration: no stemming and no stop words, the same for every language.
CREATE TABLE IF NOT EXISTS transcript_segments (
  recording_id  text NOT NULL REFERENCES recordings (id) ON DELETE CASCADE,
  seq           integer NOT NULL,
  owner_key_id  text,
  -- the recording's, copied: search pages go newest recording first, walking these indexes
  created_at    timestamptz NOT NULL,
  speaker       integer NOT NULL,
  name          text NOT NULL,
  start_s       double precision NOT NULL,
  end_s         double precision NOT NULL,
  text          text NOT NULL,
  tsv           tsvector GENERATED ALWAYS AS (to_tsvector('simple', text)) STORED,
  PRIMARY KEY (recording_id, seq)
);
CREATE INDEX IF NOT EXISTS transcript_segments_tsv ON transcript_segments USING gin (tsv);
-- the planner's guess of how many turns hold a word comes from the column's most common
-- elements; a long list makes the guess for a word outside it (rare, or absent) small, so such
-- a word is looked up in the GIN index instead of walking every turn in page order
ALTER TABLE transcript_segments ALTER COLUMN tsv SET STATISTICS 10000;
-- a word found in most turns is answered by walking turns in page order until a page is full
CREATE INDEX IF NOT EXISTS transcript_segments_order ON transcript_segments (created_at DESC, recording_id DESC, seq);
CREATE INDEX IF NOT EXISTS transcript_segments_owner_order ON transcript_segments (owner_key_id, created_at DESC, recording_id DESC, seq);

CREATE TABLE IF NOT EXISTS recording_search (
  recording_id  text PRIMARY KEY REFERENCES recordings (id) ON DELETE CASCADE,
  owner_key_id  text,
  created_at    timestamptz NOT NULL,
  title         text NOT NULL,
  summary       text NOT NULL,
  tsv           tsvector GENERATED ALWAYS AS (
                  setweight(to_tsvector('simple', title), 'A') || setweight(to_tsvector('simple', summary), 'B')) STORED
);
CREATE INDEX IF NOT EXISTS recording_search_tsv ON recording_search USING gin (tsv);
CREATE INDEX IF NOT EXISTS recording_search_order ON recording_search (created_at DESC, recording_id DESC);
CREATE INDEX IF NOT EXISTS recording_search_owner_order ON recording_search (owner_key_id, created_at DESC, recording_id DESC);

-- Down Migration
DROP TABLE IF EXISTS recording_search;
DROP TABLE IF EXISTS transcript_segments;
DROP TABLE IF EXISTS webhook_attempts;
DROP TABLE IF EXISTS webhook_deliveries;
DROP TABLE IF EXISTS webhooks;
