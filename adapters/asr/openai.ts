/**
 * OpenAI-compatible speech backend: `POST {ASR_URL}/v1/audio/transcriptions` with
 * `response_format=verbose_json` and `timestamp_granularities[]=word`. Only the planned
 * spans are sent (one request per segment, ≤ 25 s each, ASR_HTTP_CONCURRENCY of them in
 * flight per process); times come back relative to the segment and are mapped to
 * file-local seconds. The participants' names go along as the `prompt`, so the model
 * spells them right.
 *
 * Self-hosted servers answer verbose_json in three shapes, all accepted:
 *   - `words` with times (OpenAI, Speaches/faster-whisper-server): used as they are;
 *   - `segments[].words` with token times (whisper.cpp's server: pieces such as " hel",
 *     "lo"): joined into words at the leading spaces, each word from its first piece's
 *     start to its last piece's end;
 *   - `segments` with text and times but no words (vLLM, some Speaches versions): each
 *     segment's time is spread over its words by character length, and each such word is
 *     marked `timing: "interpolated"` (the bleed rule and the shadow comparison give those
 *     a wider time tolerance: pipeline/contracts/domain.ts).
 * 429, 5xx, timeouts and network errors are retried with back-off (the server's
 * Retry-After when it sends one), ASR_HTTP_MAX_ATTEMPTS in all.
 */
import { z } from "zod/v4";
import type { AsrCapabilities, AsrEngine, AsrWord } from "../../pipeline/ports.ts";
import { openPcmReader, writeWav } from "../../pipeline/audio/wav.ts";
import { AsrError } from "./pocketsphinx.ts";
import { planSegments } from "../../pipeline/asr/spans.ts";

const TimedPiece = z.object({ word: z.string(), start: z.number(), end: z.number(), probability: z.number().optional() });
const VerboseJson = z.object({
  text: z.string().optional(),
  words: z.array(TimedPiece).optional(),
  segments: z
    .array(
      z.object({
        start: z.number(),
        end: z.number(),
        text: z.string().default(""),
        words: z.array(TimedPiece).optional(),
        avg_logprob: z.number().optional(),
      }),
    )
    .optional(),
});
type VerboseJson = z.infer<typeof VerboseJson>;

/** Special tokens whisper.cpp reports among a segment's pieces: not words. */
const SPECIAL = /^\s*(\[_[A-Z]+_?\d*\]|<\|[^|]*\|>)\s*$/;

/** Words with segment-relative times from any of the three shapes (see above). */
export function wordsFromVerboseJson(v: VerboseJson, segmentSeconds: number): AsrWord[] {
  const out: AsrWord[] = [];
  const push = (text: string, start: number, end: number, extra: Partial<AsrWord> = {}): void => {
    const t = text.trim();
    if (t) out.push({ text: t, start, end: Math.max(start, end), ...extra });
  };
  if (v.words && v.words.length) {
    for (const w of v.words) push(w.word, w.start, w.end, w.probability !== undefined ? { confidence: clamp01(w.probability) } : {});
    return out;
  }
  const segments = v.segments ?? [];
  if (segments.some((s) => s.words && s.words.length)) {
    for (const s of segments) {
      let cur: { text: string; start: number; end: number; p: number[] } | undefined;
      const flush = (): void => {
        if (cur) push(cur.text, cur.start, cur.end, cur.p.length ? { confidence: clamp01(cur.p.reduce((a, b) => a + b, 0) / cur.p.length) } : {});
        cur = undefined;
      };
      for (const piece of s.words ?? []) {
        if (SPECIAL.test(piece.word) || piece.word === "") continue;
        const startsWord = /^\s/.test(piece.word) || !cur;
        if (startsWord) {
          flush();
          cur = { text: piece.word.trim(), start: piece.start, end: piece.end, p: [] };
        } else {
          cur!.text += piece.word;
          cur!.end = Math.max(cur!.end, piece.end);
        }
        if (piece.probability !== undefined) cur!.p.push(piece.probability);
      }
      flush();
    }
    return out;
  }
  // segments (or only the text) without word times: spread each segment's time over its words
  const spans = segments.length ? segments : v.text ? [{ start: 0, end: segmentSeconds, text: v.text }] : [];
  for (const s of spans) for (const w of interpolateWords(s.text, s.start, s.end)) out.push(w);
  return out;
}

/**
 * A segment's words with times spread over [start, end] in proportion to their length in
 * characters (a long word takes longer to say), each marked interpolated.
 */
export function interpolateWords(text: string, start: number, end: number): AsrWord[] {
  const tokens = text.split(/\s+/).filter(Boolean);
  if (!tokens.length) return [];
  const span = Math.max(0, end - start);
  const total = tokens.reduce((n, t) => n + Math.max(1, t.length), 0);
  let at = start;
  return tokens.map((t) => {
    const d = (span * Math.max(1, t.length)) / total;
    const w: AsrWord = { text: t, start: round3(at), end: round3(at + d), timing: "interpolated" };
    at += d;
    return w;
  });
}

const clamp01 = (x: number): number => Math.max(0, Math.min(1, x));

export interface OpenAiAsrOptions {
  url: string;
  apiKey?: string;
  model: string;
  timeoutMs?: number;
  /** segments in flight at once, across every transcription of this engine (ASR_HTTP_CONCURRENCY) */
  concurrency?: number;
  /** attempts per segment: 429, 5xx, timeouts and network errors are retried (ASR_HTTP_MAX_ATTEMPTS) */
  maxAttempts?: number;
  /** first retry's delay (doubling, ±20 % jitter), unless the server sends Retry-After */
  retryBaseMs?: number;
  /** longest wait between two attempts, Retry-After included */
  retryMaxMs?: number;
  /** how a wait between attempts is spent (tests watch the waits instead of the clock) */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/**
 * Nothing to load ahead; its calls are mostly network waits, so one child holds every
 * track's call at once (instead of a Node process per track).
 */
export const OPENAI_ASR_CAPABILITIES: AsrCapabilities = { preload: false, sharedChild: true };

/** A counting semaphore: at most `n` holders at once, the rest wait in arrival order. */
function semaphore(n: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let free = Math.max(1, n);
  const waiting: (() => void)[] = [];
  return async (fn) => {
    if (free > 0) free--;
    else await new Promise<void>((r) => waiting.push(r));
    try {
      return await fn();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else free++;
    }
  };
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal!.reason as Error);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });

function retryAfterMs(v: string | null): number | undefined {
  if (!v) return undefined;
  if (/^\d+(\.\d+)?$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** The prompt: the participants' names, so the model spells them as the meeting does. */
export const promptFor = (names: readonly string[] | undefined): string | undefined => {
  const unique = [...new Set((names ?? []).map((n) => n.trim()).filter(Boolean))];
  return unique.length ? `Participants: ${unique.join(", ")}.`.slice(0, 800) : undefined;
};

export function createOpenAiAsrEngine(opts: OpenAiAsrOptions): AsrEngine {
  const endpoint = `${opts.url.replace(/\/+$/, "").replace(/\/v1$/, "")}/v1/audio/transcriptions`;
  const limit = semaphore(opts.concurrency ?? 4);
  const maxAttempts = Math.max(1, opts.maxAttempts ?? 4);
  const retryBaseMs = opts.retryBaseMs ?? 500;
  const retryMaxMs = opts.retryMaxMs ?? 60_000;

  /** One segment: POSTed until it succeeds, fails for good, or the attempts are used up. */
  async function requestSegment(audio: Buffer, language: string, prompt: string | undefined, signal: AbortSignal | undefined): Promise<VerboseJson> {
    for (let attempt = 1; ; attempt++) {
      const form = new FormData();
      form.append("file", new Blob([audio], { type: "audio/wav" }), "segment.wav");
      form.append("model", opts.model);
      form.append("language", language.split("-")[0]!);
      form.append("response_format", "verbose_json");
      form.append("timestamp_granularities[]", "word");
      form.append("timestamp_granularities[]", "segment");
      if (prompt) form.append("prompt", prompt);
      const timeout = AbortSignal.timeout(opts.timeoutMs ?? 120000);
      let failure: AsrError;
      let wait: number | undefined;
      try {
        const res = await fetch(endpoint, {
          method: "POST",
          body: form,
          headers: opts.apiKey ? { authorization: `Bearer ${opts.apiKey}` } : {},
          signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        });
        const body = await res.text();
        if (res.ok) {
          let parsed: VerboseJson | undefined;
          let problem = "";
          try {
            parsed = VerboseJson.parse(JSON.parse(body));
          } catch (err) {
            problem = (err as Error).message.slice(0, 300);
          }
          // a malformed answer is not retried here (the task's own retry may try again)
          if (parsed) return parsed;
          throw Object.assign(new AsrError(`speech backend answer is not verbose_json with words or segments: ${problem}`), { final: true });
        }
        const retryable = res.status >= 500 || res.status === 429 || res.status === 408;
        failure = new AsrError(`speech backend answered ${res.status}: ${body.slice(0, 300)}`, retryable);
        if (!retryable) throw failure;
        wait = retryAfterMs(res.headers.get("retry-after"));
      } catch (err) {
        if (err instanceof AsrError && (!err.retryable || (err as { final?: boolean }).final)) throw err;
        if (err instanceof AsrError) failure = err;
        else if (signal?.aborted) throw err;
        else failure = new AsrError(`speech backend ${endpoint} unreachable: ${(err as Error).message}`, true);
      }
      if (attempt >= maxAttempts) throw failure;
      const backoff = retryBaseMs * 2 ** (attempt - 1) * (0.8 + 0.4 * Math.random());
      await (opts.sleep ?? sleep)(Math.min(retryMaxMs, Math.max(backoff, wait ?? 0)), signal);
    }
  }

  return {
    name: `openai:${opts.model}`,
    capabilities: OPENAI_ASR_CAPABILITIES,
    async transcribe(wavPath, { language, spans, signal, onProgress, participants }) {
      // the WAV is read by position: only the segments in flight are in memory, whatever the track's length
      const reader = await openPcmReader(wavPath);
      try {
        const rate = reader.sampleRate;
        const segments = await planSegments(reader, spans);
        const prompt = promptFor(participants);
        let done = 0;
        onProgress?.(0);
        const perSegment = await Promise.all(
          segments.map((seg) =>
            limit(async () => {
              const samples = await reader.read(Math.round(seg.start * rate), Math.round(seg.end * rate));
              const audio = writeWav({ sampleRate: rate, samples });
              const parsed = await requestSegment(audio, language, prompt, signal);
              onProgress?.(++done / segments.length);
              return wordsFromVerboseJson(parsed, seg.end - seg.start).map((w) => ({ ...w, start: round3(seg.start + w.start), end: round3(seg.start + Math.max(w.start, w.end)) }));
            }),
          ),
        );
        onProgress?.(1);
        return perSegment.flat();
      } finally {
        await reader.close();
      }
    },
  };
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;
