/** Chooses the ASR engine from the config: pocketsphinx (offline default) or OpenAI-compatible HTTP. */
import type { Config } from "../config.ts";
import type { AsrEngine } from "../ports.ts";
import { createOpenAiAsrEngine } from "./openai.ts";
import { createPocketsphinxEngine } from "./pocketsphinx.ts";

export { AsrError, createPocketsphinxEngine, parseCtm } from "./pocketsphinx.ts";
export { createOpenAiAsrEngine } from "./openai.ts";

export function createAsrEngine(config: Pick<Config, "ASR_ENGINE" | "ASR_URL" | "ASR_API_KEY" | "ASR_MODEL" | "POCKETSPHINX_HMM" | "POCKETSPHINX_DICT" | "POCKETSPHINX_LM"> & Partial<Pick<Config, "ASR_CONCURRENCY" | "ASR_IDLE_SECONDS" | "POCKETSPHINX_PRUNE_DICT">>): AsrEngine {
  if (config.ASR_ENGINE === "openai") {
    if (!config.ASR_URL) throw new Error("ASR_URL is required when ASR_ENGINE=openai");
    return createOpenAiAsrEngine({ url: config.ASR_URL, apiKey: config.ASR_API_KEY, model: config.ASR_MODEL });
  }
  return createPocketsphinxEngine({
    hmm: config.POCKETSPHINX_HMM,
    dict: config.POCKETSPHINX_DICT,
    lm: config.POCKETSPHINX_LM,
    ...(config.ASR_IDLE_SECONDS !== undefined ? { idleMs: config.ASR_IDLE_SECONDS > 0 ? config.ASR_IDLE_SECONDS * 1000 : Infinity } : {}),
    ...(config.POCKETSPHINX_PRUNE_DICT !== undefined ? { pruneDict: config.POCKETSPHINX_PRUNE_DICT } : {}),
    ...(config.ASR_CONCURRENCY ? { concurrency: config.ASR_CONCURRENCY } : {}),
  });
}
