/**
 * Full-text search over a completed recording's title, summaries and transcript, and speaker
 * renames (which the index, the stored Result and the event log take in one transaction).
 *   indexResult(client, …)  called where the Result is committed: one row per turn
 *                            (transcript_segments) and one per recording (recording_search)
 *   createSearchRepo(pool)   search (websearch_to_tsquery, the 'simple' configuration) and renames
 */
import type pg from "pg";
import type { Result } from "../../pipeline/contracts/index.ts";
import { transcriptLines } from "../../pipeline/render/format-result.ts";
import { appendEvent, PRIMARY_ENGINE } from "./events.ts";
import { enqueueWebhookDeliveries } from "./webhooks.ts";

type Queryable = Pick<pg.Pool | pg.PoolClient | pg.Client, "query">;

/** Display names by speaker index (a speaker with no participant entry: "Speaker N"). */
export const speakerNames = (result: Pick<Result, "participants">): Map<number, string> => new Map(result.participants.map((p) => [p.speaker, p.name]));

/** (Re)build the search rows of a recording from its Result (idempotent: a re-run finalize replaces them). */
export async function indexResult(db: Queryable, recordingId: string, result: Result): Promise<void> {
  const names = speakerNames(result);
  const lines = transcriptLines(result.words);
  await db.query(`DELETE FROM transcript_segments WHERE recording_id = $1`, [recordingId]);
  if (lines.length) {
    // one statement for every turn: arrays unnested server-side
    await db.query(
      `INSERT INTO transcript_segments (recording_id, seq, owner_key_id, created_at, speaker, name, start_s, end_s, text)
       SELECT $1, s.seq, r.owner_key_id, r.created_at, s.speaker, s.name, s.start_s, s.end_s, s.text
         FROM recordings r,
              unnest($2::int[], $3::int[], $4::text[], $5::float8[], $6::float8[], $7::text[]) AS s(seq, speaker, name, start_s, end_s, text)
        WHERE r.id = $1`,
      [
        recordingId,
        lines.map((_, i) => i),
        lines.map((l) => l.speaker),
        lines.map((l) => names.get(l.speaker) ?? `Speaker ${l.speaker}`),
        lines.map((l) => l.start),
        lines.map((l) => l.end),
        lines.map((l) => l.text),
      ],
    );
  }
  await db.query(
    `INSERT INTO recording_search (recording_id, owner_key_id, created_at, title, summary)
     SELECT id, owner_key_id, created_at, $2, $3 FROM recordings WHERE id = $1
     ON CONFLICT (recording_id) DO UPDATE SET title = EXCLUDED.title, summary = EXCLUDED.summary`,
    [recordingId, result.title, [result.short_summary, result.long_summary].filter(Boolean).join("\n")],
  );
}

export interface SearchHit {
  recording_id: string;
  title: string;
  /** null for a hit in the title or summary */
  speaker: number | null;
  name: string | null;
  start: number | null;
  text: string;
}

export class BadSearchCursorError extends Error {
  override readonly name = "BadSearchCursorError";
}

/** Keyset position: the recording's creation (newest first), its id, then the turn (-1: title/summary). */
type Position = [string, string, number];
const encode = (p: Position): string => Buffer.from(JSON.stringify(p)).toString("base64url");
function decode(c: string): Position {
  try {
    const v = JSON.parse(Buffer.from(c, "base64url").toString("utf8")) as unknown;
    if (Array.isArray(v) && v.length === 3 && typeof v[0] === "string" && !Number.isNaN(Date.parse(v[0])) && typeof v[1] === "string" && Number.isInteger(v[2])) {
      return v as Position;
    }
  } catch {
    /* fall through */
  }
  throw new BadSearchCursorError("cursor is not one this API returned");
}

export interface Rename {
  speaker: number;
  name: string;
}

export class UnknownSpeakerError extends Error {
  override readonly name = "UnknownSpeakerError";
}

export function createSearchRepo(pool: pg.Pool) {
  return {
    /**
     * Hits of `q` in the recordings `owner` may see (undefined: every recording), newest
     * recording first; within one, its title/summary hit first, then its turns in order.
     */
    async search(q: string, opts: { owner?: string; limit: number; cursor?: string }): Promise<{ items: SearchHit[]; next_cursor: string | null }> {
      // two plans Postgres can choose between per query: the GIN index for a rare word, or
      // walking the (owner,) created_at order until a page is full for a common one. The
      // owner's filter is spelled out (not `$x IS NULL OR …`) so the owner's index applies.
      const params: unknown[] = [q, opts.limit + 1];
      const owner = opts.owner === undefined ? "" : `AND owner_key_id = $${params.push(opts.owner)}::text`;
      const after = opts.cursor ? decode(opts.cursor) : undefined;
      let pageCond = "";
      if (after) {
        const [c, r, n] = [params.push(after[0]), params.push(after[1]), params.push(after[2])];
        pageCond = `AND ((created_at, recording_id) < ($${c}::timestamptz, $${r}::text) OR (created_at = $${c}::timestamptz AND recording_id = $${r}::text AND seq > $${n}::int))`;
      }
      const { rows } = await pool.query<SearchHit & { created_at: Date; cursor_at: string; seq: number }>(
        // the tsquery written out in each WHERE (not a CTE): the planner then sees the words and
        // estimates how many rows match, which picks the plan
        `WITH hits AS (
           (SELECT created_at, recording_id, -1 AS seq, NULL::int AS speaker, NULL::text AS name, NULL::float8 AS start,
                   CASE WHEN to_tsvector('simple', title) @@ websearch_to_tsquery('simple', $1) THEN title ELSE summary END AS text
              FROM (SELECT rs.*, -1 AS seq FROM recording_search rs) rs
             WHERE tsv @@ websearch_to_tsquery('simple', $1) ${owner} ${pageCond}
             ORDER BY created_at DESC, recording_id DESC
             LIMIT $2)
           UNION ALL
           (SELECT created_at, recording_id, seq, speaker, name, start_s, text
              FROM transcript_segments
             WHERE tsv @@ websearch_to_tsquery('simple', $1) ${owner} ${pageCond}
             ORDER BY created_at DESC, recording_id DESC, seq
             LIMIT $2)
         )
         SELECT h.*, h.created_at::text AS cursor_at, rs.title FROM hits h JOIN recording_search rs ON rs.recording_id = h.recording_id
          ORDER BY h.created_at DESC, h.recording_id DESC, h.seq
          LIMIT $2`,
        params,
      );
      const page = rows.slice(0, opts.limit);
      const last = page[page.length - 1];
      return {
        items: page.map((r) => ({ recording_id: r.recording_id, title: r.title, speaker: r.speaker, name: r.name, start: r.start, text: r.text })),
        // the time as Postgres prints it (microseconds): a JS Date would cut it to milliseconds and skip rows
        next_cursor: rows.length > opts.limit && last ? encode([last.cursor_at, last.recording_id, last.seq]) : null,
      };
    },

    /**
     * Rename speakers of a completed recording: the stored Result's participants, the search
     * rows, a `participants` event (the SSE stream and the event log) and a
     * `recording.participants_updated` webhook delivery, in one transaction. Returns the new
     * participants, or undefined when the recording has no Result.
     */
    async rename(recordingId: string, renames: Rename[]): Promise<Result["participants"] | undefined> {
      const client = await pool.connect();
      try {
        await client.query("BEGIN");
        const { rows } = await client.query<{ result: Result }>(`SELECT result FROM results WHERE recording_id = $1 AND engine = $2 FOR UPDATE`, [recordingId, PRIMARY_ENGINE]);
        const result = rows[0]?.result;
        if (!result) {
          await client.query("ROLLBACK");
          return undefined;
        }
        const participants = result.participants.map((p) => ({ ...p }));
        for (const r of renames) {
          const p = participants.find((x) => x.speaker === r.speaker);
          if (!p) throw new UnknownSpeakerError(`speaker ${r.speaker} is not a participant of this recording (speakers: ${participants.map((x) => x.speaker).join(", ")})`);
          p.name = r.name;
        }
        await client.query(`UPDATE results SET result = jsonb_set(result, '{participants}', $3::jsonb) WHERE recording_id = $1 AND engine = $2`, [
          recordingId,
          PRIMARY_ENGINE,
          JSON.stringify(participants),
        ]);
        for (const r of renames) await client.query(`UPDATE transcript_segments SET name = $3 WHERE recording_id = $1 AND speaker = $2`, [recordingId, r.speaker, r.name]);
        const at = new Date().toISOString();
        const stamp = `${at}:${Math.random().toString(36).slice(2)}`;
        await appendEvent(
          client,
          // step 'participants' is not a pipeline step: the event log and SSE only (no step state)
          { recording_id: recordingId, engine: PRIMARY_ENGINE, step: "participants" as never, status: "updated" as never, message: JSON.stringify({ participants }), at },
          `participants:${stamp}`,
        );
        const { rows: rec } = await client.query<{ status: string }>(`SELECT status FROM recordings WHERE id = $1`, [recordingId]);
        await enqueueWebhookDeliveries(client, {
          event: "recording.participants_updated",
          dedupeKey: `participants:${recordingId}:${stamp}`,
          data: { recording_id: recordingId, status: rec[0]?.status ?? "completed", title: result.title, participants },
        });
        await client.query("COMMIT");
        return participants;
      } catch (err) {
        await client.query("ROLLBACK").catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },
  };
}

export type SearchRepo = ReturnType<typeof createSearchRepo>;
