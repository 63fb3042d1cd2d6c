/**
 * bench:long's yardsticks, in a process of their own: every generated utterance decoded
 * alone (its own span on its own track, nothing else), which gives the words the pipeline
 * should come close to, and the decoder's CPU seconds per audio second (the decoders are this
 * process's children: their CPU time is read from /proc/self/stat once they have exited).
 * Prints one JSON line.
 *
 *   node --import tsx bench/long/baseline.ts <meeting dir>
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createPocketsphinxEngine } from "../../adapters/asr/pocketsphinx.ts";
import { loadConfig } from "../../pipeline/config.ts";
import type { Utterance } from "./generate.ts";

const dir = process.argv[2]!;
const config = loadConfig({});
const manifest = JSON.parse(readFileSync(path.join(dir, "manifest.json"), "utf8")) as { tracks: { path: string; offset_seconds: number }[] };
const ref = JSON.parse(readFileSync(path.join(dir, "reference.json"), "utf8")) as { utterances: Utterance[] };

/** children's CPU seconds so far (utime + stime of waited-for children) */
function childCpuSeconds(): number {
  const stat = readFileSync("/proc/self/stat", "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields from the state on: cutime and cstime are the 16th and 17th of the line
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

const engine = createPocketsphinxEngine({ hmm: config.POCKETSPHINX_HMM, dict: config.POCKETSPHINX_DICT, lm: config.POCKETSPHINX_LM, concurrency: os.availableParallelism(), idleMs: 0, stallFactor: 1000 });
// (a shared, loaded machine can slow a decoder tenfold: a yardstick must not give up on it)
const wavs = manifest.tracks.map((t, k) => {
  if (t.path.endsWith(".wav")) return path.join(dir, t.path);
  const wav = path.join(dir, `baseline-track${k}.wav`);
  execFileSync("ffmpeg", ["-nostdin", "-v", "error", "-y", "-i", path.join(dir, t.path), "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le", wav]);
  return wav;
});
const cpu0 = childCpuSeconds();
const t0 = performance.now();
let audio = 0;
const words = (
  await Promise.all(
    manifest.tracks.map(async (t, k) => {
      // each utterance its own span (and so its own segment: the clips are under 25 s)
      const spans = ref.utterances
        .filter((u) => u.track === k)
        .map((u) => ({ start: Math.max(0, u.start - t.offset_seconds - 0.2), end: u.end - t.offset_seconds + 0.2 }));
      audio += spans.reduce((s, x) => s + x.end - x.start, 0);
      const got = await engine.transcribe(wavs[k]!, { language: "en", spans });
      return got.map((w) => ({ text: w.text, start: w.start + t.offset_seconds, end: w.end + t.offset_seconds, speaker: k }));
    }),
  )
).flat();
const wall = (performance.now() - t0) / 1000;
await engine.close?.();
const cpu = childCpuSeconds() - cpu0;
process.stdout.write(`${JSON.stringify({ audio_seconds: audio, cpu_seconds: cpu, cpu_per_audio_second: cpu / audio, wall_seconds: wall, words })}\n`);
