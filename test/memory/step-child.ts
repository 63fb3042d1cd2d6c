/**
 * Runs heavy steps on one long track in a process of its own (prepare_track then mixdown,
 * or transcribe_track over the track's bursts) and prints its peak RSS
 * (VmHWM from /proc) as a JSON line, for flat-memory.test.ts. Decoders (ffmpeg, the
 * stand-in recognizer) are processes of their own and are not counted.
 *
 *   node --import tsx test/memory/step-child.ts <source.wav> <work dir> <prepare-mixdown|transcribe> [decoder]
 *   node --import tsx test/memory/step-child.ts <envelope dir> <work dir> plan-bleed
 *
 * plan-bleed: plan_speech then suppress_bleed over the envelopes `env-<i>.f32` of the
 * envelope dir (one per track, as prepare_track stores them), with a word per burst.
 */
import { readdirSync, readFileSync } from "node:fs";
import { mkdir, stat } from "node:fs/promises";
import path from "node:path";
import { createLocalStorage } from "../../adapters/storage/local.ts";
import { createFfmpegAudioTools } from "../../adapters/audio/ffmpeg.ts";
import { createPocketsphinxEngine } from "../../adapters/asr/pocketsphinx.ts";
import { prepareTrack } from "../../pipeline/steps/prepare_track.ts";
import { mixdown } from "../../pipeline/steps/mixdown.ts";
import { transcribeTrack } from "../../pipeline/steps/transcribe_track.ts";
import { planSpeech } from "../../pipeline/steps/plan_speech.ts";
import { suppressBleed } from "../../pipeline/steps/suppress_bleed.ts";
import type { StepDeps } from "../../pipeline/steps/deps.ts";
import type { AsrEngine, TextModel } from "../../pipeline/ports.ts";

const [source, work, mode, decoder] = process.argv.slice(2) as [string, string, string, string | undefined];
const vmHwmKb = (): number => Number(/VmHWM:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? 0);

const storage = createLocalStorage(path.join(work, "storage"));
const scratch = async (name: string): Promise<string> => {
  const d = path.join(work, "scratch", name);
  await mkdir(d, { recursive: true });
  return d;
};
const noText = {} as TextModel; // these steps never call the text model
const asr: AsrEngine = decoder
  ? createPocketsphinxEngine({ binary: decoder, hmm: "-", dict: "-", lm: "-", pruneDict: false, concurrency: 2, tmpRoot: path.join(work, "pool") })
  : ({ name: "none" } as AsrEngine);
const deps = async (name: string): Promise<StepDeps> => ({ storage, audio: createFfmpegAudioTools(), asr, text: noText, scratchDir: await scratch(name), bleedThresholdDb: 12 });

const before = vmHwmKb();
const out: Record<string, unknown> = { mode };
const track = { track_index: 0, participant: "Long", offset_seconds: 1.5, source_key: "recordings/mem/tracks/0.wav" };
const seconds = mode === "plan-bleed" ? 0 : (await stat(source)).size / 32000;
// the bursts the test writes (3 s at the start of every minute), padded as the planner pads
const spans = Array.from({ length: Math.floor(seconds / 60) }, (_, m) => ({ start: track.offset_seconds + m * 60, end: track.offset_seconds + m * 60 + 3.25 }));
if (mode === "prepare-mixdown") {
  await storage.putFile(track.source_key, source, "audio/wav");
  const prepared = await prepareTrack({ recording_id: "mem", namespace: "inprocess", track }, await deps("prepare"));
  out.prepare_kb = vmHwmKb();
  out.duration_seconds = prepared.duration_seconds;
  const mixed = await mixdown({ recording_id: "mem", namespace: "inprocess", tracks: [{ ...prepared, spans }], peaks: 800 }, await deps("mixdown"));
  out.mixdown_seconds = mixed.duration;
} else if (mode === "plan-bleed") {
  const files = readdirSync(source).filter((f) => /^env-\d+\.f32$/.test(f)).sort();
  const prepared = [];
  for (const f of files) {
    const i = Number(/\d+/.exec(f)![0]);
    const envelope_key = `derived/mem/${i}.env`;
    await storage.putFile(envelope_key, path.join(source, f), "application/octet-stream");
    const frames = (await stat(path.join(source, f))).size / 4;
    prepared.push({ track_index: i, offset_seconds: i * 0.5, pcm_key: `derived/mem/${i}.wav`, envelope_key, frame_seconds: 0.02, duration_seconds: frames * 0.02 });
  }
  const base = vmHwmKb();
  const plan = await planSpeech({ recording_id: "mem", namespace: "inprocess", language: "en", expected_tracks: prepared.map((p) => p.track_index), prepared }, await deps("plan"));
  out.plan_kb = vmHwmKb();
  out.tracks = plan.tracks.length;
  out.duration_seconds = plan.duration;
  out.planned_seconds = plan.planned_seconds;
  out.spans = plan.tracks.reduce((n, t) => n + t.spans.length, 0);
  // a word in the middle of every planned span, on its own track
  const words = plan.tracks.flatMap((t) =>
    t.spans.map((s) => ({ text: "word", start: (s.start + s.end) / 2 - 0.2, end: (s.start + s.end) / 2 + 0.2, speaker: t.track_index, confidence: 0.9 })),
  );
  words.sort((a, b) => a.start - b.start);
  const bled = await suppressBleed({ recording_id: "mem", namespace: "inprocess", words, tracks: plan.tracks }, await deps("bleed"));
  out.words = words.length;
  out.kept = bled.words.length;
  out.setup_kb = base;
} else {
  // the decoded track as prepare_track stores it (the test's WAV already is 16 kHz mono PCM)
  const pcm_key = "derived/mem/0.wav";
  await storage.putFile(pcm_key, source, "audio/wav");
  const plan = { track_index: 0, offset_seconds: track.offset_seconds, pcm_key, envelope_key: "unused", frame_seconds: 0.02, duration_seconds: seconds, spans };
  const words = await transcribeTrack({ recording_id: "mem", namespace: "inprocess", language: "en", track: plan }, await deps("transcribe"));
  out.duration_seconds = seconds;
  out.words = words.words.length;
  out.decoded_seconds = words.decoded_seconds;
  await asr.close?.();
}
out.baseline_kb = before;
out.peak_kb = vmHwmKb();
process.stdout.write(`${JSON.stringify(out)}\n`);
