/**
 * The pipeline's progress: one row per step (per-track steps show each track), with its
 * status and duration, in the pipeline's order as far as it is known here; steps this page
 * does not know yet still appear, after the others.
 */
import type { StepProgress } from "../api/client";
import { duration } from "../lib/transcript";

/** display order only (the API's graph is the source of truth for what runs) */
const ORDER = [
  "plan_tracks",
  "prepare_track",
  "plan_speech",
  "transcribe_track",
  "merge_transcripts",
  "suppress_bleed",
  "detect_topics",
  "generate_title",
  "generate_summary",
  "extract_action_items",
  "mixdown",
  "finalize",
];

const ICON: Record<string, string> = { succeeded: "✓", failed: "✗", started: "…", retrying: "↻" };

export interface StepsViewProps {
  steps: readonly StepProgress[];
  participants: readonly string[];
}

export function StepsView({ steps, participants }: StepsViewProps) {
  const byStep = new Map<string, StepProgress[]>();
  for (const s of steps) {
    if (s.step === "pipeline") continue;
    byStep.set(s.step, [...(byStep.get(s.step) ?? []), s]);
  }
  const names = [...byStep.keys()].sort((a, b) => rank(a) - rank(b));
  const pending = ORDER.filter((s) => !byStep.has(s));
  return (
    <ol className="steps" aria-label="Pipeline steps">
      {names.map((name) => {
        const runs = byStep.get(name)!.sort((a, b) => (a.track_index ?? -1) - (b.track_index ?? -1));
        return (
          <li key={name} className={`step ${stateOf(runs)}`} data-step={name}>
            <span className="step-name">{name}</span>
            <ul className="step-runs">
              {runs.map((r) => (
                <li key={`${r.track_index}`} className={`run ${r.status}`} data-status={r.status}>
                  <span aria-hidden="true">{ICON[r.status] ?? "·"}</span>{" "}
                  {r.track_index !== null && <span>{participants[r.track_index] ?? `track ${r.track_index + 1}`}: </span>}
                  <span>{r.status}</span>
                  {r.duration_ms !== null && <span className="muted"> {duration(r.duration_ms)}</span>}
                  {r.attempts > 1 && <span className="muted"> (attempt {r.attempts})</span>}
                  {r.message && r.status !== "succeeded" && <span className="error-text"> {r.message}</span>}
                </li>
              ))}
            </ul>
          </li>
        );
      })}
      {pending.map((name) => (
        <li key={name} className="step pending" data-step={name}>
          <span className="step-name">{name}</span>
          <ul className="step-runs">
            <li className="run waiting muted">waiting</li>
          </ul>
        </li>
      ))}
    </ol>
  );
}

/** one word for a step's runs: failed if any failed, running while any runs, done when all succeeded */
const stateOf = (runs: readonly StepProgress[]): string =>
  runs.some((r) => r.status === "failed") ? "failed" : runs.some((r) => r.status === "started" || r.status === "retrying") ? "running" : runs.every((r) => r.status === "succeeded") ? "done" : "";

const rank = (step: string): number => {
  const i = ORDER.indexOf(step);
  return i < 0 ? ORDER.length : i;
};
