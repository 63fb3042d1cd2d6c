/**
 * Text models behind the `TextModel` port: `offline` (default; natural + stopword, no
 * network) and `openai` (any OpenAI-compatible chat endpoint), chosen by TEXT_ENGINE.
 */
import type { Logger } from "pino";
import type { Config } from "../../pipeline/config.ts";
import type { TextModel } from "../../pipeline/ports.ts";
import { createChatTextModel } from "./openai.ts";
import { createOfflineTextModel } from "../../pipeline/nlp/offline.ts";

export { createOfflineTextModel, EMPTY_SUMMARY, EMPTY_TITLE } from "../../pipeline/nlp/offline.ts";
export { createChatTextModel, LlmError } from "./openai.ts";

export type TextModelConfig = Pick<Config, "TEXT_ENGINE" | "LLM_URL" | "LLM_MODEL" | "LLM_API_KEY" | "LLM_TIMEOUT_SECONDS" | "LLM_MAX_ATTEMPTS">;

export function createTextModel(config: TextModelConfig, deps: { log?: Logger; fetch?: typeof fetch } = {}): TextModel {
  if (config.TEXT_ENGINE === "openai") {
    if (!config.LLM_URL) throw new Error("TEXT_ENGINE=openai needs LLM_URL");
    return createChatTextModel({
      url: config.LLM_URL,
      model: config.LLM_MODEL,
      apiKey: config.LLM_API_KEY,
      timeoutMs: config.LLM_TIMEOUT_SECONDS * 1000,
      maxAttempts: config.LLM_MAX_ATTEMPTS,
      log: deps.log,
      fetch: deps.fetch,
    });
  }
  return createOfflineTextModel();
}
