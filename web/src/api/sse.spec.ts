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
