/**
 * transcribe_track: decode only the planned spans of one track; words come out on the
 * global timeline with the track index as speaker. A silent track returns
 * `{track_index, words: []}`, never an empty output (it would vanish from the JOIN).
 */
import path from "node:path";
import type { SpeechPlan, TrackSpeechPlan, TranscribeTrackInput, TranscribeTrackOutput } from "../contracts/index.ts";
import { totalSeconds } from "../audio/planner.ts";
import type { StepDeps } from "./deps.ts";

/** The planned spans of a track in file-local seconds, as decoded (slivers dropped). */
export function decodableSpans(t: TrackSpeechPlan): { start: number; end: number }[] {
  return t.spans
    .map((s) => ({ start: Math.max(0, s.start - t.offset_seconds), end: Math.min(t.duration_seconds, s.end - t.offset_seconds) }))
    .filter((s) => s.end - s.start > 0.05);
}

/** Tracks of a plan that reach the recognizer (the others return no words without it). */
export function speechTracks(plan: Pick<SpeechPlan, "tracks">): number {
  return plan.tracks.filter((t) => decodableSpans(t).length > 0).length;
}

export async function transcribeTrack(input: TranscribeTrackInput, deps: StepDeps): Promise<TranscribeTrackOutput> {
  const t = input.track;
  const local = decodableSpans(t);
  const base = { track_index: t.track_index, engine: deps.asr.name, track_seconds: t.duration_seconds };
  if (local.length === 0) return { ...base, words: [], decoded_seconds: 0 };
  const wav = path.join(deps.scratchDir, "track.wav");
  await deps.storage.getToFile(t.pcm_key, wav);
  deps.progress?.({ step: "transcribe_track", track_index: t.track_index, fraction: 0.1, message: `decoding ${local.length} span(s)` });
  const words = await deps.asr.transcribe(wav, {
    language: input.language,
    spans: local,
    signal: deps.signal,
    ...(input.participants?.length ? { participants: input.participants.map((p) => p.participant) } : {}),
    // the meeting's other tracks are on their way to the same recognizer (one batch)
    ...(input.speech_tracks && input.speech_tracks > 1 ? { batch: { id: `${input.namespace}/${input.recording_id}`, size: input.speech_tracks } } : {}),
    // keeps a child channel's stall timer fed while a long track decodes
    onProgress: (f) =>
      deps.progress?.({ step: "transcribe_track", track_index: t.track_index, fraction: 0.1 + 0.85 * Math.max(0, Math.min(1, f)), message: "decoding" }),
  });
  const r3 = (x: number): number => Math.round(x * 1000) / 1000;
  return {
    ...base,
    decoded_seconds: r3(totalSeconds(local)),
    words: words
      .filter((w) => w.text.trim().length > 0)
      .map((w) => ({
        text: w.text.trim(),
        start: r3(w.start + t.offset_seconds),
        end: r3(Math.max(w.start, w.end) + t.offset_seconds),
        speaker: t.track_index,
        ...(w.confidence !== undefined ? { confidence: w.confidence } : {}),
        ...(w.timing ? { timing: w.timing } : {}),
      })),
  };
}
