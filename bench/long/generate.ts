/**
 * A generated meeting for `npm run bench:long`: `tracks` people over `minutes`, real speech
 * from Debian's pocketsphinx test clips (LibriVox), each use of a clip re-timed (resampled by
 * up to ±6 %) and re-gained (−8 to 0 dB) so no two utterances are the same samples; turns
 * with pauses and some overlap; each track starts at its own offset on the meeting's
 * timeline; every voice leaks into the other microphones 26 dB down (bleed); the last track
 * is WebM/Opus, the others 16 kHz WAV. `speech` is the fraction of the timeline with
 * someone speaking (low values make long, mostly silent tracks for the memory check).
 *
 * Tracks are written a few seconds at a time: generating 3 hours × 10 tracks holds no track.
 * Writes manifest.json (FileManifest) and reference.json (the utterances, global seconds).
 */
import { execFileSync } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import path from "node:path";
import { readWav, wavHeader } from "../../pipeline/audio/wav.ts";
import { seeded } from "../seeded.ts";

export const LIBRIVOX = "/usr/share/pocketsphinx/test/data/librivox";
export const BLEED_DB = -26;
const RATE = 16000;

export interface Utterance {
  track: number;
  /** global timeline seconds */
  start: number;
  end: number;
  text: string;
  clip: string;
  /** resampling factor (> 1: faster and higher) and gain in dB: unique per utterance */
  rate: number;
  gain_db: number;
}

export interface GeneratedMeeting {
  manifestPath: string;
  referencePath: string;
  minutes: number;
  offsets: number[];
  utterances: Utterance[];
  voicedSeconds: number;
}

interface Clip {
  id: string;
  text: string;
  samples: Int16Array;
}

export function loadClips(dir = LIBRIVOX): Clip[] {
  const text = new Map<string, string>();
  for (const line of readFileSync(path.join(dir, "transcription"), "utf8").split("\n")) {
    const m = /^<s>\s*(.*?)\s*<\/s>\s*\((.+)\)\s*$/.exec(line.trim());
    if (m) text.set(m[2]!, m[1]!);
  }
  return [...text.entries()].map(([id, t]) => ({ id, text: t, samples: readWav(readFileSync(path.join(dir, `${id}.wav`))).samples }));
}


/** The clip resampled by `rate` (linear interpolation) and scaled by `gain_db`. */
export function render(clip: Int16Array, rate: number, gainDb: number): Float32Array {
  const n = Math.floor(clip.length / rate);
  const g = 10 ** (gainDb / 20);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const x = i * rate;
    const j = Math.floor(x);
    const f = x - j;
    out[i] = ((clip[j] ?? 0) * (1 - f) + (clip[j + 1] ?? 0) * f) * g;
  }
  return out;
}

export function planMeeting(o: { minutes: number; tracks: number; speech: number; seed?: number }, clips: Clip[]): { utterances: Utterance[]; offsets: number[] } {
  const r = seeded(o.seed ?? 1);
  const total = o.minutes * 60;
  const offsets = Array.from({ length: o.tracks }, (_, i) => (i === 0 ? 0 : Math.round((0.25 + r() * 1.5) * 1000) / 1000));
  const used = new Set<string>();
  const utterances: Utterance[] = [];
  const meanClip = clips.reduce((s, c) => s + c.samples.length / RATE, 0) / clips.length;
  // the mean gap that makes `speech` of the timeline voiced (turns overlap a little)
  const meanGap = Math.max(0.2, meanClip * (1 / Math.max(0.01, Math.min(0.95, o.speech)) - 1));
  let t = Math.max(...offsets) + 1;
  let last = -1;
  while (true) {
    const clip = clips[Math.floor(r() * clips.length)]!;
    let rate = 0;
    let gain = 0;
    // unique (rate, gain) per utterance: never the same samples twice
    do {
      rate = Math.round((0.94 + r() * 0.12) * 10000) / 10000;
      gain = Math.round(-8 * r() * 100) / 100;
    } while (used.has(`${clip.id}/${rate}/${gain}`));
    used.add(`${clip.id}/${rate}/${gain}`);
    const seconds = Math.floor(clip.samples.length / rate) / RATE;
    if (t + seconds > total - 0.5) break;
    let track = Math.floor(r() * o.tracks);
    if (track === last && o.tracks > 1) track = (track + 1) % o.tracks;
    const start = Math.round(t * 1000) / 1000;
    utterances.push({ track, start, end: Math.round((start + seconds) * 1000) / 1000, text: clip.text, clip: clip.id, rate, gain_db: gain });
    last = track;
    // a pause drawn around the mean gap; one turn in eight starts before the last ends
    const gap = r() < 0.125 ? -Math.min(1, seconds / 3) : meanGap * (0.3 + 1.4 * r());
    t = start + seconds + gap;
  }
  return { utterances, offsets };
}

export async function generateMeeting(dir: string, o: { minutes: number; tracks: number; speech: number; seed?: number; webm?: boolean }): Promise<GeneratedMeeting> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const clips = loadClips();
  const byId = new Map(clips.map((c) => [c.id, c]));
  const { utterances, offsets } = planMeeting(o, clips);
  const total = o.minutes * 60;
  const bleed = 10 ** (BLEED_DB / 20);
  const block = 10 * RATE; // samples written at a time
  const files: string[] = [];
  for (let k = 0; k < o.tracks; k++) {
    const samples = Math.round((total - offsets[k]!) * RATE);
    const file = path.join(dir, `track${k}.wav`);
    const fd = openSync(file, "w");
    writeSync(fd, wavHeader(samples * 2, RATE));
    const r = seeded(1000 + k);
    // the faint noise floor (±12), from a table: drawing it per sample would dominate a long, quiet track
    const noise = Float32Array.from({ length: 1 << 16 }, () => Math.round((r() * 2 - 1) * 12));
    // utterances sorted by start: a block mixes those it overlaps, each rendered when reached
    const cache = new Map<number, Float32Array>();
    let first = 0;
    for (let at = 0; at < samples; at += block) {
      const n = Math.min(block, samples - at);
      const mix = new Float32Array(n);
      const from = at / RATE + offsets[k]!;
      const to = (at + n) / RATE + offsets[k]!;
      while (first < utterances.length && utterances[first]!.end < from - 1) cache.delete(first++);
      for (let u = first; u < utterances.length && utterances[u]!.start < to; u++) {
        const ut = utterances[u]!;
        if (ut.end <= from) continue;
        let audio = cache.get(u);
        if (!audio) cache.set(u, (audio = render(byId.get(ut.clip)!.samples, ut.rate, ut.gain_db)));
        const g = ut.track === k ? 1 : bleed;
        const startSample = Math.round((ut.start - offsets[k]!) * RATE);
        for (let i = Math.max(0, startSample - at); i < n && i + at - startSample < audio.length; i++) mix[i]! += audio[i + at - startSample]! * g;
      }
      const out = new Int16Array(n);
      for (let i = 0; i < n; i++) out[i] = Math.max(-32768, Math.min(32767, Math.round(mix[i]! + noise[(at + i) & 0xffff]!)));
      writeSync(fd, out);
    }
    closeSync(fd);
    files.push(file);
  }
  if (o.webm ?? true) {
    const k = o.tracks - 1;
    const webm = path.join(dir, `track${k}.webm`);
    execFileSync("ffmpeg", ["-nostdin", "-v", "error", "-y", "-i", files[k]!, "-c:a", "libopus", "-b:a", "32k", "-compression_level", "0", webm]);
    rmSync(files[k]!);
    files[k] = webm;
  }
  const manifestPath = path.join(dir, "manifest.json");
  writeFileSync(
    manifestPath,
    JSON.stringify({ language: "en", tracks: files.map((f, k) => ({ path: path.basename(f), participant: `Speaker ${k + 1}`, offset_seconds: offsets[k] })) }, null, 1),
  );
  const referencePath = path.join(dir, "reference.json");
  writeFileSync(referencePath, JSON.stringify({ minutes: o.minutes, offsets, utterances }, null, 1));
  const voicedSeconds = utterances.reduce((s, u) => s + u.end - u.start, 0);
  return { manifestPath, referencePath, minutes: o.minutes, offsets, utterances, voicedSeconds };
}

/** As a program: `node --import tsx bench/long/generate.ts <dir> <minutes> <tracks> <speech>` (one JSON line out). */
if (process.argv[1] && import.meta.url.endsWith(path.basename(process.argv[1]))) {
  const [dir, minutes, tracks, speech] = process.argv.slice(2);
  const m = await generateMeeting(dir!, { minutes: Number(minutes), tracks: Number(tracks), speech: Number(speech) });
  process.stdout.write(`${JSON.stringify({ manifestPath: m.manifestPath, referencePath: m.referencePath, voicedSeconds: m.voicedSeconds, utterances: m.utterances.length })}\n`);
}
