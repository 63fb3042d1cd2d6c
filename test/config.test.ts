import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError, knownVariables, loadConfig, prepareConcurrency, transcribeConcurrency } from "../pipeline/config.ts";

test("defaults give a usable config", () => {
  const c = loadConfig({});
  assert.equal(c.ASR_ENGINE, "pocketsphinx");
  assert.equal(c.SHADOW_MODE, "off");
  assert.equal(c.suspiciousFastMs.transcribe_track, 200);
});

test("every invalid variable is named in one error", () => {
  assert.throws(
    () => loadConfig({ PORT: "http", SHADOW_SAMPLE_RATE: "2", ASR_ENGINE: "openai" }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      const vars = err.problems.map((p) => p.variable).sort();
      assert.deepEqual(vars, ["PORT", "SHADOW_SAMPLE_RATE"]);
      assert.match(err.message, /PORT/);
      return true;
    },
  );
  assert.throws(() => loadConfig({ ASR_ENGINE: "openai" }), /ASR_URL: required when ASR_ENGINE=openai/);
  assert.throws(() => loadConfig({ SUSPICIOUS_FAST_MS: "transcribe=fast" }), /SUSPICIOUS_FAST_MS/);
});

test("empty strings count as unset, booleans parse", () => {
  const c = loadConfig({ API_TOKEN: "", RECONCILER_ENABLED: "false" });
  assert.equal(c.API_TOKEN, undefined);
  assert.equal(c.RECONCILER_ENABLED, false);
  assert.ok(knownVariables().includes("CONDUCTOR_SERVER_URL"));
});

test("held-poll settings: defaults on with a 1 s slice; a bad switch or a slice under 5 ms is refused by name", () => {
  const c = loadConfig({});
  assert.equal(c.CONDUCTOR_HELD_POLLS, true);
  assert.equal(c.CONDUCTOR_POLL_SLICE_MS, 1000);
  assert.equal(loadConfig({ CONDUCTOR_HELD_POLLS: "off" }).CONDUCTOR_HELD_POLLS, false);
  assert.throws(
    () => loadConfig({ CONDUCTOR_HELD_POLLS: "maybe", CONDUCTOR_POLL_SLICE_MS: "0" }),
    (e: unknown) => e instanceof ConfigError && /CONDUCTOR_HELD_POLLS/.test(e.message) && /CONDUCTOR_POLL_SLICE_MS.*>=5/.test(e.message),
  );
});

test("every variable belongs to exactly one config section, and a section holds only its own", async () => {
  const { CONFIG_SECTIONS, configSection } = await import("../pipeline/config.ts");
  const all = Object.values(CONFIG_SECTIONS).flat() as string[];
  assert.deepEqual([...all].sort(), knownVariables().sort());
  assert.equal(new Set(all).size, all.length, "no variable in two sections");
  const c = loadConfig({ STORAGE_DRIVER: "s3", S3_ENDPOINT: "http://127.0.0.1:9", API_TOKEN: "operator-token-0123456789" });
  const storage = configSection(c, "storage");
  assert.equal(storage.S3_ENDPOINT, "http://127.0.0.1:9");
  assert.ok(!("API_TOKEN" in storage) && !("DATABASE_URL" in storage), "the storage section holds no other layer's variables");
});

test("every track of a meeting can wait in one worker's decoder queue: transcribe_track's default concurrency is MAX_TRACKS; prepare_track stays at the decoders + 1", () => {
  const c = loadConfig({ ASR_CONCURRENCY: "2", WORKER_CONCURRENCY: "2", MAX_TRACKS: "12" });
  assert.equal(transcribeConcurrency(c), 12);
  assert.equal(prepareConcurrency(c), 3);
  assert.equal(transcribeConcurrency(loadConfig({ ASR_CONCURRENCY: "2", MAX_TRACKS: "12", TRANSCRIBE_CONCURRENCY: "4" })), 4, "an explicit value wins");
  assert.equal(transcribeConcurrency(loadConfig({ ASR_CONCURRENCY: "20", MAX_TRACKS: "4" })), 21, "never fewer than the decoders + 1");
});
