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

/** Moving average in the power domain over ±`radius` frames. */
function smooth(env: Float32Array, radius: number): Float32Array {
  const out = new Float32Array(env.length);
  for (let i = 0; i < env.length; i++) {
    let p = 0;
    let n = 0;
    for (let j = i - radius; j <= i + radius; j++) {
      if (j < 0 || j >= env.length) continue;
      p += toPower(env[j]!);
      n++;
    }
    out[i] = toDb(p / n);
  }
  return out;
}

export function planSpeechSpans(tracks: readonly PlannerTrack[], options: Partial<PlannerOptions> & { bleedDb: number }): Map<number, Span[]> {
  const o: PlannerOptions = { ...DEFAULT_PLANNER, ...options };
  const frame = tracks[0]?.frame_seconds ?? 0.02;
  const smoothed = tracks.map((t) => smooth(t.envelope, 2));
  const localFrame = (t: PlannerTrack, g: number): number => Math.round((g * frame - t.offset_seconds) / t.frame_seconds);
  const energyAt = (ti: number, g: number): number => {
    const t = tracks[ti]!;
    const f = localFrame(t, g);
    return f >= 0 && f < smoothed[ti]!.length ? smoothed[ti]![f]! : SILENCE_DB;
  };
  const result = new Map<number, Span[]>();
  tracks.forEach((t, ti) => {
    const floor = noiseFloorDb(t.envelope);
    const threshold = Math.max(o.minSpeechDb, floor + o.activeAboveFloorDb);
    const first = Math.max(0, Math.floor(t.offset_seconds / frame));
    const last = Math.ceil((t.offset_seconds + t.envelope.length * t.frame_seconds) / frame);
    const own = new Uint8Array(Math.max(0, last - first));
    for (let g = first; g < last; g++) {
      const e = energyAt(ti, g);
      let louder = SILENCE_DB;
      for (let u = 0; u < tracks.length; u++) if (u !== ti) louder = Math.max(louder, energyAt(u, g));
      own[g - first] = e >= threshold && louder - e < o.bleedDb ? 1 : 0;
    }
    // frames → runs (seconds, global)
    let runs: Span[] = [];
    let startG = -1;
    own.forEach((v, i) => {
      if (v && startG < 0) startG = i;
      if ((!v || i === own.length - 1) && startG >= 0) {
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
