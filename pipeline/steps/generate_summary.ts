/** generate_summary: topics → a short (1–2 sentences) and a long (per topic) summary, by the injected text model. */
import type { GenerateSummaryInput, GenerateSummaryOutput } from "../contracts/index.ts";
import type { StepDeps } from "./deps.ts";

export async function generateSummary(input: GenerateSummaryInput, deps: StepDeps): Promise<GenerateSummaryOutput> {
  const { short_summary, long_summary } = await deps.text.generateSummary(input.topics, input.language);
  return { short_summary, long_summary };
}
