// PLACEHOLDER — replaced by the step's owner. Do not build on this body.
import type { PlanSpeechInput, SpeechPlan } from "../contracts/index.ts";
import type { StepDeps } from "./deps.ts";

export async function planSpeech(input: PlanSpeechInput, deps: StepDeps): Promise<SpeechPlan> {
  void input;
  void deps;
  throw new Error("step plan_speech is being written");
}
