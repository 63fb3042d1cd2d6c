/** Engine snapshots from complete runs of the real state machine (test data for the comparison). */
import assert from "node:assert/strict";
import type { TranscribeTrackOutput } from "../../pipeline/contracts/index.ts";
import { bullmqSnapshot } from "../../server/shadow/snapshots.ts";
import type { EngineSnapshot } from "../../server/shadow/compare.ts";
import { Driver } from "../state/driver.ts";
import { outputFor } from "../state/outputs.ts";

/** A complete run through the real state machine; `alter` may change one task's output. */
export function runToEnd(alter: (key: string, output: unknown) => unknown = (_k, o) => o): EngineSnapshot {
  const d = new Driver();
  d.accept(2);
  const order = [
    "prepare_track[0]",
    "prepare_track[1]",
    "plan_speech",
    "transcribe_track[0]",
    "transcribe_track[1]",
    "merge_transcripts",
    "suppress_bleed",
    "detect_topics",
    "generate_title",
    "generate_summary",
    "extract_action_items",
    "mixdown",
    "finalize",
  ];
  for (const key of order) d.ok(key, { output: alter(key, outputFor(d.run(key))) });
  assert.equal(d.state.status, "succeeded");
  return bullmqSnapshot(d.state, "run-b");
}
export const asPrimary = (s: EngineSnapshot): EngineSnapshot => ({ ...s, engine: "conductor", run_id: "wf-1" });

/** The alteration SHADOW_TEST_PERTURB makes: the first word of one track's transcript. */
export const perturbTrack = (track: number) => (key: string, o: unknown): unknown => {
  if (key !== `transcribe_track[${track}]`) return o;
  const t = o as TranscribeTrackOutput;
  return { ...t, words: [{ ...t.words[0]!, text: "perturbed" }, ...t.words.slice(1)] };
};
