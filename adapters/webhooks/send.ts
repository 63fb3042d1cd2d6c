/**
 * One webhook attempt over HTTP: the destination resolved and checked once
 * (./destination.ts), the connection made to exactly that address, the signed body POSTed,
 * redirects not followed, the whole attempt bounded by a timeout, and at most 1 KB of the
 * answer kept. The outcome says whether another attempt may help.
 */
import { createHmac } from "node:crypto";
import http from "node:http";
import https from "node:https";
import type { LookupFunction } from "node:net";
import { checkWebhookUrl, DestinationError, resolveDestination, type Lookup } from "./destination.ts";

/** Bytes of a receiver's answer that are kept (shown to the webhook's owner). */
export const RESPONSE_BODY_LIMIT = 1024;

/** `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>` */
export function signatureHeader(secret: string, body: string, unixSeconds: number): string {
  const mac = createHmac("sha256", secret).update(`${unixSeconds}.${body}`).digest("hex");
  return `t=${unixSeconds},v1=${mac}`;
}

export interface AttemptOutcome {
  delivered: boolean;
  /** another attempt later may succeed (5xx, 429, 408, timeouts, network errors) */
  retryable: boolean;
  status_code: number | null;
  /** a stable code when no 2xx came: http_status, timeout, network_error, forbidden_destination, … */
  error: string | null;
  /** ≤ 1 KB of the answer */
  response_body: string | null;
  /** the receiver's Retry-After, when it sent one (429, 503) */
  retry_after_ms: number | null;
  duration_ms: number;
}

export interface SendOptions {
  timeoutMs: number;
  allowPrivate: boolean;
  signal?: AbortSignal;
  lookup?: Lookup;
  userAgent?: string;
}

/** The first `limit` bytes as text, never more bytes than that once encoded (and no NULs: Postgres text). */
export function clipBody(buf: Buffer, limit = RESPONSE_BODY_LIMIT): string {
  let s = buf.subarray(0, limit).toString("utf8").replace(/\u0000/g, "");
  while (Buffer.byteLength(s) > limit) s = s.slice(0, -1);
  return s;
}

export function parseRetryAfter(v: string | string[] | undefined, now = Date.now()): number | null {
  const s = Array.isArray(v) ? v[0] : v;
  if (!s) return null;
  if (/^\d+$/.test(s.trim())) return Number(s.trim()) * 1000;
  const at = Date.parse(s);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

export async function sendWebhook(rawUrl: string, body: string, headers: Record<string, string>, opts: SendOptions): Promise<AttemptOutcome> {
  const began = performance.now();
  const done = (o: Omit<AttemptOutcome, "duration_ms">): AttemptOutcome => ({ ...o, duration_ms: Math.round((performance.now() - began) * 10) / 10 });
  const fail = (error: string, retryable: boolean, status_code: number | null = null, response_body: string | null = null, retry_after_ms: number | null = null) =>
    done({ delivered: false, retryable, status_code, error, response_body, retry_after_ms });

  let url: URL;
  let target: { address: string; family: 4 | 6 };
  try {
    url = checkWebhookUrl(rawUrl, opts.allowPrivate);
    target = await resolveDestination(url, { allowPrivate: opts.allowPrivate, ...(opts.lookup ? { lookup: opts.lookup } : {}) });
  } catch (err) {
    if (err instanceof DestinationError) return fail(err.code, err.code === "unresolvable");
    return fail("network_error", true);
  }
  // connect to the address that was checked, whatever the host name resolves to by now
  const pinned: LookupFunction = (_host, options, cb) => {
    if ((options as { all?: boolean }).all) (cb as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address: target.address, family: target.family }]);
    else cb(null, target.address, target.family);
  };
  const client = url.protocol === "https:" ? https : http;
  return new Promise<AttemptOutcome>((resolve) => {
    let settled = false;
    const finish = (o: AttemptOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      resolve(o);
    };
    const req = client.request(url, {
      method: "POST",
      lookup: pinned,
      agent: false,
      headers: {
        "content-type": "application/json",
        "content-length": String(Buffer.byteLength(body)),
        "user-agent": opts.userAgent ?? "trackscribe-webhooks/1",
        ...headers,
      },
    });
    const timer = setTimeout(() => {
      finish(fail("timeout", true));
      req.destroy();
    }, opts.timeoutMs);
    const onAbort = (): void => {
      finish(fail("aborted", true));
      req.destroy();
    };
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    req.on("error", () => finish(fail("network_error", true)));
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const end = (): void => {
        const status = res.statusCode ?? 0;
        const text = clipBody(Buffer.concat(chunks));
        const kept = text.length ? text : null;
        if (status >= 200 && status < 300) return finish(done({ delivered: true, retryable: false, status_code: status, error: null, response_body: kept, retry_after_ms: null }));
        const retryable = status >= 500 || status === 429 || status === 408;
        const code = status >= 300 && status < 400 ? "redirect_not_followed" : "http_status";
        finish(fail(code, retryable, status, kept, retryable ? parseRetryAfter(res.headers["retry-after"]) : null));
      };
      res.on("data", (c: Buffer) => {
        if (size >= RESPONSE_BODY_LIMIT) return;
        chunks.push(c);
        size += c.length;
        if (size >= RESPONSE_BODY_LIMIT) {
          // enough: the rest of the answer is not read
          end();
          res.destroy();
        }
      });
      res.on("end", end);
      res.on("error", end);
      res.on("close", end);
    });
    req.end(body);
  });
}
