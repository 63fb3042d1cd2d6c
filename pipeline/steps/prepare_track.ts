/**
 * prepare_track: decode the track's source (any ffmpeg-readable format) to 16 kHz mono
 * PCM, compute its frame-energy envelope, and store both under the engine's namespace.
 * The track's offset places it on the global timeline; the PCM itself is not padded.
 */
import path from "node:path";
import type { PrepareTrackInput, PreparedTrack } from "../contracts/index.ts";
import { EnvelopeBuilder, envelopeToBytes, FRAME_SECONDS } from "../audio/envelope.ts";
import { durationProblem, NotAudioError } from "../audio/errors.ts";
import { openPcm } from "../audio/wav.ts";
import type { StepDeps } from "./deps.ts";
import { derivedKey } from "./keys.ts";

export async function prepareTrack(input: PrepareTrackInput, deps: StepDeps): Promise<PreparedTrack> {
  const { track, recording_id, namespace } = input;
  // a scratch name the client does not choose: the decoder judges the format by content
  const source = path.join(deps.scratchDir, "source.bin");
  const wav = path.join(deps.scratchDir, "track.wav");
  await deps.storage.getToFile(track.source_key, source);
  deps.progress?.({ step: "prepare_track", track_index: track.track_index, fraction: 0.3, message: "decoding" });
  let duration: number;
  try {
    ({ duration } = await deps.audio.decodeToWav(source, wav, deps.signal));
  } catch (err) {
    // the decoder only knows our scratch copy: name the track and its storage key instead
    if (err instanceof NotAudioError) {
      throw new NotAudioError(`track ${track.track_index} (${track.participant}) ${track.source_key}`, err.reason.split(source).join("input"));
    }
    throw err;
  }
  // the track's measured length against the limits, before its samples are read: a
  // key-referenced track never went through the upload's probe, and a header may lie
  const limits = deps.limits ?? { maxTrackSeconds: Infinity, maxRecordingSeconds: Infinity, minTrackSeconds: 0 };
  const problem = durationProblem(`track ${track.track_index} (${track.participant})`, duration, track.offset_seconds, limits);
  if (problem) throw problem;
  // the envelope from the decoded file, a chunk at a time: memory stays flat whatever the length
  const pcm = await openPcm(wav);
  const builder = new EnvelopeBuilder(pcm.totalSamples, pcm.sampleRate, FRAME_SECONDS);
  for await (const chunk of pcm.chunks()) builder.push(chunk);
  const envelope = builder.finish();
  const pcm_key = derivedKey(recording_id, namespace, "pcm", `${track.track_index}.wav`);
  const envelope_key = derivedKey(recording_id, namespace, "envelope", `${track.track_index}.f32`);
  await deps.storage.putFile(pcm_key, wav, "audio/wav");
  await deps.storage.put(envelope_key, envelopeToBytes(envelope), "application/octet-stream");
  return {
    track_index: track.track_index,
    offset_seconds: track.offset_seconds,
    pcm_key,
    envelope_key,
    frame_seconds: FRAME_SECONDS,
    duration_seconds: Math.round(duration * 1000) / 1000,
  };
}
