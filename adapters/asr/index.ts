/** Chooses the ASR engine from the config: pocketsphinx (offline default) or OpenAI-compatible HTTP. */
import type { Config } from "../../pipeline/config.ts";
import type { AsrCapabilities, AsrEngine } from "../../pipeline/ports.ts";
import { createOpenAiAsrEngine, OPENAI_ASR_CAPABILITIES } from "./openai.ts";
import { createPocketsphinxEngine, pocketsphinxCapabilities } from "./pocketsphinx.ts";

export { AsrError, createPocketsphinxEngine, parseCtm, pocketsphinxCapabilities } from "./pocketsphinx.ts";
export { createOpenAiAsrEngine, OPENAI_ASR_CAPABILITIES } from "./openai.ts";

type AsrConfig = Pick<Config, "ASR_ENGINE" | "ASR_URL" | "ASR_API_KEY" | "ASR_MODEL" | "POCKETSPHINX_HMM" | "POCKETSPHINX_DICT" | "POCKETSPHINX_LM"> &
  Partial<Pick<Config, "ASR_CONCURRENCY" | "ASR_IDLE_SECONDS" | "POCKETSPHINX_PRUNE_DICT" | "ASR_HTTP_CONCURRENCY" | "ASR_HTTP_MAX_ATTEMPTS" | "ASR_HTTP_TIMEOUT_SECONDS">>;

/** ASR_IDLE_SECONDS as the decoder pool's idle limit: 0 keeps decoders loaded. */
const idleMsOf = (config: Partial<Pick<Config, "ASR_IDLE_SECONDS">>): number | undefined =>
  config.ASR_IDLE_SECONDS === undefined ? undefined : config.ASR_IDLE_SECONDS > 0 ? config.ASR_IDLE_SECONDS * 1000 : Infinity;

/**
 * The capabilities of the engine `createAsrEngine(config)` would build, without building
 * it: for the shells, which decide (preload, a shared child) in a process that never
 * creates the engine.
 */
export function asrCapabilities(config: Pick<Config, "ASR_ENGINE"> & Partial<Pick<Config, "ASR_IDLE_SECONDS">>): AsrCapabilities {
  return config.ASR_ENGINE === "openai" ? OPENAI_ASR_CAPABILITIES : pocketsphinxCapabilities(idleMsOf(config));
}

export function createAsrEngine(config: AsrConfig): AsrEngine {
  if (config.ASR_ENGINE === "openai") {
    if (!config.ASR_URL) throw new Error("ASR_URL is required when ASR_ENGINE=openai");
    return createOpenAiAsrEngine({
      url: config.ASR_URL,
      ...(config.ASR_API_KEY ? { apiKey: config.ASR_API_KEY } : {}),
      model: config.ASR_MODEL,
      ...(config.ASR_HTTP_CONCURRENCY ? { concurrency: config.ASR_HTTP_CONCURRENCY } : {}),
      ...(config.ASR_HTTP_MAX_ATTEMPTS ? { maxAttempts: config.ASR_HTTP_MAX_ATTEMPTS } : {}),
      ...(config.ASR_HTTP_TIMEOUT_SECONDS ? { timeoutMs: config.ASR_HTTP_TIMEOUT_SECONDS * 1000 } : {}),
    });
  }
  const idleMs = idleMsOf(config);
  return createPocketsphinxEngine({
    hmm: config.POCKETSPHINX_HMM,
    dict: config.POCKETSPHINX_DICT,
    lm: config.POCKETSPHINX_LM,
    ...(idleMs !== undefined ? { idleMs } : {}),
    ...(config.POCKETSPHINX_PRUNE_DICT !== undefined ? { pruneDict: config.POCKETSPHINX_PRUNE_DICT } : {}),
    ...(config.ASR_CONCURRENCY ? { concurrency: config.ASR_CONCURRENCY } : {}),
  });
}
