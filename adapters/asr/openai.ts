/**
 * OpenAI-compatible speech backend for production: `POST {ASR_URL}/v1/audio/transcriptions`
 * with `response_format=verbose_json` and `timestamp_granularities[]=word`. Only the
 * planned spans are sent (one request per segment, ≤ 25 s each, well under upload limits);
 * word times come back relative to the segment and are mapped to file-local seconds.
 */
import { readFile } from "node:fs/promises";
import { z } from "zod/v4";
import type { AsrCapabilities, AsrEngine, AsrWord } from "../../pipeline/ports.ts";
import { readWav, writeWav } from "../../pipeline/audio/wav.ts";
import { AsrError } from "./pocketsphinx.ts";
import { segmentsToDecode } from "../../pipeline/asr/spans.ts";

const VerboseJson = z.object({
  text: z.string().optional(),
  words: z
    .array(z.object({ word: z.string(), start: z.number(), end: z.number(), probability: z.number().optional() }))
    .default([]),
});

export interface OpenAiAsrOptions {
  url: string;
  apiKey?: string;
  model: string;
  timeoutMs?: number;
}

/**
 * Nothing to load ahead; its calls are mostly network waits, so one child holds every
 * track's call at once (instead of a Node process per track).
 */
export const OPENAI_ASR_CAPABILITIES: AsrCapabilities = { preload: false, sharedChild: true };

export function createOpenAiAsrEngine(opts: OpenAiAsrOptions): AsrEngine {
  const endpoint = `${opts.url.replace(/\/+$/, "").replace(/\/v1$/, "")}/v1/audio/transcriptions`;
  return {
    name: `openai:${opts.model}`,
    capabilities: OPENAI_ASR_CAPABILITIES,
    async transcribe(wavPath, { language, spans, signal, onProgress }) {
      const pcm = readWav(await readFile(wavPath));
      const words: AsrWord[] = [];
      const segments = segmentsToDecode(pcm, spans);
      for (const [n, seg] of segments.entries()) {
        onProgress?.(n / segments.length);
        // copy just this segment's samples (a view's .buffer would be the whole track)
        const samples = pcm.samples.slice(Math.round(seg.start * pcm.sampleRate), Math.round(seg.end * pcm.sampleRate));
        const audio = writeWav({ sampleRate: pcm.sampleRate, samples });
        const form = new FormData();
        form.append("file", new Blob([audio], { type: "audio/wav" }), "segment.wav");
        form.append("model", opts.model);
        form.append("language", language.split("-")[0]!);
        form.append("response_format", "verbose_json");
        form.append("timestamp_granularities[]", "word");
        const timeout = AbortSignal.timeout(opts.timeoutMs ?? 120000);
        let res: Response;
        try {
          res = await fetch(endpoint, {
            method: "POST",
            body: form,
            headers: opts.apiKey ? { authorization: `Bearer ${opts.apiKey}` } : {},
            signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
          });
        } catch (err) {
          throw new AsrError(`speech backend ${endpoint} unreachable: ${(err as Error).message}`);
        }
        const body = await res.text();
        if (!res.ok) throw new AsrError(`speech backend answered ${res.status}: ${body.slice(0, 300)}`, res.status >= 500 || res.status === 429);
        let parsed;
        try {
          parsed = VerboseJson.parse(JSON.parse(body));
        } catch (err) {
          throw new AsrError(`speech backend answer is not verbose_json with words: ${(err as Error).message.slice(0, 300)}`);
        }
        for (const w of parsed.words) {
          const text = w.word.trim();
          if (!text) continue;
          const word: AsrWord = { text, start: round3(seg.start + w.start), end: round3(seg.start + Math.max(w.start, w.end)) };
          if (w.probability !== undefined) word.confidence = Math.max(0, Math.min(1, w.probability));
          words.push(word);
        }
      }
      onProgress?.(1);
      return words;
    },
  };
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;
