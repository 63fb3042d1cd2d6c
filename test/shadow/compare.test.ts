/** Shadow comparison, pure: snapshots built from real state-machine runs, compared per step and per track. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { alignWords } from "../../server/shadow/align.ts";
import { COMPARATORS, compareRuns, ruleMatches, type CompareRules, type EngineSnapshot } from "../../server/shadow/compare.ts";
import { bullmqSnapshot, conductorSnapshot, type ConductorWorkflowJson } from "../../server/shadow/snapshots.ts";
import { Driver } from "../state/driver.ts";
import { asPrimary, perturbTrack, runToEnd } from "./runs.ts";
import { StepName, type ActionItem, type Word } from "../../pipeline/contracts/index.ts";

const rules: CompareRules = { werTolerance: 0, timeToleranceSeconds: 0.05, ignore: [], waveformTolerance: 0.02 };

const items = (r: ReturnType<typeof compareRuns>, cls: string) => r.items.filter((i) => i.classification === cls);

test("word alignment counts substitutions, insertions and deletions and ignores case and punctuation", () => {
  const w = (s: string) => s.split(" ").filter(Boolean);
  const a = alignWords(w("the cat sat on the mat"), w("The cat sat in the mat today."), (x) => x);
  assert.deepEqual([a.substitutions, a.deletions, a.insertions], [1, 0, 1]);
  assert.equal(a.wer, 2 / 6);
  assert.deepEqual(a.ops.filter((o) => o.op !== "equal"), [
    { op: "sub", ref: "on", hyp: "in" },
    { op: "ins", hyp: "today." },
  ]);
  assert.equal(alignWords([], [], (x: string) => x).wer, 0);
  assert.equal(alignWords([], ["x"], (x: string) => x).wer, 1);
  const gone = alignWords(w("a b c"), [], (x) => x);
  assert.deepEqual([gone.deletions, gone.wer], [3, 1]);
});

test("word alignment scales to hour-long transcripts that differ in a few words", () => {
  const ref = Array.from({ length: 12000 }, (_, i) => `w${i % 997}`);
  const hyp = [...ref];
  hyp[100] = "changed";
  hyp.splice(5000, 1);
  hyp.splice(9000, 0, "extra");
  const t0 = performance.now();
  const a = alignWords(ref, hyp, (x) => x);
  const ms = performance.now() - t0;
  assert.deepEqual([a.substitutions, a.deletions, a.insertions], [1, 1, 1]);
  assert.ok(ms < 2000, `alignment took ${ms.toFixed(0)} ms`);
});

test("identical runs end matched, with durations recorded per step and track", () => {
  const b = runToEnd();
  const r = compareRuns(asPrimary(b), b, rules);
  assert.equal(r.verdict, "matched");
  assert.equal(r.counts.mismatched, 0);
  assert.ok(r.counts.matched >= 20, `only ${r.counts.matched} matched comparisons`);
  const words = r.items.find((i) => i.step === "transcribe_track" && i.track_index === 1 && i.check === "words")!;
  assert.equal(words.classification, "matched");
  assert.match(words.summary, /track 1: 2 vs 2 words, WER 0\.0%/);
  assert.deepEqual(
    r.durations.map((d) => `${d.step}${d.track_index === null ? "" : `[${d.track_index}]`}`).slice(0, 5),
    ["prepare_track[0]", "prepare_track[1]", "plan_speech", "transcribe_track[0]", "transcribe_track[1]"],
  );
  assert.ok(r.items.filter((i) => i.check === "duration").every((i) => i.classification === "ignored" && i.reason === "informational"));
});

test("a perturbed transcription is a mismatch naming the step, the track and the words", () => {
  const primary = asPrimary(runToEnd());
  const shadow = runToEnd(perturbTrack(1));
  const r = compareRuns(primary, shadow, rules);
  assert.equal(r.verdict, "mismatched");
  const bad = items(r, "mismatched");
  const t1 = bad.find((i) => i.step === "transcribe_track" && i.track_index === 1 && i.check === "words");
  assert.ok(t1, `no transcribe_track[1] words mismatch in ${JSON.stringify(bad.map((i) => [i.step, i.track_index, i.check]))}`);
  assert.match(t1.summary, /track 1: 2 vs 2 words, WER 50\.0% \(1 sub, 0 del, 0 ins\): "hello1"→"perturbed" at 0\.60s/);
  assert.deepEqual((t1.details as { diffs: unknown[] }).diffs, [{ op: "substitution", primary: "hello1", shadow: "perturbed", at: 0.6, speaker: 1 }]);
  // track 0 is untouched; downstream word lists carry the difference
  assert.equal(r.items.find((i) => i.step === "transcribe_track" && i.track_index === 0 && i.check === "words")!.classification, "matched");
  assert.deepEqual(
    bad.map((i) => `${i.step}${i.track_index === null ? "" : `[${i.track_index}]`}:${i.check}`),
    ["transcribe_track[1]:words", "merge_transcripts:words", "suppress_bleed:words", "finalize:words"],
  );
});

test("ignore rules classify matching comparisons as ignored, by check, group, step or step:check", () => {
  assert.ok(ruleMatches("summary", "generate_summary", "summary.short"));
  assert.ok(ruleMatches("mixdown", "mixdown", "audio.waveform"));
  assert.ok(ruleMatches("transcribe_track:words", "transcribe_track", "words"));
  assert.ok(!ruleMatches("transcribe_track:words", "merge_transcripts", "words"));
  assert.ok(!ruleMatches("sum", "generate_summary", "summary.short"));

  const primary = asPrimary(runToEnd());
  const shadow = runToEnd((key, o) => (key === "generate_summary" ? { short_summary: "different", long_summary: "also different" } : o));
  assert.equal(compareRuns(primary, shadow, rules).verdict, "mismatched");
  const r = compareRuns(primary, shadow, { ...rules, ignore: ["summary"] });
  assert.equal(r.verdict, "matched");
  const ignored = items(r, "ignored").filter((i) => i.check.startsWith("summary"));
  assert.deepEqual(ignored.map((i) => [i.check, i.reason]), [
    ["summary.short", "SHADOW_IGNORE rule 'summary'"],
    ["summary.long", "SHADOW_IGNORE rule 'summary'"],
  ]);
});

test("timing beyond the tolerance and speaker disagreements are mismatches; within tolerance they match", () => {
  const primary = asPrimary(runToEnd());
  const shift = (by: number) => (key: string, o: unknown) => {
    if (key !== "merge_transcripts") return o;
    const m = o as { words: Word[] };
    return { ...m, words: m.words.map((w, i) => (i === 0 ? { ...w, start: w.start + by } : w)) };
  };
  const near = compareRuns(primary, runToEnd(shift(0.03)), rules);
  assert.equal(near.items.find((i) => i.step === "merge_transcripts" && i.check === "timing")!.classification, "matched");
  const far = compareRuns(primary, runToEnd(shift(0.2)), rules);
  const timing = far.items.find((i) => i.step === "merge_transcripts" && i.check === "timing")!;
  assert.equal(timing.classification, "mismatched");
  assert.match(timing.summary, /1 of 4 aligned words moved more than 0\.05s: "hello0" 0\.10s–0\.40s vs 0\.30s–0\.40s/);

  const swapped = runToEnd((key, o) => {
    if (key !== "suppress_bleed") return o;
    const s = o as { words: Word[] };
    return { ...s, words: s.words.map((w) => (w.text === "world1" ? { ...w, speaker: 0 } : w)) };
  });
  const sp = compareRuns(primary, swapped, rules).items.find((i) => i.step === "suppress_bleed" && i.check === "speakers")!;
  assert.equal(sp.classification, "mismatched");
  assert.match(sp.summary, /speaker agreement 75\.0% over 4 aligned words: "world1" at 1\.00s speaker 1 vs 0/);
});

test("a failed shadow run is compared too: pipeline and task status and the error are mismatches", () => {
  const primary = asPrimary(runToEnd());
  const d = new Driver({ max_attempts: 1 });
  d.accept(2);
  d.ok("prepare_track[0]");
  d.ok("prepare_track[1]");
  d.fail("plan_speech", "envelope store unreachable", true);
  const r = compareRuns(primary, bullmqSnapshot(d.state, "run-x"), rules);
  assert.equal(r.verdict, "mismatched");
  const bad = items(r, "mismatched").map((i) => `${i.step}${i.track_index === null ? "" : `[${i.track_index}]`}:${i.check}: ${i.summary}`);
  assert.ok(bad.includes("pipeline:status: conductor succeeded, bullmq failed"), bad.join("\n"));
  assert.ok(bad.includes("plan_speech:status: conductor succeeded, bullmq failed"), bad.join("\n"));
  assert.ok(bad.includes("plan_speech:error: conductor: none; bullmq: envelope store unreachable"), bad.join("\n"));
  assert.ok(bad.includes("transcribe_track[1]:status: conductor succeeded, bullmq cancelled"), bad.join("\n"));
});

test("partial results compare: the same track failed in both engines matches; a track failed in one engine only is a mismatch", () => {
  const withFailedTrack = (error: string): ReturnType<typeof bullmqSnapshot> => {
    const d = new Driver({ max_attempts: 1 });
    d.accept(2);
    d.ok("prepare_track[0]");
    d.ok("prepare_track[1]");
    d.ok("plan_speech");
    d.ok("transcribe_track[0]");
    d.fail("transcribe_track[1]", error, false);
    for (let guard = 0; guard < 20 && d.state.status === "running"; guard++) {
      const next = [...d.runs.keys()].find((k) => d.state.tasks[k]!.status === "running");
      if (!next) break;
      d.ok(next);
    }
    assert.equal(d.state.status, "succeeded");
    return bullmqSnapshot(d.state, "run-p");
  };
  const a = withFailedTrack("[speech_recognition_failed] the speech decoder failed");
  const same = compareRuns({ ...a, engine: "conductor" }, withFailedTrack("[speech_recognition_failed] the speech decoder failed"), rules);
  assert.equal(same.verdict, "matched", items(same, "mismatched").map((i) => i.summary).join("\n"));
  assert.ok(items(same, "matched").some((i) => i.step === "finalize" && i.check === "tracks.failed" && /track 1 speech_recognition_failed/.test(i.summary)));
  const differ = compareRuns({ ...asPrimary(runToEnd()) }, a, rules);
  const bad = items(differ, "mismatched").map((i) => `${i.step}:${i.check}: ${i.summary}`);
  assert.ok(bad.includes("finalize:tracks.failed: failed tracks: none vs track 1 speech_recognition_failed"), bad.join("\n"));
  assert.ok(bad.includes("merge_transcripts:tracks.failed: failed tracks: none vs track 1 speech_recognition_failed"), bad.join("\n"));
});

test("a Conductor execution is keyed by step and the track index inside each task, keeping the last retry", () => {
  const b = runToEnd();
  // a workflow execution as Conductor returns it: reference names that sort wrongly as text,
  // a retried transcription, system tasks that are not steps
  const out = (key: string) => b.steps.find((s) => `${s.step}${s.track_index === null ? "" : `[${s.track_index}]`}` === key)!.output as Record<string, unknown>;
  let seq = 0;
  const task = (def: string, ref: string, status: string, outputData: Record<string, unknown>, start: number, end: number, track?: number) => ({
    taskType: def,
    taskDefName: def,
    referenceTaskName: ref,
    status,
    outputData,
    inputData: track === undefined ? {} : { track: { track_index: track } },
    startTime: start,
    endTime: end,
    seq: ++seq,
  });
  const wf: ConductorWorkflowJson = {
    workflowId: "wf-1",
    status: "COMPLETED",
    output: b.result as unknown as Record<string, unknown>,
    tasks: [
      task("FORK_JOIN_DYNAMIC", "fork", "COMPLETED", {}, 0, 1),
      task("transcribe_track", "transcribe_10", "FAILED", {}, 10, 20, 1), // retried below: keyed by its input's track
      task("prepare_track", "prepare_1", "COMPLETED", out("prepare_track[1]"), 1, 5),
      task("prepare_track", "prepare_0", "COMPLETED", out("prepare_track[0]"), 1, 4),
      task("plan_speech", "plan_speech", "COMPLETED", out("plan_speech"), 6, 7),
      task("transcribe_track", "transcribe_10", "COMPLETED", out("transcribe_track[1]"), 21, 40, 1),
      task("transcribe_track", "transcribe_2", "COMPLETED", out("transcribe_track[0]"), 8, 30),
      ...["merge_transcripts", "suppress_bleed", "detect_topics", "generate_title", "generate_summary", "extract_action_items", "mixdown", "finalize"].map((s, i) =>
        task(`trackscribe_${s}`, s, "COMPLETED", out(s), 50 + i, 51 + i),
      ),
    ],
  };
  const c = conductorSnapshot(wf);
  const t1 = c.steps.find((s) => s.step === "transcribe_track" && s.track_index === 1)!;
  assert.deepEqual([t1.status, t1.attempts, t1.duration_ms], ["succeeded", 2, 19]);
  assert.deepEqual(c.steps.map((s) => s.step).filter((s) => s === "transcribe_track").length, 2);
  const r = compareRuns(c, b, rules);
  assert.equal(r.verdict, "matched", JSON.stringify(r.items.filter((i) => i.classification === "mismatched")));
  const t0 = r.items.find((i) => i.step === "transcribe_track" && i.track_index === 0 && i.check === "words")!;
  assert.equal(t0.classification, "matched");
  assert.equal(r.items.find((i) => i.step === "finalize" && i.check === "words")!.classification, "matched");
  assert.equal(c.status, "succeeded");
  assert.ok(c.result);
});

test("every step of a run has its output compared (the comparator table covers the graph)", () => {
  const b = runToEnd();
  const r = compareRuns(asPrimary(b), b, rules);
  const outputChecks = new Set(r.items.filter((i) => i.step !== "pipeline" && !["status", "duration", "error"].includes(i.check)).map((i) => i.step));
  assert.deepEqual([...outputChecks].sort(), [...StepName.options].sort());
  assert.equal(Object.keys(COMPARATORS).length, StepName.options.length);
});

test("action items: a changed text, owner or start beyond the tolerance is a mismatch; identical lists match", () => {
  const b = runToEnd();
  const same = compareRuns(asPrimary(b), b, rules).items.find((i) => i.step === "extract_action_items" && i.check === "action_items")!;
  assert.equal(same.classification, "matched");
  assert.match(same.summary, /^1 vs 1 action item\(s\), identical$/);

  const alter = (change: (a: ActionItem) => ActionItem) => (key: string, o: unknown): unknown =>
    key === "extract_action_items" ? { action_items: (o as { action_items: ActionItem[] }).action_items.map(change) } : o;
  const check = (shadow: EngineSnapshot) => compareRuns(asPrimary(b), shadow, rules).items.find((i) => i.step === "extract_action_items" && i.check === "action_items")!;

  const owner = check(runToEnd(alter((a) => ({ ...a, speaker: a.speaker + 1 }))));
  assert.equal(owner.classification, "mismatched");
  assert.match(owner.summary, /item 0: "Send hello0 the notes\." \(speaker 0, 0\.10s\) vs "Send hello0 the notes\." \(speaker 1, 0\.10s\)/);
  assert.equal(check(runToEnd(alter((a) => ({ ...a, text: "Something else." })))).classification, "mismatched");
  assert.equal(check(runToEnd(alter((a) => ({ ...a, start: a.start + 0.2 })))).classification, "mismatched");
  assert.equal(check(runToEnd(alter((a) => ({ ...a, start: a.start + 0.04 })))).classification, "matched", "within the time tolerance");
  const fewer = check(runToEnd((key, o) => (key === "extract_action_items" ? { action_items: [] } : o)));
  assert.equal(fewer.classification, "mismatched");
  assert.match(fewer.summary, /^1 vs 0 action item\(s\)$/);
  // an ignore rule by check name
  const ignored = compareRuns(asPrimary(b), runToEnd(alter((a) => ({ ...a, text: "x" }))), { ...rules, ignore: ["action_items"] });
  assert.equal(ignored.verdict, "matched");
});

test("an interpolated word's time may differ by up to 0.5 s (INTERPOLATED_TIME_SLACK_SECONDS); a measured word's may not", () => {
  const primary = asPrimary(runToEnd());
  const shift = (by: number, timing?: "interpolated") => (key: string, o: unknown) => {
    if (key !== "merge_transcripts") return o;
    const m = o as { words: Word[] };
    return { ...m, words: m.words.map((w, i) => (i === 0 ? { ...w, start: w.start + by, ...(timing ? { timing } : {}) } : w)) };
  };
  const check = (r: ReturnType<typeof compareRuns>) => r.items.find((i) => i.step === "merge_transcripts" && i.check === "timing")!.classification;
  assert.equal(check(compareRuns(primary, runToEnd(shift(0.2, "interpolated")), rules)), "matched");
  assert.equal(check(compareRuns(primary, runToEnd(shift(0.2)), rules)), "mismatched");
  assert.equal(check(compareRuns(primary, runToEnd(shift(0.8, "interpolated")), rules)), "mismatched", "beyond the slack");
});
