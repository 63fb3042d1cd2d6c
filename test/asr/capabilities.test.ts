/**
 * ASR engine capabilities: what the shells read instead of an engine's name. The config
 * alone (what a worker host has) says the same as the engine built from it (what the
 * child that transcribes has).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { asrCapabilities, createAsrEngine } from "../../adapters/asr/index.ts";
import { loadConfig } from "../../pipeline/config.ts";
import { childStepRunnerOptions } from "../../workers/child/runner.ts";

const cases = [
  { env: {}, want: { preload: true, sharedChild: true }, why: "pocketsphinx, decoders kept loaded (the default)" },
  { env: { ASR_IDLE_SECONDS: "60" }, want: { preload: false, sharedChild: true }, why: "pocketsphinx, decoders exit when idle" },
  { env: { ASR_ENGINE: "openai", ASR_URL: "http://127.0.0.1:9/" }, want: { preload: false, sharedChild: true }, why: "HTTP engine: nothing to load" },
];

for (const c of cases) {
  test(`capabilities from the config match the engine built from it: ${c.why}`, async () => {
    const config = loadConfig(c.env);
    assert.deepEqual(asrCapabilities(config), c.want);
    const engine = createAsrEngine(config);
    try {
      assert.deepEqual(engine.capabilities, c.want);
    } finally {
      await engine.close?.();
    }
  });
}

test("an engine without ASR_IDLE_SECONDS (the pool's 15 s default) is not preloaded", () => {
  assert.deepEqual(asrCapabilities({ ASR_ENGINE: "pocketsphinx" }), { preload: false, sharedChild: true });
});

test("the heavy-step runner shares one child for transcribe_track when the engine declares sharedChild", () => {
  assert.deepEqual(childStepRunnerOptions(loadConfig({})).sharedSteps, ["transcribe_track"]);
});
