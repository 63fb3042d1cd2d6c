/**
 * detect_topics: the transcript's words → consecutive topics (id `topic-N`, title,
 * summary, start, length and the topic's own words), by the injected text model.
 * No words → no topics.
 */
import type { DetectTopicsInput, DetectTopicsOutput } from "../contracts/index.ts";
import type { StepDeps } from "./deps.ts";

export async function detectTopics(input: DetectTopicsInput, deps: StepDeps): Promise<DetectTopicsOutput> {
  const topics = await deps.text.detectTopics(input.words, input.language);
  deps.log?.debug({ step: "detect_topics", engine: deps.text.name, words: input.words.length, topics: topics.length }, "topics detected");
  return { topics };
}
