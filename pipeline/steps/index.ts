/**
 * The step table: name → input schema, output schema, function. Every adapter (in-process
 * runner, Conductor workers, BullMQ workers) iterates over this table, parses the input,
 * runs the function and validates the output, so all engines run identical logic.
 */
import type { z } from "zod/v4";
import * as C from "../contracts/index.ts";
import type { StepDeps } from "./deps.ts";
import { prepareTrack } from "./prepare_track.ts";
import { planSpeech } from "./plan_speech.ts";
import { transcribeTrack } from "./transcribe_track.ts";
import { mergeTranscripts } from "./merge_transcripts.ts";
import { suppressBleed } from "./suppress_bleed.ts";
import { detectTopics } from "./detect_topics.ts";
import { generateTitle } from "./generate_title.ts";
import { generateSummary } from "./generate_summary.ts";
import { extractActionItems } from "./extract_action_items.ts";
import { mixdown } from "./mixdown.ts";
import { finalize } from "./finalize.ts";

export interface StepDefinition<I extends z.ZodType, O extends z.ZodType> {
  name: C.StepName;
  input: I;
  output: O;
  /** heavy steps (audio decoding, ASR) are run in a child process by the workers */
  heavy: boolean;
  run(input: z.infer<I>, deps: StepDeps): Promise<z.infer<O>>;
}

function step<I extends z.ZodType, O extends z.ZodType>(d: StepDefinition<I, O>): StepDefinition<I, O> {
  return d;
}

export const steps = {
  prepare_track: step({ name: "prepare_track", input: C.PrepareTrackInput, output: C.PreparedTrack, heavy: true, run: prepareTrack }),
  plan_speech: step({ name: "plan_speech", input: C.PlanSpeechInput, output: C.SpeechPlan, heavy: false, run: planSpeech }),
  transcribe_track: step({ name: "transcribe_track", input: C.TranscribeTrackInput, output: C.TranscribeTrackOutput, heavy: true, run: transcribeTrack }),
  merge_transcripts: step({ name: "merge_transcripts", input: C.MergeTranscriptsInput, output: C.MergeTranscriptsOutput, heavy: false, run: mergeTranscripts }),
  suppress_bleed: step({ name: "suppress_bleed", input: C.SuppressBleedInput, output: C.SuppressBleedOutput, heavy: false, run: suppressBleed }),
  detect_topics: step({ name: "detect_topics", input: C.DetectTopicsInput, output: C.DetectTopicsOutput, heavy: false, run: detectTopics }),
  generate_title: step({ name: "generate_title", input: C.GenerateTitleInput, output: C.GenerateTitleOutput, heavy: false, run: generateTitle }),
  generate_summary: step({ name: "generate_summary", input: C.GenerateSummaryInput, output: C.GenerateSummaryOutput, heavy: false, run: generateSummary }),
  extract_action_items: step({ name: "extract_action_items", input: C.ExtractActionItemsInput, output: C.ExtractActionItemsOutput, heavy: false, run: extractActionItems }),
  mixdown: step({ name: "mixdown", input: C.MixdownInput, output: C.MixdownOutput, heavy: true, run: mixdown }),
  finalize: step({ name: "finalize", input: C.FinalizeInput, output: C.Result, heavy: false, run: finalize }),
} as const satisfies { readonly [K in C.StepName]: StepDefinition<C.StepContracts[K]["input"], C.StepContracts[K]["output"]> };

export type StepTable = typeof steps;
export type { StepDeps } from "./deps.ts";

/** Parse the input, run the step, validate the output: the one way any adapter runs a step. */
export async function runStep<K extends keyof StepTable>(
  name: K,
  rawInput: unknown,
  deps: StepDeps,
): Promise<z.infer<StepTable[K]["output"]>> {
  const def = steps[name] as unknown as StepDefinition<z.ZodType, z.ZodType>;
  const parsed = def.input.safeParse(rawInput);
  if (!parsed.success) throw new StepInputError(name, parsed.error);
  const out = await def.run(parsed.data, deps);
  const checked = def.output.safeParse(out);
  if (!checked.success) throw new StepOutputError(name, checked.error);
  return checked.data as z.infer<StepTable[K]["output"]>;
}

const describeIssues = (e: z.ZodError): string =>
  e.issues.map((i) => `${i.path.length ? i.path.join(".") : "(root)"}: ${i.message}`).join("; ");

/** Invalid input is terminal: retrying cannot fix it. */
export class StepInputError extends Error {
  override readonly name = "StepInputError";
  readonly retryable = false;
  constructor(readonly step: string, readonly zodError: z.ZodError) {
    super(`invalid input for ${step}: ${describeIssues(zodError)}`);
  }
}

export class StepOutputError extends Error {
  override readonly name = "StepOutputError";
  readonly retryable = false;
  constructor(readonly step: string, readonly zodError: z.ZodError) {
    super(`invalid output from ${step}: ${describeIssues(zodError)}`);
  }
}
