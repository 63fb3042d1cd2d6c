// PLACEHOLDER — replaced by the step's owner. Do not build on this body.
import type { MixdownInput, MixdownOutput } from "../contracts/index.ts";
import type { StepDeps } from "./deps.ts";

export async function mixdown(input: MixdownInput, deps: StepDeps): Promise<MixdownOutput> {
  void input;
  void deps;
  throw new Error("step mixdown is being written");
}
