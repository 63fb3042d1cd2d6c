/**
 * The OpenAI-compatible ASR engine against a tiny real HTTP server (node:http) that answers
 * in the OpenAI `verbose_json` format: checks the request shape (path, multipart fields,
 * auth header, the uploaded WAV is exactly the planned segment) and the parsing (word times
 * mapped back to file-local seconds, errors typed and classified). Each answer shape (words,
 * segments only, token times) is also served after a 500, and after a 429 and a 500.
 */
import assert from "node:assert/strict";
import { writeFile, mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { AsrError, createAsrEngine, createOpenAiAsrEngine } from "../../adapters/asr/index.ts";
import { readWav, writeWav } from "../../pipeline/audio/wav.ts";
import { loadConfig } from "../../pipeline/config.ts";

interface Seen {
  at: number;
  method: string;
  url: string;
  auth: string | undefined;
  fields: Record<string, string[]>;
  wavSeconds: number;
  wavRate: number;
}

let dir: string;
let wavPath: string;
let server: http.Server;
let base: string;
const seen: Seen[] = [];
/** what the next requests answer; default: two words relative to the uploaded segment */
let inFlight = 0;
let maxInFlight = 0;
let arrivals = 0;
let delayMs = 0;
const seenAt = new WeakMap<http.IncomingMessage, number>();
let answer: (n: number) => { status: number; body: string; headers?: Record<string, string> } = () => ({
  status: 200,
  body: JSON.stringify({
    task: "transcribe",
    language: "english",
    duration: 1,
    text: "hello there",
    words: [
      { word: " hello", start: 0.1, end: 0.4 },
      { word: "there", start: 0.5, end: 0.9 },
    ],
  }),
});

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "ts-asr-http-"));
  // 10 s of a quiet tone: the content is irrelevant, the server only measures it
  const samples = new Int16Array(16000 * 10);
  for (let i = 0; i < samples.length; i++) samples[i] = Math.round(2000 * Math.sin((2 * Math.PI * 220 * i) / 16000));
  wavPath = path.join(dir, "track.wav");
  await writeFile(wavPath, writeWav({ sampleRate: 16000, samples }));

  server = http.createServer((req, res) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    res.on("close", () => inFlight--);
    seenAt.set(req, ++arrivals);
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      const body = Buffer.concat(chunks);
      // parse the multipart body with the platform's own parser
      const form = await new Request("http://local" + req.url, {
        method: req.method,
        headers: { "content-type": req.headers["content-type"] ?? "" },
        body,
      }).formData();
      const fields: Record<string, string[]> = {};
      let wavSeconds = -1;
      let wavRate = -1;
      for (const [k, v] of form.entries()) {
        if (typeof v === "string") (fields[k] ??= []).push(v);
        else {
          const pcm = readWav(Buffer.from(await v.arrayBuffer()));
          wavSeconds = pcm.samples.length / pcm.sampleRate;
          wavRate = pcm.sampleRate;
          (fields[k] ??= []).push(`<file ${v.name}>`);
        }
      }
      seen.push({ at: seenAt.get(req) ?? 0, method: req.method ?? "", url: req.url ?? "", auth: req.headers.authorization, fields, wavSeconds, wavRate });
      const a = answer(seen.length);
      // a little latency, so requests sent together are in flight together
      await new Promise((r) => setTimeout(r, delayMs));
      res.writeHead(a.status, { "content-type": "application/json", ...(a.headers ?? {}) });
      res.end(a.body);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  await rm(dir, { recursive: true, force: true });
});

test("request shape: one multipart POST per planned span, the segment's own audio, verbose_json with word timestamps", async () => {
  seen.length = 0;
  const engine = createOpenAiAsrEngine({ url: `${base}/v1/`, apiKey: "sk-test", model: "whisper-1" });
  const words = await engine.transcribe(wavPath, { language: "en-US", spans: [{ start: 2, end: 3 }, { start: 6, end: 6.5 }] });

  assert.equal(seen.length, 2);
  for (const s of seen) {
    assert.equal(s.method, "POST");
    assert.equal(s.url, "/v1/audio/transcriptions");
    assert.equal(s.auth, "Bearer sk-test");
    assert.deepEqual(s.fields.model, ["whisper-1"]);
    assert.deepEqual(s.fields.response_format, ["verbose_json"]);
    assert.deepEqual(s.fields["timestamp_granularities[]"], ["word", "segment"]);
    assert.equal(s.fields.prompt, undefined, "no participants, no prompt");
    assert.deepEqual(s.fields.language, ["en"]);
    assert.deepEqual(s.fields.file, ["<file segment.wav>"]);
    assert.equal(s.wavRate, 16000);
  }
  // the uploaded audio is the span, not the whole 10 s track
  assert.ok(Math.abs(seen[0]!.wavSeconds - 1) < 0.01, `first upload ${seen[0]!.wavSeconds} s`);
  assert.ok(Math.abs(seen[1]!.wavSeconds - 0.5) < 0.01, `second upload ${seen[1]!.wavSeconds} s`);

  // words come back trimmed, in file-local seconds (segment start + word time)
  assert.deepEqual(
    words.map((w) => [w.text, w.start, w.end]),
    [
      ["hello", 2.1, 2.4],
      ["there", 2.5, 2.9],
      ["hello", 6.1, 6.4],
      ["there", 6.5, 6.9],
    ],
  );
});

test("no spans: the whole file is sent (long files in ≤ 25 s pieces); no API key → no auth header", async () => {
  seen.length = 0;
  const engine = createOpenAiAsrEngine({ url: base, model: "m" });
  await engine.transcribe(wavPath, { language: "en" });
  assert.equal(seen.length, 1);
  assert.equal(seen[0]!.auth, undefined);
  assert.ok(Math.abs(seen[0]!.wavSeconds - 10) < 0.01);
});

test("createAsrEngine picks the HTTP engine from the config", async () => {
  seen.length = 0;
  const engine = createAsrEngine(loadConfig({ ASR_ENGINE: "openai", ASR_URL: base, ASR_MODEL: "big-model" }));
  assert.match(engine.name, /openai/);
  const words = await engine.transcribe(wavPath, { language: "en", spans: [{ start: 0, end: 1 }] });
  assert.equal(words.length, 2);
  assert.deepEqual(seen[0]!.fields.model, ["big-model"]);
});

test("server errors are typed AsrErrors: 5xx retryable, 4xx not, malformed answers named", async () => {
  const engine = createOpenAiAsrEngine({ url: base, model: "m", maxAttempts: 2, retryBaseMs: 1 });
  const opts = { language: "en", spans: [{ start: 0, end: 1 }] };
  try {
    answer = () => ({ status: 503, body: JSON.stringify({ error: { message: "overloaded" } }) });
    await assert.rejects(engine.transcribe(wavPath, opts), (e: unknown) => e instanceof AsrError && e.retryable && /503/.test(e.message));
    answer = () => ({ status: 400, body: JSON.stringify({ error: { message: "bad file" } }) });
    await assert.rejects(engine.transcribe(wavPath, opts), (e: unknown) => e instanceof AsrError && !e.retryable && /400/.test(e.message));
    answer = () => ({ status: 200, body: JSON.stringify({ words: [{ word: "x", start: "soon" }] }) });
    await assert.rejects(engine.transcribe(wavPath, opts), (e: unknown) => e instanceof AsrError && /verbose_json/.test(e.message));
    answer = () => ({ status: 200, body: "<html>proxy error</html>" });
    await assert.rejects(engine.transcribe(wavPath, opts), AsrError);
  } finally {
    answer = () => ({ status: 200, body: JSON.stringify({ text: "", words: [] }) });
  }
  // an answer without words is an empty transcript, not an error
  assert.deepEqual(await engine.transcribe(wavPath, opts), []);
});

test("an unreachable backend is a clear AsrError naming the endpoint", async () => {
  const closed = http.createServer();
  await new Promise<void>((r) => closed.listen(0, "127.0.0.1", () => r()));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  const engine = createOpenAiAsrEngine({ url: `http://127.0.0.1:${port}`, model: "m" });
  await assert.rejects(
    engine.transcribe(wavPath, { language: "en", spans: [{ start: 0, end: 1 }] }),
    (e: unknown) => e instanceof AsrError && e.message.includes(`127.0.0.1:${port}/v1/audio/transcriptions`),
  );
});

const words = (ws: { text: string; start: number; end: number; timing?: string }[]) => ws.map((w) => [w.text, w.start, w.end, w.timing ?? "measured"]);
const reset = () => {
  answer = () => ({ status: 200, body: JSON.stringify({ text: "hello there", words: [{ word: " hello", start: 0.1, end: 0.4 }, { word: "there", start: 0.5, end: 0.9 }] }) });
};

test("segments only (vLLM, some Speaches): word times spread over each segment by character length, marked interpolated", async () => {
  answer = () => ({
    status: 200,
    body: JSON.stringify({ text: "ab abcd. ok", segments: [{ id: 0, start: 0, end: 1.2, text: " ab abcd." }, { id: 1, start: 2, end: 2.5, text: " ok" }] }),
  });
  try {
    const engine = createOpenAiAsrEngine({ url: base, model: "m" });
    const got = await engine.transcribe(wavPath, { language: "en", spans: [{ start: 3, end: 6 }] });
    // "ab" (2 chars) and "abcd." (5 chars) share 1.2 s as 2:5; "ok" takes its whole segment
    assert.deepEqual(words(got), [
      ["ab", 3, 3.343, "interpolated"],
      ["abcd.", 3.343, 4.2, "interpolated"],
      ["ok", 5, 5.5, "interpolated"],
    ]);
  } finally {
    reset();
  }
});

test("token times (whisper.cpp's server): pieces joined into words at leading spaces, special tokens dropped", async () => {
  answer = () => ({
    status: 200,
    body: JSON.stringify({
      text: " hello there",
      segments: [
        {
          start: 0,
          end: 1,
          text: " hello there",
          words: [
            { word: "[_BEG_]", start: 0, end: 0 },
            { word: " hel", start: 0.1, end: 0.2, probability: 0.8 },
            { word: "lo", start: 0.2, end: 0.4, probability: 0.6 },
            { word: " there", start: 0.5, end: 0.9, probability: 0.9 },
            { word: "[_TT_50]", start: 1, end: 1 },
          ],
        },
      ],
    }),
  });
  try {
    const got = await createOpenAiAsrEngine({ url: base, model: "m" }).transcribe(wavPath, { language: "en", spans: [{ start: 1, end: 2 }] });
    assert.deepEqual(words(got), [
      ["hello", 1.1, 1.4, "measured"],
      ["there", 1.5, 1.9, "measured"],
    ]);
    assert.equal(got[0]!.confidence, 0.7);
  } finally {
    reset();
  }
});

test("429 with Retry-After, then success: the segment is retried after the wait; the participants' names are the prompt", async () => {
  seen.length = 0;
  answer = (n) => (n === 1 ? { status: 429, body: JSON.stringify({ error: "busy" }), headers: { "retry-after": "1" } } : { status: 200, body: JSON.stringify({ words: [{ word: "Zoë", start: 0, end: 0.3 }] }) });
  try {
    const waits: number[] = [];
    const engine = createOpenAiAsrEngine({ url: base, model: "m", retryBaseMs: 1, sleep: async (ms) => void waits.push(ms) });
    const got = await engine.transcribe(wavPath, { language: "en", spans: [{ start: 0, end: 1 }], participants: ["Zoë Ångström", "Bob", "Zoë Ångström"] });
    assert.deepEqual(got.map((w) => w.text), ["Zoë"]);
    assert.equal(seen.length, 2, "one retry");
    assert.deepEqual(waits, [1000], "Retry-After: 1 wins over the 1 ms back-off");
    for (const s of seen) assert.deepEqual(s.fields.prompt, ["Participants: Zoë Ångström, Bob."]);
  } finally {
    reset();
  }
  // a 5xx that persists: every attempt used, then a retryable AsrError
  seen.length = 0;
  answer = () => ({ status: 502, body: "bad gateway" });
  try {
    await assert.rejects(createOpenAiAsrEngine({ url: base, model: "m", maxAttempts: 3, retryBaseMs: 1 }).transcribe(wavPath, { language: "en", spans: [{ start: 0, end: 1 }] }), (e: unknown) => e instanceof AsrError && e.retryable);
    assert.equal(seen.length, 3);
  } finally {
    reset();
  }
});

test("ASR_HTTP_CONCURRENCY segments in flight at most, across concurrent transcriptions; words stay in order", async () => {
  seen.length = 0;
  maxInFlight = 0;
  delayMs = 50;
  try {
    const engine = createOpenAiAsrEngine({ url: base, model: "m", concurrency: 3 });
    const spans = [0, 1, 2, 3, 4, 5].map((s) => ({ start: s + 0.2, end: s + 0.8 }));
    const [a, b] = await Promise.all([engine.transcribe(wavPath, { language: "en", spans }), engine.transcribe(wavPath, { language: "en", spans })]);
    assert.equal(seen.length, 12);
    assert.equal(maxInFlight, 3, "three in flight, never more");
    for (const got of [a, b]) {
      const starts = got.map((w) => w.start);
      assert.deepEqual(starts, [...starts].sort((x, y) => x - y), "words in time order");
      assert.equal(got.length, 12);
    }
    maxInFlight = 0;
    await createOpenAiAsrEngine({ url: base, model: "m", concurrency: 1 }).transcribe(wavPath, { language: "en", spans });
    assert.equal(maxInFlight, 1);
  } finally {
    delayMs = 0;
  }
});

/** The three answer shapes the engine accepts, each with the words it must yield for a span starting at 1 s. */
const shapes = {
  words: {
    body: { text: "hello there", words: [{ word: " hello", start: 0.1, end: 0.4 }, { word: "there", start: 0.5, end: 0.9 }] },
    expect: [
      ["hello", 1.1, 1.4, "measured"],
      ["there", 1.5, 1.9, "measured"],
    ],
  },
  "segments only": {
    body: { text: "ab abcd.", segments: [{ id: 0, start: 0, end: 1.4, text: " ab abcd." }] },
    expect: [
      ["ab", 1, 1.4, "interpolated"],
      ["abcd.", 1.4, 2.4, "interpolated"],
    ],
  },
  "token times": {
    body: {
      text: " hello there",
      segments: [{ start: 0, end: 1, text: " hello there", words: [{ word: " hel", start: 0.1, end: 0.2 }, { word: "lo", start: 0.2, end: 0.4 }, { word: " there", start: 0.5, end: 0.9 }, { word: "[_TT_50]", start: 1, end: 1 }] }],
    },
    expect: [
      ["hello", 1.1, 1.4, "measured"],
      ["there", 1.5, 1.9, "measured"],
    ],
  },
} as const;

for (const [shape, { body, expect }] of Object.entries(shapes)) {
  for (const [what, failures] of [
    ["500, then success", [{ status: 500, body: "internal error" }]],
    ["429 (Retry-After: 2), 500, then success", [{ status: 429, body: JSON.stringify({ error: "busy" }), headers: { "retry-after": "2" } }, { status: 500, body: "internal error" }]],
  ] as const) {
    test(`${shape}: ${what}: the segment is retried and its words are the success's`, async () => {
      seen.length = 0;
      answer = (n) => (failures[n - 1] as { status: number; body: string; headers?: Record<string, string> } | undefined) ?? { status: 200, body: JSON.stringify(body) };
      try {
        const waits: number[] = [];
        const engine = createOpenAiAsrEngine({ url: base, model: "m", maxAttempts: 3, retryBaseMs: 1, sleep: async (ms) => void waits.push(ms) });
        const got = await engine.transcribe(wavPath, { language: "en", spans: [{ start: 1, end: 3 }] });
        assert.deepEqual(words(got), expect);
        assert.equal(seen.length, failures.length + 1, "one request per answer");
        assert.ok(seen.every((s) => s.wavSeconds > 1.99 && s.wavSeconds < 2.01), "every attempt sends the same segment");
        assert.equal(waits.length, failures.length);
        if (failures.length === 2) assert.equal(waits[0], 2000, "Retry-After honoured");
        assert.ok(waits.at(-1)! < 100, "a 5xx without Retry-After waits the (short) back-off");
      } finally {
        reset();
      }
    });
  }
}
