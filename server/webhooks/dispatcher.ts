/**
 * The webhook dispatcher: run by every API process, it claims due deliveries from the
 * outbox (adapters/postgres/webhooks.ts, FOR UPDATE SKIP LOCKED: two processes never send
 * one delivery at the same time), sends each signed (adapters/webhooks/send.ts) and records
 * the attempt: delivered; or, after a 5xx, 429, 408, timeout or network error, tried again
 * with exponential back-off and jitter (the receiver's Retry-After when longer) until
 * WEBHOOK_MAX_ATTEMPTS; or failed for good (another 4xx, a redirect, a forbidden address).
 */
import type { Logger } from "pino";
import type { ClaimedDelivery, WebhooksRepo } from "../../adapters/postgres/webhooks.ts";
import { sendWebhook, signatureHeader, type AttemptOutcome } from "../../adapters/webhooks/send.ts";
import type { Lookup } from "../../adapters/webhooks/destination.ts";

export interface DispatcherOptions {
  repo: WebhooksRepo;
  log: Logger;
  timeoutMs: number;
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
  allowPrivate: boolean;
  /** the API's public base URL for the body's links; unset: links are paths */
  publicUrl?: string | undefined;
  /** deliveries claimed per round, and sent at once */
  batch?: number;
  lookup?: Lookup;
  random?: () => number;
}

/** Growth of the back-off per attempt: with a 60 s base, 8 attempts span about a day. */
export const BACKOFF_FACTOR = 3.5;

/** Delay before attempt `attempt + 1`: base × 3.5^(attempt−1), capped, ±20 % jitter; never shorter than Retry-After (capped too). */
export function retryDelayMs(attempt: number, o: { retryBaseMs: number; retryMaxMs: number; retryAfterMs?: number | null; random?: () => number }): number {
  const raw = Math.min(o.retryMaxMs, o.retryBaseMs * BACKOFF_FACTOR ** Math.max(0, attempt - 1));
  const jittered = raw * (0.8 + 0.4 * (o.random ?? Math.random)());
  return Math.round(Math.min(o.retryMaxMs, Math.max(jittered, o.retryAfterMs ?? 0)));
}

export function linksFor(recordingId: string, publicUrl?: string): Record<string, string> {
  const base = (publicUrl ?? "").replace(/\/+$/, "");
  const r = `${base}/v1/recordings/${encodeURIComponent(recordingId)}`;
  return { recording: r, transcript: `${r}/transcript`, events: `${r}/events`, audio: `${r}/audio`, archive: `${r}/transcript?format=zip` };
}

/** The body as sent: the same bytes on every attempt of one delivery. */
export function deliveryBody(d: Pick<ClaimedDelivery, "id" | "event" | "data" | "created_at">, publicUrl?: string): string {
  return JSON.stringify({
    id: d.id,
    event: d.event,
    created_at: new Date(d.created_at).toISOString(),
    data: { ...d.data, links: linksFor(d.data.recording_id, publicUrl) },
  });
}

export function createWebhookDispatcher(opts: DispatcherOptions) {
  const stopping = new AbortController();
  let running: Promise<number> | undefined;
  const batch = opts.batch ?? 8;
  // a claim outlives the attempt: one timeout to send, the rest to record the outcome
  const leaseSeconds = Math.ceil(opts.timeoutMs / 1000) * 2 + 30;

  async function deliver(d: ClaimedDelivery): Promise<void> {
    const body = deliveryBody(d, opts.publicUrl);
    const t = Math.floor(Date.now() / 1000);
    let outcome: AttemptOutcome;
    try {
      outcome = await sendWebhook(
        d.url,
        body,
        { "trackscribe-signature": signatureHeader(d.secret, body, t), "trackscribe-event": d.event, "trackscribe-delivery": d.id },
        { timeoutMs: opts.timeoutMs, allowPrivate: opts.allowPrivate, signal: stopping.signal, ...(opts.lookup ? { lookup: opts.lookup } : {}) },
      );
    } catch (err) {
      opts.log.warn({ err, delivery_id: d.id }, "webhook attempt failed unexpectedly");
      outcome = { delivered: false, retryable: true, status_code: null, error: "internal_error", response_body: null, retry_after_ms: null, duration_ms: 0 };
    }
    if (outcome.error === "aborted") return; // shutting down: the lease runs out and another process (or we, after a restart) sends it
    const next = outcome.delivered
      ? ({ state: "delivered" } as const)
      : outcome.retryable && d.attempt < opts.maxAttempts
        ? ({ state: "retry", retryAt: new Date(Date.now() + retryDelayMs(d.attempt, { ...opts, retryAfterMs: outcome.retry_after_ms })) } as const)
        : ({ state: "failed" } as const);
    await opts.repo.report({ id: d.id, attempt: d.attempt }, outcome, next);
    opts.log.info(
      { delivery_id: d.id, event: d.event, attempt: d.attempt, status_code: outcome.status_code, error: outcome.error, next: next.state, duration_ms: outcome.duration_ms },
      "webhook attempt",
    );
  }

  /** One round: claim what is due, send it all, record each outcome. Resolves with how many were attempted. */
  async function round(): Promise<number> {
    if (stopping.signal.aborted) return 0;
    const due = await opts.repo.claimDue(batch, leaseSeconds);
    await Promise.all(due.map((d) => deliver(d).catch((err: unknown) => opts.log.warn({ err, delivery_id: d.id }, "could not record a webhook attempt"))));
    return due.length;
  }

  return {
    /** Rounds until nothing is due (one at a time per dispatcher). */
    async runOnce(): Promise<number> {
      if (running) return running;
      running = (async () => {
        let total = 0;
        for (let n = await round(); n > 0 && !stopping.signal.aborted; n = await round()) total += n;
        return total;
      })().finally(() => {
        running = undefined;
      });
      return running;
    },
    /** Abort attempts in flight (their leases run out; nothing is lost) and wait for the round to end. */
    async stop(): Promise<void> {
      stopping.abort();
      await running?.catch(() => undefined);
    },
  };
}

export type WebhookDispatcher = ReturnType<typeof createWebhookDispatcher>;
