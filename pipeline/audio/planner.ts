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

export interface PlannerTrack {
  track_index: number;
  offset_seconds: number;
  frame_seconds: number;
  envelope: Float32Array;
}

export interface PlannerOptions {
  bleedDb: number;
  activeAboveFloorDb: number;
  minSpeechDb: number;
  fillGapSeconds: number;
  minRunSeconds: number;
  padSeconds: number;
  maxSpanSeconds: number;
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

/** 10th percentile of the non-silent frames: the track's noise floor. */
export function noiseFloorDb(env: Float32Array): number {
  // a typed copy sorted in place: 4 bytes a frame, not a boxed array (3 hours are 540,000 frames)
  let n = 0;
  for (const v of env) if (v > SILENCE_DB) n++;
  const vals = new Float32Array(n);
  n = 0;
  for (const v of env) if (v > SILENCE_DB) vals[n++] = v;
  vals.sort();
  if (vals.length === 0) return SILENCE_DB;
  return vals[Math.floor(vals.length * 0.1)]!;
}

/**
 * The moving average in the power domain over ±`radius` frames around local frame `f`,
 * rounded to float32 (the precision an envelope is stored in), SILENCE_DB outside the track.
 * Computed where it is needed rather than kept as a smoothed copy of every envelope: at
 * three hours a track's copy is 2 MB, and ten tracks' copies were most of what made the
 * planner's memory grow with the meeting's length.
 */
function smoothedAt(env: Float32Array, f: number, radius: number): number {
  if (f < 0 || f >= env.length) return SILENCE_DB;
  let p = 0;
  let n = 0;
  for (let j = Math.max(0, f - radius), end = Math.min(env.length - 1, f + radius); j <= end; j++) {
    p += toPower(env[j]!);
    n++;
  }
  return Math.fround(toDb(p / n));
}

const SMOOTH_RADIUS = 2;

export function planSpeechSpans(tracks: readonly PlannerTrack[], options: Partial<PlannerOptions> & { bleedDb: number }): Map<number, Span[]> {
  const o: PlannerOptions = { ...DEFAULT_PLANNER, ...options };
  const frame = tracks[0]?.frame_seconds ?? 0.02;
  const localFrame = (t: PlannerTrack, g: number): number => Math.round((g * frame - t.offset_seconds) / t.frame_seconds);
  const energyAt = (ti: number, g: number): number => smoothedAt(tracks[ti]!.envelope, localFrame(tracks[ti]!, g), SMOOTH_RADIUS);
  // each track's span of the global timeline, in frames, and its activity threshold
  const ranges = tracks.map((t) => ({
    first: Math.max(0, Math.floor(t.offset_seconds / frame)),
    last: Math.ceil((t.offset_seconds + t.envelope.length * t.frame_seconds) / frame),
    threshold: Math.max(o.minSpeechDb, noiseFloorDb(t.envelope) + o.activeAboveFloorDb),
  }));
  const own = ranges.map((r) => new Uint8Array(Math.max(0, r.last - r.first)));
  // one pass over the timeline: each track's smoothed energy once per frame; a frame is a
  // track's own when it is active there and no other track is louder by bleedDb or more
  // (the loudest other track is the loudest overall, or the runner-up for the loudest)
  const from = Math.min(...ranges.map((r) => r.first));
  const to = Math.max(...ranges.map((r) => r.last));
  const e = new Float64Array(tracks.length);
  for (let g = from; g < to; g++) {
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
      own[ti]![g - r.first] = e[ti]! >= r.threshold && louder - e[ti]! < o.bleedDb ? 1 : 0;
    }
  }
  const result = new Map<number, Span[]>();
  tracks.forEach((t, ti) => {
    const { first } = ranges[ti]!;
    // frames → runs (seconds, global)
    let runs: Span[] = [];
    let startG = -1;
    own[ti]!.forEach((v, i, all) => {
      if (v && startG < 0) startG = i;
      if ((!v || i === all.length - 1) && startG >= 0) {
        const endI = v ? i + 1 : i;
        runs.push({ start: (first + startG) * frame, end: (first + endI) * frame });
        startG = -1;
      }
    });
    runs = mergeClose(runs, o.fillGapSeconds).filter((r) => r.end - r.start >= o.minRunSeconds);
    const lo = t.offset_seconds;
    const hi = t.offset_seconds + t.envelope.length * t.frame_seconds;
    const padded = mergeClose(
      runs.map((r) => ({ start: Math.max(lo, r.start - o.padSeconds), end: Math.min(hi, r.end + o.padSeconds) })),
      0,
    );
    const cut: Span[] = [];
    for (const s of padded) cut.push(...cutLongSpan(s, o.maxSpanSeconds, (g) => energyAt(ti, g), frame));
    result.set(t.track_index, cut.map((s) => ({ start: round3(s.start), end: round3(s.end) })));
  });
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

/** Split a span longer than `max` at the quietest frame of its second half, repeatedly. */
export function cutLongSpan(span: Span, max: number, energyAtGlobalFrame: (g: number) => number, frame: number): Span[] {
  const out: Span[] = [];
  let cur = { ...span };
  while (cur.end - cur.start > max) {
    const from = Math.floor((cur.start + max / 2) / frame);
    const to = Math.floor((cur.start + max) / frame);
    let best = to;
    let bestE = Infinity;
    for (let g = from; g <= to; g++) {
      const e = energyAtGlobalFrame(g);
      if (e < bestE) {
        bestE = e;
        best = g;
      }
    }
    const cutAt = best * frame;
    out.push({ start: cur.start, end: cutAt });
    cur = { start: cutAt, end: cur.end };
  }
  out.push(cur);
  return out;
}

export const totalSeconds = (spans: readonly Span[]): number => spans.reduce((s, x) => s + (x.end - x.start), 0);
