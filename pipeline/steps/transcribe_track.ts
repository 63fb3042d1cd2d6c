// PLACEHOLDER — replaced by the step's owner. Do not build on this body.
import type { TranscribeTrackInput, TranscribeTrackOutput } from "../contracts/index.ts";
import type { StepDeps } from "./deps.ts";

export async function transcribeTrack(input: TranscribeTrackInput, deps: StepDeps): Promise<TranscribeTrackOutput> {
  void input;
  void deps;
  throw new Error("step transcribe_track is being written");
}
