/**
 * Server-Sent Events read over fetch: `EventSource` cannot send the Authorization header,
 * so the page reads GET /v1/recordings/:id/events as a streaming body, parses the SSE
 * text itself, and on a dropped connection reconnects with `Last-Event-ID` after the
 * server's `retry:` delay. It stops at the `end` event, on abort, or on a 4xx answer.
 */
import { apiError } from "./client";

export interface SseMessage {
  event: string;
  id?: string;
  data: string;
}

/** An incremental SSE parser: feed it text as it arrives, it calls back per complete event. */
export function createSseParser(onMessage: (m: SseMessage) => void, onRetry?: (ms: number) => void): (chunk: string) => void {
  let buffer = "";
  let event = "";
  let id: string | undefined;
  let data: string[] = [];
  const line = (l: string): void => {
    if (l === "") {
      if (data.length) onMessage({ event: event || "message", ...(id !== undefined ? { id } : {}), data: data.join("\n") });
      event = "";
      id = undefined;
      data = [];
      return;
    }
    if (l.startsWith(":")) return;
    const colon = l.indexOf(":");
    const field = colon < 0 ? l : l.slice(0, colon);
    let value = colon < 0 ? "" : l.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
    else if (field === "id") id = value;
    else if (field === "retry" && /^\d+$/.test(value)) onRetry?.(Number(value));
  };
  return (chunk) => {
    buffer += chunk;
    let i;
    while ((i = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const sep = buffer[i] === "\r" && buffer[i + 1] === "\n" ? 2 : 1;
      line(buffer.slice(0, i));
      buffer = buffer.slice(i + sep);
    }
  };
}

export interface FollowOptions {
  key: string;
  url: string;
  signal: AbortSignal;
  /** resume after this event (events already seen are not replayed) */
  lastEventId?: string;
  onMessage(m: SseMessage): void;
  /** a failure the stream will not recover from (a 4xx), or a reconnect notice */
  onError?(err: Error, willRetry: boolean): void;
}

/** Follow the stream until its `end` event (resolves true) or abort (resolves false). */
export async function followEvents(opts: FollowOptions): Promise<boolean> {
  let lastId: string | undefined = opts.lastEventId;
  let retryMs = 2000;
  let ended = false;
  const wait = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      opts.signal.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
    });
  while (!opts.signal.aborted && !ended) {
    try {
      const headers: Record<string, string> = { authorization: `Bearer ${opts.key}`, accept: "text/event-stream" };
      if (lastId) headers["last-event-id"] = lastId;
      const res = await fetch(opts.url, { headers, signal: opts.signal, cache: "no-store" });
      if (!res.ok || !res.body) {
        const err = apiError(res.status, await res.json().catch(() => undefined));
        // 503 (too many streams) is worth another try; any other refusal is final
        if (res.status !== 503) {
          opts.onError?.(err, false);
          return false;
        }
        throw err;
      }
      const parse = createSseParser(
        (m) => {
          if (m.id) lastId = m.id;
          if (m.event === "end") ended = true;
          opts.onMessage(m);
        },
        (ms) => (retryMs = ms),
      );
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parse(value);
      }
    } catch (err) {
      if (opts.signal.aborted) return false;
      opts.onError?.(err as Error, true);
    }
    if (!ended && !opts.signal.aborted) await wait(retryMs);
  }
  return ended;
}
