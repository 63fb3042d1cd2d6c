// PLACEHOLDER — replaced by the step's owner. Do not build on this body.
import type { GenerateTitleInput, GenerateTitleOutput } from "../contracts/index.ts";
import type { StepDeps } from "./deps.ts";

export async function generateTitle(input: GenerateTitleInput, deps: StepDeps): Promise<GenerateTitleOutput> {
  void input;
  void deps;
  throw new Error("step generate_title is being written");
}
