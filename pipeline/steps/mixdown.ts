/** mixdown: all aligned tracks → one MP3 (for playback) and N waveform peaks (for drawing). */
import path from "node:path";
import type { MixdownInput, MixdownOutput } from "../contracts/index.ts";
import { PeakAccumulator } from "../audio/envelope.ts";
import { openPcm } from "../audio/wav.ts";
import type { StepDeps } from "./deps.ts";
import { derivedKey } from "./keys.ts";

export async function mixdown(input: MixdownInput, deps: StepDeps): Promise<MixdownOutput> {
  const inputs = await Promise.all(
    input.tracks.map(async (t) => {
      const p = path.join(deps.scratchDir, `t${t.track_index}.wav`);
      await deps.storage.getToFile(t.pcm_key, p);
      return { path: p, offset_seconds: t.offset_seconds };
    }),
  );
  const out = path.join(deps.scratchDir, "mixdown.mp3");
  const { duration } = await deps.audio.mixdownMp3(inputs, out, deps.signal);
  // waveform from the aligned PCM tracks, a chunk of one track in memory at a time (no MP3 decode)
  const rate = 16000;
  const total = Math.ceil(Math.max(...input.tracks.map((t) => t.offset_seconds + t.duration_seconds)) * rate);
  const acc = new PeakAccumulator(input.peaks, total);
  for (const [i, t] of input.tracks.entries()) {
    const offset = Math.round(t.offset_seconds * rate);
    const pcm = await openPcm(inputs[i]!.path);
    let at = offset;
    for await (const chunk of pcm.chunks()) {
      acc.addChunk(chunk, at, offset);
      at += chunk.length;
    }
    acc.endTrack();
  }
  const audio_key = derivedKey(input.recording_id, input.namespace, "mixdown", "mixdown.mp3");
  await deps.storage.putFile(audio_key, out, "audio/mpeg");
  return { audio_key, waveform: acc.peaks(), duration: Math.round(duration * 1000) / 1000 };
}
