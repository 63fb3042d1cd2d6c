// PLACEHOLDER — replaced by the step's owner. Do not build on this body.
import type { GenerateSummaryInput, GenerateSummaryOutput } from "../contracts/index.ts";
import type { StepDeps } from "./deps.ts";

export async function generateSummary(input: GenerateSummaryInput, deps: StepDeps): Promise<GenerateSummaryOutput> {
  void input;
  void deps;
  throw new Error("step generate_summary is being written");
}
