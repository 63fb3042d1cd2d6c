/**
 * `npm run bench:asr`: speech recognition speed on the 3-track fixture meeting.
 *  - real-time factor per track (decode wall time / track audio seconds)
 *  - wall time with tracks decoded in parallel vs one after another (target ≥ 1.7× on 2 cores)
 *  - decoded seconds / track seconds with the speech planner vs whole tracks (target ≤ 0.5),
 *    with the speaker-attributed WER of both, so the saving is shown to cost no accuracy
 */
import { mkdtemp, rm } from "node:fs/promises";
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { FileManifest } from "../pipeline/contracts/index.ts";
import { wordErrorRate } from "../pipeline/metrics/wer.ts";
import { stageManifest } from "../pipeline/runner/stage.ts";
import { runStep } from "../pipeline/steps/index.ts";
import { buildFixtures, defaultFixtureDir, type Reference } from "../scripts/build-fixtures.ts";
import { createLocalStorage } from "../server/storage/local.ts";
import { audioDeps, transcribeMeeting, withScratch } from "../test/audio/harness.ts";
import type { Word } from "../pipeline/contracts/index.ts";

const { manifestPath, reference } = await buildFixtures(defaultFixtureDir());
const dir = await mkdtemp(path.join(os.tmpdir(), "bench-asr-"));
const storage = createLocalStorage(dir);
const manifest = FileManifest.parse(JSON.parse(readFileSync(manifestPath, "utf8")));
const input = await stageManifest(manifest, storage, "bench", path.dirname(manifestPath), { namespace: "inprocess" });

const wer = (ref: Reference, words: Word[]): number => {
  let e = 0;
  let n = 0;
  for (const s of ref.speakers) {
    e += wordErrorRate(s.words, words.filter((w) => w.speaker === s.speaker).map((w) => w.text)) * s.words.length;
    n += s.words.length;
  }
  return e / n;
};
const timed = async <T>(f: () => Promise<T>): Promise<[T, number]> => {
  const t0 = performance.now();
  const r = await f();
  return [r, (performance.now() - t0) / 1000];
};
/**
 * CPU seconds used by finished child processes (the decoders, ffmpeg): cutime + cstime of
 * /proc/self/stat. Unlike wall time this does not change when other work shares the cores,
 * so the CPU real-time factor is comparable between runs on a busy machine.
 */
const childCpuSeconds = (): number => {
  try {
    const stat = readFileSync("/proc/self/stat", "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // fields[0] is field 3 (state)
    return (Number(fields[13]) + Number(fields[14])) / 100; // USER_HZ is 100 on Linux
  } catch {
    return Number.NaN;
  }
};
const loadNote = (): string => `load average ${os.loadavg()[0]!.toFixed(1)} on ${os.availableParallelism()} cores`;

try {
  console.log(`cores: ${os.availableParallelism()}; meeting: ${input.tracks.length} tracks, ${reference.duration.toFixed(1)} s`);
  // per-track real-time factor, whole track decoded alone
  const prepared = await Promise.all(
    input.tracks.map((track) => withScratch((d) => runStep("prepare_track", { recording_id: "bench", namespace: "inprocess", track }, audioDeps(storage, d)))),
  );
  for (const p of prepared) {
    const track = { ...p, spans: [{ start: p.offset_seconds, end: p.offset_seconds + p.duration_seconds }] };
    const cpu0 = childCpuSeconds();
    const [, secs] = await timed(() =>
      withScratch((d) => runStep("transcribe_track", { recording_id: "bench", namespace: "inprocess", language: "en", track }, audioDeps(storage, d))),
    );
    const cpu = childCpuSeconds() - cpu0;
    console.log(
      `track ${p.track_index}: ${p.duration_seconds.toFixed(1)} s audio decoded in ${secs.toFixed(2)} s → RTF ${(secs / p.duration_seconds).toFixed(3)} wall, ${(cpu / p.duration_seconds).toFixed(3)} CPU (${loadNote()})`,
    );
  }
  let cpu0 = childCpuSeconds();
  const [seq, seqSecs] = await timed(() => transcribeMeeting(input, storage, { parallel: false }));
  const seqCpu = childCpuSeconds() - cpu0;
  cpu0 = childCpuSeconds();
  const [par, parSecs] = await timed(() => transcribeMeeting(input, storage, { parallel: true }));
  const parCpu = childCpuSeconds() - cpu0;
  console.log(`planned decoding, one track after another: ${seqSecs.toFixed(2)} s wall, ${seqCpu.toFixed(2)} s CPU`);
  console.log(`planned decoding, tracks in parallel:     ${parSecs.toFixed(2)} s wall, ${parCpu.toFixed(2)} s CPU (${loadNote()})`);
  console.log(`best possible speed-up on this machine now: min(tracks, cores) = ${Math.min(input.tracks.length, os.availableParallelism())}× when idle`);
  console.log(`parallel speed-up: ${(seqSecs / parSecs).toFixed(2)}× (target ≥ 1.7× on 2 cores)`);
  cpu0 = childCpuSeconds();
  const [whole, wholeSecs] = await timed(() => transcribeMeeting(input, storage, { parallel: true, wholeTrack: "all" }));
  const wholeCpu = childCpuSeconds() - cpu0;
  console.log(
    `whole tracks, in parallel:                ${wholeSecs.toFixed(2)} s wall, ${wholeCpu.toFixed(2)} s CPU (planner saves ${(wholeSecs / parSecs).toFixed(2)}× wall, ${(wholeCpu / parCpu).toFixed(2)}× CPU)`,
  );
  console.log(`decoded seconds / track seconds with the planner: ${(par.decoded / par.trackSeconds).toFixed(2)} (target ≤ 0.5)`);
  console.log(`decoded seconds / track seconds, whole tracks: ${(whole.decoded / whole.trackSeconds).toFixed(2)}`);
  console.log(`speaker-attributed WER: planned ${(wer(reference, par.words) * 100).toFixed(1)}%, whole tracks + bleed rule ${(wer(reference, whole.words) * 100).toFixed(1)}% (sequential run ${(wer(reference, seq.words) * 100).toFixed(1)}%)`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
