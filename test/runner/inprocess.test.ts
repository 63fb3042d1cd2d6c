import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { ProgressEvent, Result, type PipelineInput } from "../../pipeline/contracts/index.ts";
import { createOfflineTextModel } from "../../pipeline/nlp/offline.ts";
import type { AsrEngine, AudioTools } from "../../pipeline/ports.ts";
import { createInProcessEngine, PipelineAbortedError, PipelineStepError } from "../../workers/inprocess/inprocess.ts";
import { runStep, type StepDeps } from "../../pipeline/steps/index.ts";
import { createLocalStorage } from "../../adapters/storage/local.ts";

const root = mkdtempSync(path.join(os.tmpdir(), "runner-"));
after(() => rmSync(root, { recursive: true, force: true }));

const input = (n: number): PipelineInput => ({
  recording_id: "rec-1",
  language: "en",
  namespace: "inprocess",
  tracks: Array.from({ length: n }, (_, i) => ({ track_index: i, participant: `P${i}`, offset_seconds: i, source_key: `recordings/rec-1/tracks/${i}-a.wav` })),
});

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new Error("aborted"));
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(t);
      reject(new Error("aborted"));
    });
  });

interface Call {
  step: string;
  track?: number;
  scratch: string;
  scratchExisted: boolean;
  at: number;
}

/**
 * A step runner for the tests: the audio steps (prepare, plan, transcribe, bleed, mixdown)
 * return small well-formed outputs after a delay; every other step is the real one.
 */
function fakeAudioSteps(opts: { delayMs?: number; failOn?: { step: string; track: number }; inFlight?: Map<string, { now: number; max: number }> } = {}) {
  const calls: Call[] = [];
  const aborted: string[] = [];
  const t0 = performance.now();
  const run = (async (name: string, raw: unknown, deps: StepDeps) => {
    const r = raw as Record<string, any>;
    const track: number | undefined = r.track?.track_index;
    calls.push({ step: name, track, scratch: deps.scratchDir, scratchExisted: existsSync(deps.scratchDir), at: performance.now() - t0 });
    const audio = ["prepare_track", "plan_speech", "transcribe_track", "suppress_bleed", "mixdown"].includes(name);
    if (!audio) return runStep(name as any, raw, deps);
    let f = opts.inFlight?.get(name);
    if (opts.inFlight && !f) opts.inFlight.set(name, (f = { now: 0, max: 0 }));
    if (f) f.max = Math.max(f.max, ++f.now);
    try {
      if (opts.failOn && opts.failOn.step === name && opts.failOn.track === track) throw new Error("decoder crashed");
      await sleep(opts.delayMs ?? 5, deps.signal).catch((err) => {
        aborted.push(`${name}:${track}`);
        throw err;
      });
    } finally {
      if (f) f.now--;
    }
    switch (name) {
      case "prepare_track":
        return { track_index: track, offset_seconds: r.track.offset_seconds, pcm_key: `p/${track}.wav`, envelope_key: `p/${track}.env`, frame_seconds: 0.02, duration_seconds: 10 };
      case "plan_speech": {
        const prepared = r.prepared as any[];
        return {
          duration: 10 + prepared.length,
          tracks: prepared.map((p) => ({ ...p, spans: [{ start: p.track_index * 3, end: p.track_index * 3 + 2 }] })),
          track_seconds: 10 * prepared.length,
          planned_seconds: 2 * prepared.length,
        };
      }
      case "transcribe_track": {
        const s = track! * 3;
        const words = ["alpha", "beta", "gamma"].map((text, i) => ({ text, start: s + i * 0.4, end: s + i * 0.4 + 0.3, speaker: track }));
        return { track_index: track, words, engine: "fake", decoded_seconds: 2, track_seconds: 10 };
      }
      case "suppress_bleed":
        return { words: r.words, dropped: 0, dropped_by_track: {} };
      case "mixdown":
        return { audio_key: "recordings/rec-1/inprocess/mix.mp3", waveform: [0, 1], duration: 12 };
    }
    throw new Error(`unexpected step ${name}`);
  }) as typeof runStep;
  return { run, calls, aborted };
}

const unused = () => {
  throw new Error("not used");
};
function engineWith(runStepImpl: typeof runStep, scratchRoot: string, concurrency = 2) {
  const storage = createLocalStorage(path.join(root, "storage"));
  const text = createOfflineTextModel();
  return createInProcessEngine({
    scratchRoot,
    concurrency,
    runStep: runStepImpl,
    stepDeps: (scratchDir, extras = {}) => ({
      storage,
      audio: { decodeToWav: unused, mixdownMp3: unused } as AudioTools,
      asr: { name: "none", capabilities: { preload: false, sharedChild: false }, transcribe: unused } as AsrEngine,
      text,
      scratchDir,
      bleedThresholdDb: 10,
      ...extras,
    }),
  });
}

test("steps run in the workflow's order, tracks in parallel up to the limit, each in its own scratch dir", async () => {
  const inFlight = new Map<string, { now: number; max: number }>();
  const fake = fakeAudioSteps({ delayMs: 30, inFlight });
  const scratchRoot = path.join(root, "scratch-order");
  const events: ProgressEvent[] = [];
  const { result, run } = await engineWith(fake.run, scratchRoot, 2).run(input(5), { onProgress: (e) => events.push(ProgressEvent.parse(e)) });

  assert.deepEqual(run, { engine: "inprocess" });
  Result.parse(result);
  assert.deepEqual(result.participants.map((p) => p.name), ["P0", "P1", "P2", "P3", "P4"]);
  assert.equal(result.words.length, 15);
  assert.equal(result.duration, 15);
  assert.ok(result.topics.length >= 1);

  const order = fake.calls.map((c) => c.step);
  const first = (s: string) => order.indexOf(s);
  const last = (s: string) => order.lastIndexOf(s);
  assert.equal(order.filter((s) => s === "prepare_track").length, 5);
  assert.equal(order.filter((s) => s === "transcribe_track").length, 5);
  assert.ok(last("prepare_track") < first("plan_speech"));
  assert.ok(first("plan_speech") < first("transcribe_track"));
  assert.ok(last("transcribe_track") < first("merge_transcripts"));
  assert.ok(first("merge_transcripts") < first("suppress_bleed"));
  assert.ok(first("suppress_bleed") < first("detect_topics"));
  for (const s of ["generate_title", "generate_summary", "extract_action_items", "mixdown"]) {
    assert.ok(first("detect_topics") < first(s) && first(s) < first("finalize"), s);
  }
  assert.equal(order[order.length - 1], "finalize");
  // tracks prepared at most 2 at once, and really 2 at once; all 5 handed to the ASR engine at
  // once (its decoder pool bounds the decoding to the limit and balances it across tracks)
  assert.equal(inFlight.get("prepare_track")!.max, 2);
  assert.equal(inFlight.get("transcribe_track")!.max, 5);

  // every step run had its own scratch directory, which existed then and is gone now
  assert.equal(new Set(fake.calls.map((c) => c.scratch)).size, fake.calls.length);
  assert.ok(fake.calls.every((c) => c.scratchExisted && c.scratch.startsWith(scratchRoot)));
  assert.deepEqual(readdirSync(scratchRoot), []);

  // progress: pipeline started … completed, and a started/succeeded pair per step run
  assert.equal(events[0]!.step, "pipeline");
  assert.equal(events[0]!.status, "started");
  assert.equal(events[events.length - 1]!.status, "completed");
  assert.equal(events.filter((e) => e.status === "succeeded").length, fake.calls.length);
  assert.equal(events.filter((e) => e.status === "started" && e.step !== "pipeline").length, fake.calls.length);
  assert.deepEqual(
    events.filter((e) => e.step === "transcribe_track" && e.status === "succeeded").map((e) => e.track_index).sort(),
    [0, 1, 2, 3, 4],
  );
  assert.ok(events.every((e) => e.recording_id === "rec-1" && e.engine === "inprocess"));
});

test("a failing track is given up (after whatever retries its policy allows): the other tracks go on, the run completes listing it as failed, scratch is cleaned up", async () => {
  const fake = fakeAudioSteps({ delayMs: 60, failOn: { step: "transcribe_track", track: 1 } });
  const scratchRoot = path.join(root, "scratch-fail");
  const events: ProgressEvent[] = [];
  const { result } = await engineWith(fake.run, scratchRoot, 3).run(input(10), { onProgress: (e) => events.push(e) });
  // partial results: track 1 is listed as failed (its error as a client may read it), the rest are in
  assert.equal(result.tracks?.length, 10);
  assert.deepEqual(result.tracks!.filter((t) => t.status === "failed").map((t) => [t.speaker, t.error?.step]), [[1, "transcribe_track"]]);
  assert.ok(!result.words.some((w) => w.speaker === 1), "no words of the failed track");
  assert.ok(fake.calls.some((c) => c.step === "transcribe_track" && c.track === 9), "the other tracks went on");
  assert.deepEqual(readdirSync(scratchRoot), []);
  assert.equal(events[events.length - 1]!.status, "completed");
  assert.ok(events.some((e) => e.step === "transcribe_track" && e.status === "failed" && e.track_index === 1));
});

test("a cancelled run stops promptly with PipelineAbortedError", async () => {
  const fake = fakeAudioSteps({ delayMs: 5_000 });
  const scratchRoot = path.join(root, "scratch-abort");
  const ac = new AbortController();
  const started = performance.now();
  setTimeout(() => ac.abort(), 50);
  await assert.rejects(engineWith(fake.run, scratchRoot).run(input(2), { signal: ac.signal }), PipelineAbortedError);
  assert.ok(performance.now() - started < 2_000);
  assert.deepEqual(fake.aborted.sort(), ["prepare_track:0", "prepare_track:1"]);
  assert.deepEqual(readdirSync(scratchRoot), []);
});

test("invalid pipeline input is refused before any step runs", async () => {
  const fake = fakeAudioSteps();
  const bad = { ...input(2), tracks: [input(2).tracks[1]!] }; // only track 1: indexes must be 0..n-1
  await assert.rejects(engineWith(fake.run, path.join(root, "scratch-bad")).run(bad), /track indexes/);
  assert.equal(fake.calls.length, 0);
});
