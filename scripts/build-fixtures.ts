/**
 * Builds the test meeting: 3 participants, each on their own track with its own start
 * offset, taking turns with real speech (LibriVox clips with reference transcripts, bundled
 * in scripts/sample/ from Debian's pocketsphinx-testdata: see build-sample.ts; the demo
 * uses this meeting, so it needs no test data package). Every track also carries
 * the other voices as mic bleed 26 dB down and a low noise floor, as real close-talk
 * microphones do. One track is WebM/Opus to prove decoding of non-WAV input.
 *
 *   npm run fixtures            # → test/fixtures/out/{manifest.json, reference.json, *.wav, *.webm}
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { writeWav } from "../pipeline/audio/wav.ts";
import { loadSample } from "./build-sample.ts";

const VERSION = "meeting-v1";
export const BLEED_DB = -26;
const RATE = 16000;

export interface Utterance {
  clip: string;
  text: string;
  start: number;
  end: number;
}
export interface ReferenceSpeaker {
  speaker: number;
  name: string;
  utterances: Utterance[];
  words: string[];
}
export interface Reference {
  version: string;
  bleed_db: number;
  duration: number;
  speakers: ReferenceSpeaker[];
}

/** Who says what, in order; each turn starts `gap` seconds after the previous ends. */
const TURNS: { speaker: number; clip: string }[] = [
  { speaker: 0, clip: "0870" },
  { speaker: 1, clip: "0880" },
  { speaker: 2, clip: "0890" },
  { speaker: 0, clip: "0920" },
  { speaker: 1, clip: "0930" },
];
const PARTICIPANTS = [
  { name: "Alice", offset: 0, file: "alice.wav" },
  { name: "Bob", offset: 1.5, file: "bob.wav" },
  { name: "Carol", offset: 3.0, file: "carol.webm" },
];

/** Deterministic low-level noise (LCG), so every build is byte-identical. */
function noise(n: number, seed: number, amplitude: number): Float64Array {
  const out = new Float64Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = ((s / 0xffffffff) * 2 - 1) * amplitude;
  }
  return out;
}

export async function buildFixtures(outDir: string): Promise<{ manifestPath: string; reference: Reference }> {
  const stamp = path.join(outDir, ".version");
  const manifestPath = path.join(outDir, "manifest.json");
  if (existsSync(stamp) && readFileSync(stamp, "utf8") === VERSION && existsSync(manifestPath)) {
    return { manifestPath, reference: JSON.parse(readFileSync(path.join(outDir, "reference.json"), "utf8")) as Reference };
  }
  const clips = loadSample();
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });

  // lay the turns out on the global timeline
  const gap = 0.8;
  let t = 1.0;
  const placed = TURNS.map((turn) => {
    const clip = clips.get(turn.clip);
    if (!clip) throw new Error(`clip ${turn.clip} is not in the bundled sample`);
    const pcm = { samples: clip.samples };
    const start = t;
    const end = start + pcm.samples.length / RATE;
    t = end + gap;
    return { ...turn, pcm, start, end };
  });
  const duration = t + 1.0;
  const total = Math.ceil(duration * RATE);
  const bleedGain = 10 ** (BLEED_DB / 20);

  const speakers: ReferenceSpeaker[] = PARTICIPANTS.map((p, i) => ({ speaker: i, name: p.name, utterances: [], words: [] }));
  const tracks = PARTICIPANTS.map((p, i) => {
    const startSample = Math.round(p.offset * RATE);
    const buf = noise(total - startSample, 1000 + i, 40); // ≈ −58 dBFS noise floor
    for (const turn of placed) {
      const gain = turn.speaker === i ? 1 : bleedGain;
      const at = Math.round(turn.start * RATE) - startSample;
      for (let j = 0; j < turn.pcm.samples.length; j++) {
        const k = at + j;
        if (k >= 0 && k < buf.length) buf[k]! += turn.pcm.samples[j]! * gain;
      }
    }
    const samples = new Int16Array(buf.length);
    for (let j = 0; j < buf.length; j++) samples[j] = Math.max(-32768, Math.min(32767, Math.round(buf[j]!)));
    return samples;
  });
  for (const turn of placed) {
    const text = clips.get(turn.clip)!.text;
    const s = speakers[turn.speaker]!;
    s.utterances.push({ clip: turn.clip, text, start: round3(turn.start), end: round3(turn.end) });
    s.words.push(...text.split(/\s+/).filter(Boolean));
  }

  PARTICIPANTS.forEach((p, i) => {
    const wav = writeWav({ sampleRate: RATE, samples: tracks[i]! });
    if (p.file.endsWith(".wav")) writeFileSync(path.join(outDir, p.file), wav);
    else {
      const tmp = path.join(outDir, `.${p.name}.wav`);
      writeFileSync(tmp, wav);
      const r = spawnSync("ffmpeg", ["-nostdin", "-v", "error", "-y", "-i", tmp, "-c:a", "libopus", "-b:a", "48k", path.join(outDir, p.file)]);
      rmSync(tmp, { force: true });
      if (r.status !== 0) throw new Error(`ffmpeg could not encode ${p.file}: ${r.stderr.toString()}`);
    }
  });
  const manifest = {
    language: "en",
    tracks: PARTICIPANTS.map((p) => ({ path: p.file, participant: p.name, offset_seconds: p.offset })),
  };
  const reference: Reference = { version: VERSION, bleed_db: BLEED_DB, duration: round3(duration), speakers };
  writeFileSync(manifestPath, JSON.stringify(manifest, null, 2));
  writeFileSync(path.join(outDir, "reference.json"), JSON.stringify(reference, null, 2));
  writeFileSync(stamp, VERSION);
  return { manifestPath, reference };
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

export const defaultFixtureDir = (): string => path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "test", "fixtures", "out");

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { manifestPath } = await buildFixtures(defaultFixtureDir());
  process.stdout.write(`${manifestPath}\n`);
}
