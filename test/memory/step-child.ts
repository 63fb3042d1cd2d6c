/**
 * Runs heavy steps on one long track in a process of its own and prints its peak RSS
 * (VmHWM from /proc) as a JSON line, for flat-memory.test.ts. Decoders (ffmpeg, the
 * stand-in recognizer) are processes of their own and are not counted.
 *
 *   node --import tsx test/memory/step-child.ts <source.wav> <work dir> <prepare-mixdown|transcribe> [decoder]
 */
import { readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { createLocalStorage } from "../../adapters/storage/local.ts";
import { createFfmpegAudioTools } from "../../adapters/audio/ffmpeg.ts";
import { createPocketsphinxEngine } from "../../adapters/asr/pocketsphinx.ts";
import { prepareTrack } from "../../pipeline/steps/prepare_track.ts";
import { mixdown } from "../../pipeline/steps/mixdown.ts";
import { transcribeTrack } from "../../pipeline/steps/transcribe_track.ts";
import type { StepDeps } from "../../pipeline/steps/deps.ts";
import type { AsrEngine, TextModel } from "../../pipeline/ports.ts";
import { envelopeFromBytes } from "../../pipeline/audio/envelope.ts";
import { planSpeechSpans } from "../../pipeline/audio/planner.ts";

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
await storage.putFile(track.source_key, source, "audio/wav");
const stages: Record<string, number> = {};
const prepared = await prepareTrack({ recording_id: "mem", namespace: "inprocess", track }, await deps("prepare"));
stages.prepare = vmHwmKb();
const envelope = envelopeFromBytes(await storage.get(prepared.envelope_key));
const spans = planSpeechSpans([{ track_index: 0, offset_seconds: prepared.offset_seconds, frame_seconds: prepared.frame_seconds, envelope }], { bleedDb: 12 }).get(0) ?? [];
const plan = { ...prepared, spans };
stages.plan = vmHwmKb();
out.duration_seconds = prepared.duration_seconds;
out.planned_seconds = Math.round(spans.reduce((s, x) => s + x.end - x.start, 0));
if (mode === "prepare-mixdown") {
  const mixed = await mixdown({ recording_id: "mem", namespace: "inprocess", tracks: [plan], peaks: 800 }, await deps("mixdown"));
  out.mixdown_seconds = mixed.duration;
} else {
  const words = await transcribeTrack({ recording_id: "mem", namespace: "inprocess", language: "en", track: plan }, await deps("transcribe"));
  out.words = words.words.length;
  out.decoded_seconds = words.decoded_seconds;
  await asr.close?.();
}
out.stages = stages;
out.baseline_kb = before;
out.peak_kb = vmHwmKb();
process.stdout.write(`${JSON.stringify(out)}\n`);
