import { describe, expect, it } from "vitest";
import { createSseParser, type SseMessage } from "./sse";

describe("createSseParser", () => {
  it("parses events split anywhere across chunks, skips comments, reports retry", () => {
    const got: SseMessage[] = [];
    const retries: number[] = [];
    const feed = createSseParser((m) => got.push(m), (ms) => retries.push(ms));
    const text = 'retry: 2000\n\n: ping\n\nevent: status\ndata: {"status":"processing"}\n\nid: 41\nevent: progress\ndata: {"step":"plan_tracks"}\n\nevent: end\r\ndata: {"status":"completed"}\r\n\r\n';
    for (let i = 0; i < text.length; i += 7) feed(text.slice(i, i + 7));
    expect(retries).toEqual([2000]);
    expect(got).toEqual([
      { event: "status", data: '{"status":"processing"}' },
      { event: "progress", id: "41", data: '{"step":"plan_tracks"}' },
      { event: "end", data: '{"status":"completed"}' },
    ]);
  });
});

describe("followEvents", () => {
  const stream = (text: string): Response =>
    new Response(text, { status: 200, headers: { "content-type": "text/event-stream" } });

  it("sends the key as a header, reconnects after a drop with Last-Event-ID, and stops at end", async () => {
    const { followEvents } = await import("./sse");
    const calls: Headers[] = [];
    const answers = [
      stream('retry: 1\n\nid: 7\nevent: progress\ndata: {"step":"a"}\n\n'),
      stream('id: 8\nevent: progress\ndata: {"step":"b"}\n\nevent: end\ndata: {"status":"completed"}\n\n'),
    ];
    const realFetch = globalThis.fetch;
    globalThis.fetch = (async (_url: RequestInfo | URL, init?: RequestInit) => {
      calls.push(new Headers(init?.headers));
      return answers.shift()!;
    }) as typeof fetch;
    try {
      const seen: string[] = [];
      const ended = await followEvents({ key: "tsk_k", url: "/v1/recordings/r/events", signal: new AbortController().signal, lastEventId: "5", onMessage: (m) => seen.push(`${m.event}:${m.id ?? ""}`) });
      expect(ended).toBe(true);
      expect(seen).toEqual(["progress:7", "progress:8", "end:"]);
      expect(calls.map((h) => [h.get("authorization"), h.get("last-event-id")])).toEqual([
        ["Bearer tsk_k", "5"],
        ["Bearer tsk_k", "7"],
      ]);
    } finally {
      globalThis.fetch = realFetch;
    }
  });

  it("a refusal other than 503 is final", async () => {
    const { followEvents } = await import("./sse");
    const realFetch = globalThis.fetch;
    globalThis.fetch = (async () => new Response(JSON.stringify({ error: "not_found", message: "no such recording" }), { status: 404 })) as typeof fetch;
    try {
      const errors: [string, boolean][] = [];
      const ended = await followEvents({ key: "k", url: "/x", signal: new AbortController().signal, onMessage: () => undefined, onError: (e, retry) => errors.push([e.message, retry]) });
      expect(ended).toBe(false);
      expect(errors).toEqual([["no such recording", false]]);
    } finally {
      globalThis.fetch = realFetch;
    }
  });
});
