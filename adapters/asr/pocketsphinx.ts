/**
 * Offline ASR with Debian's pocketsphinx (`pocketsphinx_batch`). Measured on LibriVox
 * clips, batch decoding with `-remove_silence no` is both more accurate and better timed
 * than `pocketsphinx_continuous`. The planned spans are cut into segments (≤ 25 s, at quiet
 * points) and decoded by a pool of long-lived decoders shared by every track in the process
 * (./decoder-pool.ts: the model loads once per decoder, and all cores stay busy until the last
 * segment, whichever track it belongs to); CTM output gives word start, duration and a
 * posterior confidence, mapped back to file-local seconds.
 *
 * Memory does not grow with the track: the WAV is read by position (the frames a long
 * span's cut points are looked for in, then each segment when a decoder takes it), never
 * whole.
 */
import os from "node:os";
import path from "node:path";
import type { AsrCapabilities, AsrEngine, AsrWord } from "../../pipeline/ports.ts";
import { openPcmReader } from "../../pipeline/audio/wav.ts";
import { DecoderError, DecoderPool } from "./decoder-pool.ts";
import { prunedDictionary } from "./dict-prune.ts";
import { planSegments } from "../../pipeline/asr/spans.ts";

export interface PocketsphinxOptions {
  hmm: string;
  dict: string;
  lm: string;
  binary?: string;
  /** decoders running at once, shared by all tracks (default: available cores) */
  concurrency?: number;
  /** an idle decoder exits after this long (default 15 s; Infinity or ≤ 0: kept loaded while the process lives) */
  idleMs?: number;
  /** where segment audio is staged (default: the OS temp dir) */
  tmpRoot?: string;
  /** give the decoders the dictionary cut to the language model's words (./dict-prune.ts; default true) */
  pruneDict?: boolean;
  /** where the cut dictionary is kept between runs (default: trackscribe-asr-cache in the OS temp dir) */
  cacheDir?: string;
  /** a segment running longer than this × its seconds is declared stuck (the pool's default unless given) */
  stallFactor?: number;
}

export class AsrError extends Error {
  override readonly name = "AsrError";
  constructor(message: string, readonly retryable = true) {
    super(message);
  }
}

const FILLER = /^(<s>|<\/s>|<sil>|\[[A-Z_]+\]|\+\+.*\+\+)$/i;

/** Parse CTM lines `utt channel start duration word [confidence]`. */
export function parseCtm(text: string): Map<string, AsrWord[]> {
  const byUtt = new Map<string, AsrWord[]>();
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5) continue;
    const [utt, , startS, durS, rawWord, confS] = f as [string, string, string, string, string, string | undefined];
    if (FILLER.test(rawWord)) continue;
    const text = rawWord.replace(/\(\d+\)$/, "");
    const start = Number(startS);
    const dur = Number(durS);
    if (!text || !Number.isFinite(start) || !Number.isFinite(dur)) continue;
    const conf = confS === undefined ? undefined : Number(confS);
    const w: AsrWord = { text, start, end: start + dur };
    if (conf !== undefined && Number.isFinite(conf)) w.confidence = Math.max(0, Math.min(1, conf));
    const list = byUtt.get(utt) ?? [];
    list.push(w);
    byUtt.set(utt, list);
  }
  return byUtt;
}

/**
 * Decoders that stay loaded (`idleMs` infinite or ≤ 0) are worth loading when a worker host
 * starts; ones that exit when idle would only exit again before the first recording. One
 * child serves every track: its decoder pool balances all the tracks' segments over the
 * cores, which one pool per track could not.
 */
export function pocketsphinxCapabilities(idleMs: number | undefined): AsrCapabilities {
  return { preload: idleMs !== undefined && !(idleMs > 0 && Number.isFinite(idleMs)), sharedChild: true };
}

export function createPocketsphinxEngine(opts: PocketsphinxOptions): AsrEngine {
  const binary = opts.binary ?? "pocketsphinx_batch";
  // cut once per machine (then cached): each decoder starts ≈0.13 s sooner
  const cut = (opts.pruneDict ?? true) ? prunedDictionary(opts.dict, opts.lm, opts.cacheDir ?? path.join(os.tmpdir(), "trackscribe-asr-cache")) : null;
  const dict = cut?.path ?? opts.dict;
  const pool = new DecoderPool({
    binary,
    args: ["-remove_silence", "no", "-samprate", "16000", "-hmm", opts.hmm, "-lm", opts.lm, "-dict", dict],
    size: Math.max(1, opts.concurrency ?? os.availableParallelism()),
    ...(opts.idleMs !== undefined ? { idleMs: opts.idleMs } : {}),
    ...(opts.tmpRoot ? { tmpRoot: opts.tmpRoot } : {}),
    ...(opts.stallFactor !== undefined ? { stallFactor: opts.stallFactor } : {}),
    parseCtm,
  });
  return {
    name: "pocketsphinx",
    capabilities: pocketsphinxCapabilities(opts.idleMs),
    async transcribe(wavPath, { language, spans, signal, onProgress, batch }) {
      if (!/^en(-|$)/i.test(language)) {
        throw new AsrError(`the pocketsphinx engine has an English model only (language '${language}'); set ASR_ENGINE=openai`, false);
      }
      const reader = await openPcmReader(wavPath);
      let segments: { start: number; end: number }[];
      let perSegment: AsrWord[][];
      try {
        if (reader.sampleRate !== 16000) throw new AsrError(`expected 16 kHz audio, got ${reader.sampleRate} Hz`, false);
        segments = await planSegments(reader, spans);
        // (with no segments the pool only counts the call's arrival in its batch)
        perSegment = await pool.decode(
          segments.map((s) => ({
            // read when a decoder takes it: the call holds no audio while it waits
            writeTo: (file: string) => reader.copyTo(file, Math.round(s.start * 16000), Math.round(s.end * 16000)),
            seconds: s.end - s.start,
          })),
          { ...(signal ? { signal } : {}), ...(onProgress ? { onProgress } : {}), ...(batch ? { batch } : {}) },
        );
      } catch (err) {
        if (err instanceof DecoderError) throw new AsrError(err.message, err.retryable);
        throw err;
      } finally {
        await reader.close();
      }
      const words: AsrWord[] = [];
      perSegment.forEach((list, i) => {
        const base = segments[i]!.start;
        for (const w of list) words.push({ ...w, start: round3(base + w.start), end: round3(base + w.end) });
      });
      return words.sort((a, b) => a.start - b.start);
    },
    warm: () => pool.warm(),
    close: () => pool.close(),
  };
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;
