/**
 * The speech the sample meeting is made of, bundled in the repository so that
 * `npm run demo` needs no test data package: the five LibriVox clips (public domain) from
 * Debian's pocketsphinx-testdata and their reference transcripts, as FLAC (lossless, 451 KB
 * instead of 791 KB of WAV). Decoded they are the very samples of the original clips; the
 * SHA-256 of each clip's PCM is stored and checked, so fixtures built from the bundle are
 * byte-identical to fixtures built from the package.
 *
 *   npm run sample     # regenerate scripts/sample/ (needs pocketsphinx-testdata and ffmpeg)
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { readWav } from "../pipeline/audio/wav.ts";

export const LIBRIVOX = "/usr/share/pocketsphinx/test/data/librivox";
export const SAMPLE_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), "sample");
export const SAMPLE_RATE = 16000;
const CLIP_PREFIX = "sense_and_sensibility_01_austen_64kb-";

export interface SampleClip {
  id: string;
  file: string;
  text: string;
  samples: number;
  /** SHA-256 of the clip's 16-bit little-endian PCM */
  sha256: string;
}
export interface SampleIndex {
  source: string;
  sample_rate: number;
  clips: SampleClip[];
}

const pcmHash = (samples: Int16Array): string =>
  createHash("sha256").update(new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength)).digest("hex");

/** A clip of the bundle as 16 kHz mono samples, checked against its stored hash. */
export function decodeClip(clip: SampleClip, dir = SAMPLE_DIR): Int16Array {
  const file = path.join(dir, clip.file);
  const r = spawnSync("ffmpeg", ["-nostdin", "-v", "error", "-i", file, "-f", "s16le", "-ac", "1", "-ar", String(SAMPLE_RATE), "-"], {
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw new Error(`ffmpeg is needed to decode the bundled sample (${r.error.message})`);
  if (r.status !== 0) throw new Error(`ffmpeg could not decode ${file}: ${r.stderr.toString().trim()}`);
  const samples = new Int16Array(r.stdout.length / 2);
  new Uint8Array(samples.buffer).set(r.stdout.subarray(0, samples.length * 2));
  if (samples.length !== clip.samples || pcmHash(samples) !== clip.sha256) {
    throw new Error(`${file} does not decode to the clip it was made from (regenerate with npm run sample)`);
  }
  return samples;
}

export function readSampleIndex(dir = SAMPLE_DIR): SampleIndex {
  return JSON.parse(readFileSync(path.join(dir, "clips.json"), "utf8")) as SampleIndex;
}

/** Every clip of the bundle: id → samples and reference text. */
export function loadSample(dir = SAMPLE_DIR): Map<string, { samples: Int16Array; text: string }> {
  return new Map(readSampleIndex(dir).clips.map((c) => [c.id, { samples: decodeClip(c, dir), text: c.text }]));
}

/** Writes the bundle from pocketsphinx-testdata and checks that it decodes to the originals. */
export function buildSample(dir = SAMPLE_DIR, librivox = LIBRIVOX): SampleIndex {
  const texts = new Map<string, string>();
  for (const line of readFileSync(path.join(librivox, "transcription"), "utf8").split("\n")) {
    const m = /^<s>\s*(.*?)\s*<\/s>\s*\(sense_and_sensibility_01_austen_64kb-(\d+)\)/.exec(line.trim());
    if (m) texts.set(m[2]!, m[1]!);
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const clips: SampleClip[] = [];
  for (const [id, text] of [...texts].sort(([a], [b]) => a.localeCompare(b))) {
    const wav = path.join(librivox, `${CLIP_PREFIX}${id}.wav`);
    const pcm = readWav(readFileSync(wav));
    if (pcm.sampleRate !== SAMPLE_RATE) throw new Error(`${wav}: expected ${SAMPLE_RATE} Hz, got ${pcm.sampleRate}`);
    const file = `${id}.flac`;
    // bitexact and no metadata: the same clip gives the same bytes whatever ffmpeg made it
    const r = spawnSync("ffmpeg", [
      "-nostdin", "-v", "error", "-y", "-i", wav, "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact",
      "-c:a", "flac", "-compression_level", "12", path.join(dir, file),
    ]);
    if (r.status !== 0) throw new Error(`ffmpeg could not encode ${wav}: ${r.stderr.toString().trim()}`);
    clips.push({ id, file, text, samples: pcm.samples.length, sha256: pcmHash(pcm.samples) });
  }
  const index: SampleIndex = {
    source: "LibriVox, Sense and Sensibility ch. 1 (public domain), as in Debian's pocketsphinx-testdata; regenerate with npm run sample",
    sample_rate: SAMPLE_RATE,
    clips,
  };
  writeFileSync(path.join(dir, "clips.json"), `${JSON.stringify(index, null, 2)}\n`);
  loadSample(dir); // every clip decodes to its original samples
  return index;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const index = buildSample();
  process.stdout.write(`${index.clips.length} clips in ${SAMPLE_DIR}\n`);
}
