// PLACEHOLDER — replaced by the step's owner. Do not build on this body.
import type { PrepareTrackInput, PreparedTrack } from "../contracts/index.ts";
import type { StepDeps } from "./deps.ts";

export async function prepareTrack(input: PrepareTrackInput, deps: StepDeps): Promise<PreparedTrack> {
  void input;
  void deps;
  throw new Error("step prepare_track is being written");
}
