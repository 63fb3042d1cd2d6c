/**
 * A recording's run cut into the same phases for both engines, so bench:conductor can say
 * where the Conductor run spends its extra time: in the steps themselves (prepare,
 * transcription, mixdown…) or between them (hand-offs and JOIN waits).
 */
export interface StepSpan {
  /** step name without its track index (prepare_track, transcribe_track, …) */
  step: string;
  /** ms from the run's start */
  start: number;
  end: number;
}

export const PHASES = [
  "start → first prepare",
  "prepare (all tracks)",
  "→ plan_speech",
  "plan_speech",
  "→ transcription",
  "transcription (all tracks)",
  "→ merge",
  "merge → topics",
  "→ title ∥ summary ∥ actions ∥ mixdown",
  "title ∥ summary ∥ actions ∥ mixdown",
  "→ finalize",
  "finalize",
  "finalize → end",
] as const;

/** ms per phase (NaN where a step is missing); `end` is the run's end, ms from its start */
export function phaseDurations(spans: readonly StepSpan[], end: number): number[] {
  const of = (names: readonly string[]): StepSpan[] => spans.filter((s) => names.includes(s.step));
  const first = (names: readonly string[]): number => Math.min(...of(names).map((s) => s.start));
  const last = (names: readonly string[]): number => Math.max(...of(names).map((s) => s.end));
  const P = ["prepare_track"];
  const S = ["plan_speech"];
  const T = ["transcribe_track"];
  const M = ["merge_transcripts"];
  const D = ["detect_topics"];
  const F = ["generate_title", "generate_summary", "extract_action_items", "mixdown"];
  const Z = ["finalize"];
  const marks = [0, first(P), last(P), first(S), last(S), first(T), last(T), first(M), last(D), first(F), last(F), first(Z), last(Z), end];
  const out: number[] = [];
  for (let i = 1; i < marks.length; i++) {
    const d = marks[i]! - marks[i - 1]!;
    out.push(Number.isFinite(d) ? d : Number.NaN);
  }
  return out;
}
