/**
 * Webhooks and their outbox in Postgres.
 *   enqueueWebhookDeliveries(client, …)  called inside the transaction that commits a
 *       recording's final status (finalize's result sink, markFailed, a speaker rename): one
 *       pending delivery per matching webhook, so the announcement commits with the state.
 *   createWebhooksRepo(pool)  the routes' CRUD, the delivery log, and the dispatcher's claim
 *       (FOR UPDATE SKIP LOCKED: two API processes never claim the same delivery) and report.
 */
import { randomBytes, randomUUID } from "node:crypto";
import type pg from "pg";
import { clientFailure } from "../../pipeline/failures.ts";
import { resultWarnings, type TrackStatus, type Warning } from "../../pipeline/contracts/index.ts";
import { withTransaction } from "./pool.ts";

type Queryable = Pick<pg.Pool | pg.PoolClient | pg.Client, "query">;

export const WEBHOOK_EVENTS = ["recording.completed", "recording.failed", "recording.participants_updated"] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

/** What a delivery's body carries under `data` (links are added when it is sent). */
export interface WebhookData {
  recording_id: string;
  status: string;
  title?: string;
  duration?: number;
  error?: string;
  error_code?: string;
  participants?: { speaker: number; name: string }[];
  /** a completed recording's warnings (tracks it went on without); absent when there are none */
  warnings?: Warning[];
}

/**
 * One pending delivery per webhook that hears about this recording: a key's webhooks hear
 * about its own recordings, the operator's about every recording. `dedupeKey` names the
 * state change: enqueued twice (a finalize run again), it is delivered once.
 */
export async function enqueueWebhookDeliveries(db: Queryable, e: { event: WebhookEvent; data: WebhookData; dedupeKey: string }): Promise<number> {
  const { rowCount } = await db.query(
    `INSERT INTO webhook_deliveries (id, webhook_id, event, recording_id, data, dedupe_key, status, next_attempt_at)
     SELECT gen_random_uuid()::text, w.id, $2::text, r.id, $3::jsonb, $4::text, 'pending', clock_timestamp()
       FROM recordings r JOIN webhooks w ON w.owner_key_id IS NULL OR w.owner_key_id = r.owner_key_id
      WHERE r.id = $1::text AND $2::text = ANY (w.events)
     ON CONFLICT (webhook_id, dedupe_key) DO NOTHING`,
    [e.data.recording_id, e.event, JSON.stringify(e.data), e.dedupeKey],
  );
  return rowCount ?? 0;
}

/** The delivery of a completion (once per recording, however often finalize runs). */
export const completedDelivery = (recordingId: string, result: { title: string; duration: number; tracks?: TrackStatus[] | undefined }) => {
  const warnings = resultWarnings(result);
  return {
    event: "recording.completed" as const,
    dedupeKey: `completed:${recordingId}`,
    data: { recording_id: recordingId, status: "completed", title: result.title, duration: result.duration, ...(warnings.length ? { warnings } : {}) },
  };
};

/** The delivery of a failure (each failure: a recording retried may fail again). Its error as a client may read it. */
export const failedDelivery = (recordingId: string, reason: string) => {
  const f = clientFailure(reason, "pipeline_failed");
  return {
    event: "recording.failed" as const,
    dedupeKey: `failed:${recordingId}:${randomUUID()}`,
    data: { recording_id: recordingId, status: "failed", ...(f ? { error: f.message, error_code: f.code } : {}) },
  };
};

export interface WebhookRow {
  id: string;
  owner_key_id: string | null;
  url: string;
  events: WebhookEvent[];
  created_at: Date;
}

export interface DeliveryRow {
  id: string;
  webhook_id: string;
  event: WebhookEvent;
  recording_id: string;
  status: "pending" | "delivered" | "failed";
  attempts: number;
  next_attempt_at: Date | null;
  last_status_code: number | null;
  last_error: string | null;
  created_at: Date;
  delivered_at: Date | null;
  redelivery_of: string | null;
  attempt_log: { attempt: number; at: string; status_code: number | null; error: string | null; response_body: string | null; duration_ms: number | null }[];
}

/** A delivery a dispatcher has claimed: everything it needs to send it. */
export interface ClaimedDelivery {
  id: string;
  event: WebhookEvent;
  data: WebhookData;
  created_at: Date;
  attempt: number;
  url: string;
  secret: string;
}

export const newWebhookSecret = (): string => `whsec_${randomBytes(32).toString("base64url")}`;

const encodeCursor = (r: { created_at: Date; id: string }): string => Buffer.from(JSON.stringify([r.created_at.toISOString(), r.id])).toString("base64url");
function decodeCursor(c: string): [string, string] | undefined {
  try {
    const v = JSON.parse(Buffer.from(c, "base64url").toString("utf8")) as unknown;
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === "string" && typeof v[1] === "string" && !Number.isNaN(Date.parse(v[0]))) return [v[0], v[1]];
  } catch {
    /* not ours */
  }
  return undefined;
}

export function createWebhooksRepo(pool: pg.Pool) {
  return {
    /** Refused (returns undefined) when the owner has `max` webhooks already. */
    async create(w: { owner_key_id: string | null; url: string; events: WebhookEvent[]; secret: string }, max: number): Promise<WebhookRow | undefined> {
      return withTransaction(pool, async (client) => {
        // one owner's creates take turns, so two at once cannot both pass the count
        await client.query(`SELECT pg_advisory_xact_lock(hashtext('webhooks:' || $1::text))`, [w.owner_key_id ?? ""]);
        const { rows: n } = await client.query<{ n: string }>(`SELECT count(*) AS n FROM webhooks WHERE owner_key_id IS NOT DISTINCT FROM $1`, [w.owner_key_id]);
        if (Number(n[0]!.n) >= max) return undefined;
        const { rows } = await client.query<WebhookRow>(
          `INSERT INTO webhooks (id, owner_key_id, url, events, secret) VALUES ($1, $2, $3, $4, $5) RETURNING id, owner_key_id, url, events, created_at`,
          [randomUUID(), w.owner_key_id, w.url, w.events, w.secret],
        );
        return rows[0];
      });
    },

    async get(id: string): Promise<WebhookRow | undefined> {
      const { rows } = await pool.query<WebhookRow>(`SELECT id, owner_key_id, url, events, created_at FROM webhooks WHERE id = $1`, [id]);
      return rows[0];
    },

    /** `owner` undefined: every webhook (the operator). */
    async list(owner: string | undefined): Promise<WebhookRow[]> {
      const { rows } = await pool.query<WebhookRow>(
        `SELECT id, owner_key_id, url, events, created_at FROM webhooks WHERE $1::text IS NULL OR owner_key_id = $1 ORDER BY created_at, id LIMIT 1000`,
        [owner ?? null],
      );
      return rows;
    },

    async delete(id: string): Promise<boolean> {
      const { rowCount } = await pool.query(`DELETE FROM webhooks WHERE id = $1`, [id]);
      return Boolean(rowCount);
    },

    /** A webhook's deliveries, newest first, each with its attempts. */
    async deliveries(webhookId: string, opts: { limit: number; cursor?: string }): Promise<{ items: DeliveryRow[]; next_cursor: string | null } | "bad_cursor"> {
      const after = opts.cursor ? decodeCursor(opts.cursor) : undefined;
      if (opts.cursor && !after) return "bad_cursor";
      const { rows } = await pool.query<DeliveryRow>(
        `SELECT d.id, d.webhook_id, d.event, d.recording_id, d.status, d.attempts, d.next_attempt_at, d.last_status_code, d.last_error,
                d.created_at, d.delivered_at, d.redelivery_of,
                COALESCE((SELECT jsonb_agg(jsonb_build_object('attempt', a.attempt, 'at', a.at, 'status_code', a.status_code, 'error', a.error,
                                                              'response_body', a.response_body, 'duration_ms', a.duration_ms) ORDER BY a.attempt)
                            FROM webhook_attempts a WHERE a.delivery_id = d.id), '[]') AS attempt_log
           FROM webhook_deliveries d
          WHERE d.webhook_id = $1 AND ($2::timestamptz IS NULL OR (d.created_at, d.id) < ($2::timestamptz, $3::text))
          ORDER BY d.created_at DESC, d.id DESC LIMIT $4`,
        [webhookId, after?.[0] ?? null, after?.[1] ?? null, opts.limit + 1],
      );
      const items = rows.slice(0, opts.limit);
      return { items, next_cursor: rows.length > opts.limit ? encodeCursor(items[items.length - 1]!) : null };
    },

    /** A new delivery of the same event and data (a new id: the receiver's dedup sees a new delivery). */
    async redeliver(webhookId: string, deliveryId: string): Promise<DeliveryRow | undefined> {
      const id = randomUUID();
      const { rowCount } = await pool.query(
        `INSERT INTO webhook_deliveries (id, webhook_id, event, recording_id, data, dedupe_key, redelivery_of, status, next_attempt_at)
         SELECT $3, webhook_id, event, recording_id, data, 'redelivery:' || $3, id, 'pending', clock_timestamp()
           FROM webhook_deliveries WHERE id = $2 AND webhook_id = $1`,
        [webhookId, deliveryId, id],
      );
      return rowCount ? this.delivery(id) : undefined;
    },

    async delivery(id: string): Promise<DeliveryRow | undefined> {
      const { rows } = await pool.query<DeliveryRow>(
        `SELECT id, webhook_id, event, recording_id, status, attempts, next_attempt_at, last_status_code, last_error, created_at, delivered_at, redelivery_of,
                '[]'::jsonb AS attempt_log FROM webhook_deliveries WHERE id = $1`,
        [id],
      );
      return rows[0];
    },

    /**
     * Claim up to `limit` due deliveries for `leaseSeconds`: each claimed row's attempt
     * counter goes up and no other dispatcher claims it until the lease runs out (a
     * dispatcher that died mid-send: the delivery is sent again, same id).
     */
    async claimDue(limit: number, leaseSeconds: number): Promise<ClaimedDelivery[]> {
      const { rows } = await pool.query<{ id: string; event: WebhookEvent; data: WebhookData; created_at: Date; attempts: number; url: string; secret: string }>(
        `WITH due AS (
           SELECT id FROM webhook_deliveries
            WHERE status = 'pending' AND next_attempt_at <= clock_timestamp()
              AND (claimed_until IS NULL OR claimed_until < clock_timestamp())
            ORDER BY next_attempt_at
            LIMIT $1
            FOR UPDATE SKIP LOCKED
         )
         UPDATE webhook_deliveries d
            SET attempts = d.attempts + 1, claimed_until = clock_timestamp() + make_interval(secs => $2)
           FROM due, webhooks w
          WHERE d.id = due.id AND w.id = d.webhook_id
         RETURNING d.id, d.event, d.data, d.created_at, d.attempts, w.url, w.secret`,
        [limit, leaseSeconds],
      );
      return rows.map((r) => ({ id: r.id, event: r.event, data: r.data, created_at: r.created_at, attempt: r.attempts, url: r.url, secret: r.secret }));
    },

    /**
     * The outcome of attempt `attempt`: delivered, retried at `retryAt`, or failed for good.
     * Ignored when the row was claimed again meanwhile (this dispatcher's lease ran out).
     */
    async report(
      d: { id: string; attempt: number },
      o: { status_code: number | null; error: string | null; response_body: string | null; duration_ms: number },
      next: { state: "delivered" } | { state: "retry"; retryAt: Date } | { state: "failed" },
    ): Promise<boolean> {
      return withTransaction(pool, async (client) => {
        const { rowCount } = await client.query(
          `UPDATE webhook_deliveries SET
             status = $3, claimed_until = NULL,
             next_attempt_at = $4::timestamptz,
             last_status_code = $5, last_error = $6,
             delivered_at = CASE WHEN $3 = 'delivered' THEN clock_timestamp() ELSE delivered_at END
           WHERE id = $1 AND attempts = $2 AND status = 'pending'`,
          [d.id, d.attempt, next.state === "retry" ? "pending" : next.state, next.state === "retry" ? next.retryAt.toISOString() : null, o.status_code, o.error],
        );
        if (!rowCount) return false;
        await client.query(
          `INSERT INTO webhook_attempts (delivery_id, attempt, status_code, error, response_body, duration_ms) VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (delivery_id, attempt) DO NOTHING`,
          [d.id, d.attempt, o.status_code, o.error, o.response_body, o.duration_ms],
        );
        return true;
      });
    },
  };
}

export type WebhooksRepo = ReturnType<typeof createWebhooksRepo>;
