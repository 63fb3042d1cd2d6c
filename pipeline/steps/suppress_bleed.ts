// PLACEHOLDER — replaced by the step's owner. Do not build on this body.
import type { SuppressBleedInput, SuppressBleedOutput } from "../contracts/index.ts";
import type { StepDeps } from "./deps.ts";

export async function suppressBleed(input: SuppressBleedInput, deps: StepDeps): Promise<SuppressBleedOutput> {
  void input;
  void deps;
  throw new Error("step suppress_bleed is being written");
}
