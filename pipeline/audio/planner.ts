/**
 * The speech planner: for each track, the spans of the global timeline where the track
 * carries its OWN speech, so the decoder spends its time there only. A frame is the
 * track's own speech when
 *   - its energy is clearly above the track's noise floor (ACTIVE_ABOVE_FLOOR_DB, and at
 *     least MIN_SPEECH_DB absolute), and
 *   - no other track is louder by `bleedDb` or more at that moment (that would be the other
 *     person's voice leaking into this microphone: mic bleed).
 * Frame decisions are smoothed (short gaps filled, blips dropped), spans padded so word
 * edges are not clipped, and long spans cut at their quietest point so an hour-long track
 * is decoded in bounded pieces.
 */
import type { Span } from "../contracts/index.ts";
import { SILENCE_DB } from "./envelope.ts";
import { ENVELOPE_CHUNK_FRAMES, EnvelopeWindow, forEachFrame, toEnvelopeSource, type EnvelopeSource } from "./envelope-source.ts";

export interface PlannerTrack {
  track_index: number;
  offset_seconds: number;
  frame_seconds: number;
  /** the whole envelope, or a source it is read from a window at a time */
  envelope: Float32Array | EnvelopeSource;
}

export interface PlannerOptions {
  bleedDb: number;
  activeAboveFloorDb: number;
  minSpeechDb: number;
  fillGapSeconds: number;
  minRunSeconds: number;
  padSeconds: number;
  maxSpanSeconds: number;
  /** frames per envelope chunk read from a source (tests make it small) */
  chunkFrames?: number;
}

export const DEFAULT_PLANNER: Omit<PlannerOptions, "bleedDb"> = {
  activeAboveFloorDb: 15,
  minSpeechDb: -60,
  fillGapSeconds: 0.4,
  minRunSeconds: 0.15,
  padSeconds: 0.25,
  maxSpanSeconds: 25,
};

const toPower = (db: number): number => 10 ** (db / 10);
const toDb = (p: number): number => (p > 1e-10 ? Math.max(SILENCE_DB, 10 * Math.log10(p)) : SILENCE_DB);

/** histogram bins of 0.01 dB above SILENCE_DB (the last takes everything louder than +20 dBFS) */
const BINS_PER_DB = 100;
const BINS = 120 * BINS_PER_DB + 1;
const binOf = (v: number): number => Math.min(BINS - 1, Math.floor((v - SILENCE_DB) * BINS_PER_DB));

/**
 * 10th percentile of the non-silent frames: the track's noise floor. Read twice, a chunk
 * at a time, rather than sorted whole: a histogram of 0.01 dB bins finds the bin holding
 * the percentile and its rank there, then only that bin's values are kept and sorted. The
 * value is the one a sort of every frame gives (the bins are in the values' order).
 */
export async function noiseFloorDb(envelope: Float32Array | EnvelopeSource, buffer?: Float32Array): Promise<number> {
  const source = toEnvelopeSource(envelope);
  const counts = new Uint32Array(BINS);
  let n = 0;
  await forEachFrame(source, (v) => {
    if (v > SILENCE_DB) {
      counts[binOf(v)]!++;
      n++;
    }
  }, buffer);
  if (n === 0) return SILENCE_DB;
  let rank = Math.floor(n * 0.1);
  let bin = 0;
  while (rank >= counts[bin]!) rank -= counts[bin++]!;
  const inBin = new Float32Array(counts[bin]!);
  let k = 0;
  await forEachFrame(source, (v) => {
    if (v > SILENCE_DB && binOf(v) === bin) inBin[k++] = v;
  }, buffer);
  inBin.sort();
  return inBin[rank]!;
}

/**
 * The moving average in the power domain over ±`radius` frames around local frame `f`,
 * rounded to float32 (the precision an envelope is stored in), SILENCE_DB outside the track.
 * Computed where it is needed rather than kept as a smoothed copy of every envelope.
 */
function smoothedAt(env: EnvelopeWindow, f: number, radius: number): number {
  if (f < 0 || f >= env.length) return SILENCE_DB;
  let p = 0;
  let n = 0;
  for (let j = Math.max(0, f - radius), end = Math.min(env.length - 1, f + radius); j <= end; j++) {
    p += toPower(env.at(j));
    n++;
  }
  return Math.fround(toDb(p / n));
}

const SMOOTH_RADIUS = 2;
/** global frames planned per pass of the timeline loop (each track's window covers them) */
const TIMELINE_WINDOW = 8192;

/**
 * The spans, per track. The envelopes are read a window at a time (see EnvelopeWindow),
 * walking the timeline forward: noise floors first (two reads of each envelope), then one
 * pass deciding each frame and growing each track's runs, then the long spans' cut points.
 * What stays in memory is the runs, not the frames.
 */
export async function planSpeechSpans(tracks: readonly PlannerTrack[], options: Partial<PlannerOptions> & { bleedDb: number }): Promise<Map<number, Span[]>> {
  const o: PlannerOptions = { ...DEFAULT_PLANNER, ...options };
  const frame = tracks[0]?.frame_seconds ?? 0.02;
  const windows = tracks.map((t) => EnvelopeWindow.of(t.envelope, o.chunkFrames));
  const localFrame = (t: PlannerTrack, g: number): number => Math.round((g * frame - t.offset_seconds) / t.frame_seconds);
  const energyAt = (ti: number, g: number): number => smoothedAt(windows[ti]!, localFrame(tracks[ti]!, g), SMOOTH_RADIUS);
  /** loads what energyAt(ti, g) reads for every g in [g0, g1] */
  const cover = (ti: number, g0: number, g1: number): Promise<void> =>
    windows[ti]!.cover(localFrame(tracks[ti]!, g0) - SMOOTH_RADIUS, localFrame(tracks[ti]!, g1) + SMOOTH_RADIUS);
  // each track's span of the global timeline, in frames, and its activity threshold
  const ranges = [];
  const readBuffer = new Float32Array(4 * (o.chunkFrames ?? ENVELOPE_CHUNK_FRAMES)); // every floor pass reads into it
  for (const [ti, t] of tracks.entries()) {
    ranges.push({
      first: Math.max(0, Math.floor(t.offset_seconds / frame)),
      last: Math.ceil((t.offset_seconds + windows[ti]!.length * t.frame_seconds) / frame),
      threshold: Math.max(o.minSpeechDb, (await noiseFloorDb(t.envelope, readBuffer)) + o.activeAboveFloorDb),
    });
  }
  // one pass over the timeline: each track's smoothed energy once per frame; a frame is a
  // track's own when it is active there and no other track is louder by bleedDb or more
  // (the loudest other track is the loudest overall, or the runner-up for the loudest);
  // consecutive own frames make a run, in global seconds
  const runs: Span[][] = tracks.map(() => []);
  const runStart = tracks.map(() => -1);
  const from = Math.min(...ranges.map((r) => r.first));
  const to = Math.max(...ranges.map((r) => r.last));
  const e = new Float64Array(tracks.length);
  for (let g0 = from; g0 < to; g0 += TIMELINE_WINDOW) {
    const g1 = Math.min(to, g0 + TIMELINE_WINDOW);
    for (let ti = 0; ti < tracks.length; ti++) await cover(ti, g0, g1 - 1);
    for (let g = g0; g < g1; g++) {
      let top = SILENCE_DB;
      let topAt = -1;
      let second = SILENCE_DB;
      for (let u = 0; u < tracks.length; u++) {
        const v = (e[u] = energyAt(u, g));
        if (v > top) {
          second = top;
          top = v;
          topAt = u;
        } else if (v > second) second = v;
      }
      for (let ti = 0; ti < tracks.length; ti++) {
        const r = ranges[ti]!;
        if (g < r.first || g >= r.last) continue;
        const louder = ti === topAt ? second : top;
        const own = e[ti]! >= r.threshold && louder - e[ti]! < o.bleedDb;
        if (own && runStart[ti]! < 0) runStart[ti] = g;
        else if (!own && runStart[ti]! >= 0) {
          runs[ti]!.push({ start: runStart[ti]! * frame, end: g * frame });
          runStart[ti] = -1;
        }
      }
    }
  }
  const result = new Map<number, Span[]>();
  for (const [ti, t] of tracks.entries()) {
    if (runStart[ti]! >= 0) runs[ti]!.push({ start: runStart[ti]! * frame, end: ranges[ti]!.last * frame });
    const kept = mergeClose(runs[ti]!, o.fillGapSeconds).filter((r) => r.end - r.start >= o.minRunSeconds);
    const lo = t.offset_seconds;
    const hi = t.offset_seconds + windows[ti]!.length * t.frame_seconds;
    const padded = mergeClose(
      kept.map((r) => ({ start: Math.max(lo, r.start - o.padSeconds), end: Math.min(hi, r.end + o.padSeconds) })),
      0,
    );
    // long spans cut at their quietest frames, the span's window read before each look
    const cut: Span[] = [];
    for (const s of padded) {
      let cur = { ...s };
      for (let look = nextCutRange(cur, o.maxSpanSeconds, frame); look; look = nextCutRange(cur, o.maxSpanSeconds, frame)) {
        await cover(ti, look.from, look.to);
        const at = quietestFrame(look.from, look.to, (g) => energyAt(ti, g)) * frame;
        cut.push({ start: cur.start, end: at });
        cur = { start: at, end: cur.end };
      }
      cut.push(cur);
    }
    result.set(t.track_index, cut.map((s) => ({ start: round3(s.start), end: round3(s.end) })));
  }
  return result;
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

export function mergeClose(spans: Span[], gap: number): Span[] {
  const sorted = [...spans].sort((a, b) => a.start - b.start);
  const out: Span[] = [];
  for (const s of sorted) {
    const prev = out[out.length - 1];
    if (prev && s.start - prev.end <= gap) prev.end = Math.max(prev.end, s.end);
    else out.push({ ...s });
  }
  return out;
}

/** Where a span longer than `max` is looked at for its next cut: the frames of its second `max / 2` (none when it is short enough). */
function nextCutRange(span: Span, max: number, frame: number): { from: number; to: number } | undefined {
  if (span.end - span.start <= max) return undefined;
  return { from: Math.floor((span.start + max / 2) / frame), to: Math.floor((span.start + max) / frame) };
}

/** The quietest frame of from…to (the last one when none is quieter). */
function quietestFrame(from: number, to: number, energyAtGlobalFrame: (g: number) => number): number {
  let best = to;
  let bestE = Infinity;
  for (let g = from; g <= to; g++) {
    const e = energyAtGlobalFrame(g);
    if (e < bestE) {
      bestE = e;
      best = g;
    }
  }
  return best;
}

/** Split a span longer than `max` at the quietest frame of its second half, repeatedly. */
export function cutLongSpan(span: Span, max: number, energyAtGlobalFrame: (g: number) => number, frame: number): Span[] {
  const out: Span[] = [];
  let cur = { ...span };
  for (let look = nextCutRange(cur, max, frame); look; look = nextCutRange(cur, max, frame)) {
    const cutAt = quietestFrame(look.from, look.to, energyAtGlobalFrame) * frame;
    out.push({ start: cur.start, end: cutAt });
    cur = { start: cutAt, end: cur.end };
  }
  out.push(cur);
  return out;
}

export const totalSeconds = (spans: readonly Span[]): number => spans.reduce((s, x) => s + (x.end - x.start), 0);
