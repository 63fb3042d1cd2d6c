/**
 * plan_speech: all prepared tracks in (JOIN dict or array, normalized by track index), the
 * spans where each track carries its own speech out. The transcriber decodes only those,
 * skipping silence and the spans where another track dominates (mic bleed). Tracks that
 * could not be prepared are listed in `failed_tracks` and left out of everything after.
 */
import { PreparedTrack, type PlanSpeechInput, type SpeechPlan } from "../contracts/index.ts";
import { planSpeechSpans, totalSeconds } from "../audio/planner.ts";
import { splitJoinOutput } from "../join.ts";
import type { StepDeps } from "./deps.ts";
import { envelopeSources } from "./envelopes.ts";
import { AllTracksFailedError } from "./track-failures.ts";

export async function planSpeech(input: PlanSpeechInput, deps: StepDeps): Promise<SpeechPlan> {
  // a track whose preparation failed is left out of the plan and carried as failed
  const { ok: prepared, failed } = splitJoinOutput(input.prepared, PreparedTrack, input.expected_tracks, "prepare_track");
  if (prepared.length === 0) throw new AllTracksFailedError(failed);
  const envelopes = await envelopeSources(deps.storage, prepared);
  const spans = await planSpeechSpans(envelopes, { bleedDb: deps.bleedThresholdDb });
  const tracks = prepared.map((p) => ({ ...p, spans: spans.get(p.track_index) ?? [] }));
  const r3 = (x: number): number => Math.round(x * 1000) / 1000;
  return {
    duration: r3(Math.max(...prepared.map((p) => p.offset_seconds + p.duration_seconds))),
    tracks,
    track_seconds: r3(prepared.reduce((s, p) => s + p.duration_seconds, 0)),
    planned_seconds: r3(tracks.reduce((s, t) => s + totalSeconds(t.spans), 0)),
    failed_tracks: failed,
  };
}
