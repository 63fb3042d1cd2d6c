/** Shadow sampling is deterministic per recording; the compare table names step, track, check and words. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { compareRuns } from "../../server/shadow/compare.ts";
import { formatReport } from "../../server/shadow/format.ts";
import { sampleFraction, shouldShadow } from "../../server/shadow/runner.ts";
import { parsePerturbation, perturbOutput } from "../../workers/bullmq/worker-host.ts";
import { asPrimary, perturbTrack, runToEnd } from "./runs.ts";

test("sampling is off by default, all-or-nothing at 1 and 0, and close to the rate in between, always the same per id", () => {
  const ids = Array.from({ length: 2000 }, (_, i) => `rec-${i}-${(i * 7919) % 1000}`);
  assert.equal(ids.filter((id) => shouldShadow({ SHADOW_MODE: "off", SHADOW_SAMPLE_RATE: 1 }, id)).length, 0);
  assert.equal(ids.filter((id) => shouldShadow({ SHADOW_MODE: "bullmq", SHADOW_SAMPLE_RATE: 1 }, id)).length, 2000);
  assert.equal(ids.filter((id) => shouldShadow({ SHADOW_MODE: "bullmq", SHADOW_SAMPLE_RATE: 0 }, id)).length, 0);
  const quarter = ids.filter((id) => shouldShadow({ SHADOW_MODE: "bullmq", SHADOW_SAMPLE_RATE: 0.25 }, id)).length;
  assert.ok(quarter > 400 && quarter < 600, `${quarter} of 2000 sampled at 0.25`);
  assert.equal(sampleFraction("rec-42"), sampleFraction("rec-42"));
});

test("the perturbation switch works only under NODE_ENV=test and replaces the first word", () => {
  assert.equal(parsePerturbation("transcribe_track:1", "production"), null);
  assert.equal(parsePerturbation(undefined, "test"), null);
  assert.deepEqual(parsePerturbation("transcribe_track:1", "test"), { step: "transcribe_track", track_index: 1 });
  assert.deepEqual(parsePerturbation("merge_transcripts", "test"), { step: "merge_transcripts" });
  assert.throws(() => parsePerturbation("nope:1", "test"), /unknown step 'nope'/);
  const out = perturbOutput({ track_index: 1, words: [{ text: "hello" }, { text: "world" }] });
  assert.deepEqual(out, { track_index: 1, words: [{ text: "perturbed" }, { text: "world" }] });
  assert.deepEqual(perturbOutput({ title: "x" }), { title: "x" });
});

test("the compare table names the step, the track, the check and the words that differ", () => {
  const report = compareRuns(asPrimary(runToEnd()), runToEnd(perturbTrack(1)), { werTolerance: 0, timeToleranceSeconds: 0.05, ignore: [], waveformTolerance: 0.02 });
  const text = formatReport(report);
  assert.match(text, /^Shadow comparison: MISMATCHED {2}\(\d+ matched, 4 mismatched, \d+ ignored\)/);
  const row = text.split("\n").find((l) => l.startsWith("transcribe_track") && l.includes("MISMATCH"));
  assert.ok(row, text);
  assert.match(row, /^transcribe_track\s+1\s+words\s+MISMATCH\s+track 1: 2 vs 2 words, WER 50\.0% .*"hello1"→"perturbed"/);
  assert.match(text, /STEP\s+TRACK\s+CONDUCTOR ms\s+BULLMQ ms\s+bullmq\/conductor\s+ATTEMPTS/);
  const only = formatReport(report, { onlyMismatches: true });
  assert.equal(only.split("\n").filter((l) => /\sMISMATCH\s/.test(l)).length, 4);
  assert.ok(!only.includes("CONDUCTOR ms"));
});
