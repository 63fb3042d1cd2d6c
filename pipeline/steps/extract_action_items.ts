/**
 * extract_action_items: the transcript's words → what participants said would be done
 * (text, owner = the speaker who said it, start of the sentence), by the injected text model.
 * No words → no items.
 */
import type { ExtractActionItemsInput, ExtractActionItemsOutput } from "../contracts/index.ts";
import type { StepDeps } from "./deps.ts";

export async function extractActionItems(input: ExtractActionItemsInput, deps: StepDeps): Promise<ExtractActionItemsOutput> {
  const action_items = await deps.text.extractActionItems(input.words, input.language);
  deps.log?.debug({ step: "extract_action_items", engine: deps.text.name, words: input.words.length, action_items: action_items.length }, "action items extracted");
  return { action_items };
}
