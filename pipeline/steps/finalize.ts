/**
 * finalize: assemble the Result from the pipeline's parts, validate it, and hand it to the
 * result sink (Postgres in the service; none for a CLI run). Idempotent: the sink upserts.
 */
import { Result, type FinalizeInput } from "../contracts/index.ts";
import type { StepDeps } from "./deps.ts";

export function assembleResult(input: FinalizeInput): Result {
  const participants = [...input.tracks]
    .sort((a, b) => a.track_index - b.track_index)
    .map((t) => ({ speaker: t.track_index, name: t.participant }));
  const outcome = new Map((input.track_status ?? []).map((o) => [o.track_index, o]));
  const tracks = participants.map((p) => {
    const o = outcome.get(p.speaker);
    return o?.status === "failed" && o.failed ? { ...p, status: "failed" as const, error: o.failed } : { ...p, status: "ok" as const };
  });
  return Result.parse({
    duration: input.duration,
    participants,
    words: input.words,
    topics: input.topics,
    title: input.title,
    short_summary: input.short_summary,
    long_summary: input.long_summary,
    action_items: input.action_items,
    tracks,
  });
}

export async function finalize(input: FinalizeInput, deps: StepDeps): Promise<Result> {
  const result = assembleResult(input);
  if (deps.results) await deps.results.saveResult(input.recording_id, input.namespace, result, { audio_key: input.audio_key, waveform: input.waveform });
  return result;
}
