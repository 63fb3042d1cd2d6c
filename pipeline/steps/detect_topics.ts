// PLACEHOLDER — replaced by the step's owner. Do not build on this body.
import type { DetectTopicsInput, DetectTopicsOutput } from "../contracts/index.ts";
import type { StepDeps } from "./deps.ts";

export async function detectTopics(input: DetectTopicsInput, deps: StepDeps): Promise<DetectTopicsOutput> {
  void input;
  void deps;
  throw new Error("step detect_topics is being written");
}
