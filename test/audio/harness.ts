/** Runs the audio half of the pipeline (prepare → plan → transcribe → merge → bleed) on local storage. */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createAsrEngine } from "../../adapters/asr/index.ts";
import { createFfmpegAudioTools } from "../../adapters/audio/ffmpeg.ts";
import { loadConfig } from "../../pipeline/config.ts";
import type { PipelineInput, TranscribeTrackOutput, Word } from "../../pipeline/contracts/index.ts";
import type { StepDeps } from "../../pipeline/steps/deps.ts";
import { runStep } from "../../pipeline/steps/index.ts";
import { speechTracks } from "../../pipeline/steps/transcribe_track.ts";
import type { AsrEngine, Storage, TextModel } from "../../pipeline/ports.ts";

const noText: TextModel = {
  name: "unused",
  detectTopics: () => Promise.reject(new Error("not used by the audio tests")),
  generateTitle: () => Promise.reject(new Error("not used by the audio tests")),
  generateSummary: () => Promise.reject(new Error("not used by the audio tests")),
  extractActionItems: () => Promise.reject(new Error("not used by the audio tests")),
};

export function audioDeps(storage: Storage, scratchDir: string, bleedThresholdDb = 10, asr?: AsrEngine): StepDeps {
  const config = loadConfig({});
  return { storage, audio: createFfmpegAudioTools(), asr: asr ?? createAsrEngine(config), text: noText, scratchDir, bleedThresholdDb };
}

export async function withScratch<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "ts-step-"));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function transcribeMeeting(
  input: PipelineInput,
  storage: Storage,
  opts: {
    /** tracks prepared and transcribed at once with one decoder per core, or one track at a time with one decoder (the in-process runner with concurrency = cores, or 1) */
    parallel: boolean;
    wholeTrack?: number | "all";
    /** transcripts of planned (not whole-track) decodes, keyed by track index: reused when present, filled when absent */
    cache?: Map<number, TranscribeTrackOutput>;
    /** filled with each transcribe_track call's wall seconds, keyed by track index */
    timings?: Map<number, number>;
    /** a recognizer kept from earlier meetings (a busy worker's, decoders already loaded); default: a fresh one, closed after */
    asr?: AsrEngine;
  },
): Promise<{
  words: Word[];
  dropped: number;
  decoded: number;
  trackSeconds: number;
  perTrack: { track_index: number; track_seconds: number; decoded_seconds: number }[];
}> {
  if (opts.asr) return transcribeWith(opts.asr, input, storage, opts);
  // one engine for the meeting, its decoders shared by the tracks: a worker's first meeting
  const asr = meetingRecognizer(opts.parallel);
  try {
    return await transcribeWith(asr, input, storage, opts);
  } finally {
    await asr.close?.();
  }
}

/** the recognizer a meeting is transcribed with: one decoder per core, or one */
export function meetingRecognizer(parallel: boolean): AsrEngine {
  return createAsrEngine({ ...loadConfig({}), ASR_CONCURRENCY: parallel ? os.availableParallelism() : 1 });
}

async function transcribeWith(
  asr: AsrEngine,
  input: PipelineInput,
  storage: Storage,
  opts: Parameters<typeof transcribeMeeting>[2],
): ReturnType<typeof transcribeMeeting> {
  const expected = input.tracks.map((t) => t.track_index);
  const run = <T>(f: (deps: StepDeps) => Promise<T>): Promise<T> => withScratch((d) => f(audioDeps(storage, d, 10, asr)));
  asr.warm?.(); // as the in-process runner does: models load while ffmpeg prepares the tracks
  // as the in-process runner does with concurrency = cores, or 1 (one track after another)
  const prepareOne = (track: PipelineInput["tracks"][number]) =>
    run((deps) => runStep("prepare_track", { recording_id: input.recording_id, namespace: input.namespace, track }, deps));
  const prepared: Awaited<ReturnType<typeof prepareOne>>[] = [];
  if (opts.parallel) prepared.push(...(await Promise.all(input.tracks.map(prepareOne))));
  else for (const t of input.tracks) prepared.push(await prepareOne(t));
  const plan = await run((deps) =>
    runStep("plan_speech", { recording_id: input.recording_id, namespace: input.namespace, language: input.language, expected_tracks: expected, prepared }, deps),
  );
  // wholeTrack: decode that one track from start to end, ignoring the plan (to show what bleed does)
  const tracks = plan.tracks.map((t) =>
    opts.wholeTrack === "all" || t.track_index === opts.wholeTrack ? { ...t, spans: [{ start: t.offset_seconds, end: t.offset_seconds + t.duration_seconds }] } : t,
  );
  const isWhole = (i: number): boolean => opts.wholeTrack === "all" || i === opts.wholeTrack;
  // as the in-process runner does: tracks handed over together form the recognizer's batch,
  // so the decoders are given out once every track's segments are known
  const batch = opts.parallel ? { speech_tracks: speechTracks({ tracks }) } : {};
  const one = async (track: (typeof tracks)[number]): Promise<TranscribeTrackOutput> => {
    const cached = isWhole(track.track_index) ? undefined : opts.cache?.get(track.track_index);
    if (cached) return cached;
    const t0 = performance.now();
    const out = await run((deps) =>
      runStep("transcribe_track", { recording_id: input.recording_id, namespace: input.namespace, language: input.language, track, ...batch }, deps),
    );
    opts.timings?.set(track.track_index, (performance.now() - t0) / 1000);
    if (!isWhole(track.track_index)) opts.cache?.set(track.track_index, out);
    return out;
  };
  const transcripts: TranscribeTrackOutput[] = [];
  if (opts.parallel) transcripts.push(...(await Promise.all(tracks.map(one))));
  else for (const t of tracks) transcripts.push(await one(t));
  // a JOIN-style dict, keyed by reference name, in a deliberately unhelpful order
  const dict = Object.fromEntries(transcripts.reverse().map((t) => [`transcribe_track_${t.track_index}`, t]));
  const merged = await run((deps) => runStep("merge_transcripts", { expected_tracks: expected, transcripts: dict }, deps));
  const bleed = await run((deps) => runStep("suppress_bleed", { words: merged.words, tracks: plan.tracks }, deps));
  return {
    words: bleed.words,
    dropped: bleed.dropped,
    decoded: transcripts.reduce((s, t) => s + t.decoded_seconds, 0),
    trackSeconds: plan.track_seconds,
    perTrack: [...transcripts]
      .sort((a, b) => a.track_index - b.track_index)
      .map((t) => ({ track_index: t.track_index, track_seconds: t.track_seconds, decoded_seconds: t.decoded_seconds })),
  };
}
