/**
 * Offline ASR with Debian's pocketsphinx (`pocketsphinx_batch`). Measured on LibriVox
 * clips, batch decoding with `-remove_silence no` is both more accurate and better timed
 * than `pocketsphinx_continuous`. The planned spans are written as headerless segments and
 * decoded in one batch run (one model load); CTM output gives word start, duration and a
 * posterior confidence, mapped back to file-local seconds.
 */
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import type { AsrEngine, AsrWord } from "../ports.ts";
import { rawSlice, readWav } from "../audio/wav.ts";
import { segmentsToDecode } from "./spans.ts";

export interface PocketsphinxOptions {
  hmm: string;
  dict: string;
  lm: string;
  binary?: string;
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

export function createPocketsphinxEngine(opts: PocketsphinxOptions): AsrEngine {
  const binary = opts.binary ?? "pocketsphinx_batch";
  return {
    name: "pocketsphinx",
    async transcribe(wavPath, { language, spans, signal, onProgress }) {
      if (!/^en(-|$)/i.test(language)) {
        throw new AsrError(`the pocketsphinx engine has an English model only (language '${language}'); set ASR_ENGINE=openai`, false);
      }
      const pcm = readWav(await readFile(wavPath));
      if (pcm.sampleRate !== 16000) throw new AsrError(`expected 16 kHz audio, got ${pcm.sampleRate} Hz`, false);
      const segments = segmentsToDecode(pcm, spans);
      if (segments.length === 0) return [];
      const dir = await mkdtemp(path.join(path.dirname(wavPath), "psx-"));
      try {
        const ids: string[] = [];
        for (const [i, s] of segments.entries()) {
          const id = `seg${String(i).padStart(5, "0")}`;
          ids.push(id);
          await writeFile(path.join(dir, `${id}.raw`), rawSlice(pcm.samples, Math.round(s.start * 16000), Math.round(s.end * 16000)));
        }
        await writeFile(path.join(dir, "ctl"), ids.join("\n") + "\n");
        const args = [
          "-adcin", "yes", "-cepdir", dir, "-cepext", ".raw", "-ctl", path.join(dir, "ctl"),
          "-ctm", path.join(dir, "out.ctm"), "-hyp", path.join(dir, "out.hyp"),
          "-remove_silence", "no", "-samprate", "16000",
          "-hmm", opts.hmm, "-lm", opts.lm, "-dict", opts.dict,
        ];
        // The log goes to stderr: its "Decoding 'segNNNNN'" lines report progress while a long
        // track decodes (one batch run can take many minutes; silence would look like a stall),
        // and its tail explains a failure.
        const before = segmentStartsInSeconds(segments);
        const total = before[before.length - 1]!;
        let log = "";
        let pending = "";
        const code = await new Promise<number>((resolve, reject) => {
          const child = spawn(binary, args, { stdio: ["ignore", "ignore", "pipe"], signal });
          child.stderr.on("data", (b: Buffer) => {
            const text = pending + b.toString();
            const lines = text.split("\n");
            pending = lines.pop() ?? "";
            for (const line of lines) {
              log = (log + line + "\n").slice(-8000);
              const m = /Decoding '(seg\d+)'/.exec(line);
              const i = m ? ids.indexOf(m[1]!) : -1;
              if (i >= 0 && onProgress && total > 0) onProgress(before[i]! / total);
            }
          });
          child.once("error", (err) => reject(err.name === "AbortError" ? err : new AsrError(`${binary} could not start: ${err.message}`, false)));
          child.once("close", (c, sig) => resolve(c ?? (sig ? 128 : 1)));
        });
        if (code !== 0) {
          const tail = (log + pending).trim().split("\n").filter((l) => /ERROR|FATAL|error/.test(l)).slice(-5);
          const lines = tail.length ? tail : (log + pending).trim().split("\n").slice(-5);
          throw new AsrError(`${binary} exited with ${code}: ${lines.join(" | ")}`);
        }
        onProgress?.(1);
        const byUtt = parseCtm(await readFile(path.join(dir, "out.ctm"), "utf8"));
        const words: AsrWord[] = [];
        ids.forEach((id, i) => {
          const base = segments[i]!.start;
          for (const w of byUtt.get(id) ?? []) words.push({ ...w, start: round3(base + w.start), end: round3(base + w.end) });
        });
        return words.sort((a, b) => a.start - b.start);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

/** Seconds of audio before each segment, plus the total as the last element. */
function segmentStartsInSeconds(segments: readonly { start: number; end: number }[]): number[] {
  const out = [0];
  for (const s of segments) out.push(out[out.length - 1]! + (s.end - s.start));
  return out;
}
