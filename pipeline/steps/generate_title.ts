/** generate_title: topics → one non-empty title for the meeting, by the injected text model. */
import type { GenerateTitleInput, GenerateTitleOutput } from "../contracts/index.ts";
import type { StepDeps } from "./deps.ts";

export async function generateTitle(input: GenerateTitleInput, deps: StepDeps): Promise<GenerateTitleOutput> {
  const title = (await deps.text.generateTitle(input.topics, input.language)).trim();
  if (!title) throw new Error(`text model '${deps.text.name}' returned an empty title`);
  return { title };
}
