-- Up Migration
-- Partial results: a recording whose meeting went on without a track (it could not be
-- decoded or transcribed after its retries) ends `completed` with one warning per such
-- track (pipeline/contracts/domain.ts resultWarnings), written with the status by the
-- finalize sink. A list of recordings shows them without loading each Result.
ALTER TABLE recordings ADD COLUMN IF NOT EXISTS warnings jsonb NOT NULL DEFAULT '[]'::jsonb;

-- Down Migration
ALTER TABLE recordings DROP COLUMN IF EXISTS warnings;
