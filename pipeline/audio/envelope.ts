/**
 * Frame energy envelopes: one dBFS value per frame (default 20 ms) of a track, in
 * track-local time. Small enough to store beside the audio (an hour is 180,000 floats,
 * 720 kB) and all the speech planner and the bleed rule need.
 */
export const FRAME_SECONDS = 0.02;
export const SILENCE_DB = -100;

export function frameEnergies(samples: Int16Array, sampleRate: number, frameSeconds = FRAME_SECONDS): Float32Array {
  const frame = Math.max(1, Math.round(sampleRate * frameSeconds));
  const n = Math.ceil(samples.length / frame);
  const out = new Float32Array(n);
  for (let f = 0; f < n; f++) {
    let sum = 0;
    const start = f * frame;
    const end = Math.min(samples.length, start + frame);
    for (let i = start; i < end; i++) {
      const s = samples[i]! / 32768;
      sum += s * s;
    }
    const rms = Math.sqrt(sum / Math.max(1, end - start));
    out[f] = rms > 1e-5 ? Math.max(SILENCE_DB, 20 * Math.log10(rms)) : SILENCE_DB;
  }
  return out;
}

export const envelopeToBytes = (env: Float32Array): Buffer => Buffer.from(env.buffer, env.byteOffset, env.byteLength);

/**
 * The envelope stored as `buf`: a view of its bytes when they are 4-byte aligned (a read of
 * a stored envelope is a buffer of its own), a copy only when they are not (a slice of
 * Node's shared pool). Ten three-hour envelopes are 22 MB; copying them doubled that.
 */
export function envelopeFromBytes(buf: Buffer): Float32Array {
  if (buf.byteOffset % 4 === 0) return new Float32Array(buf.buffer, buf.byteOffset, Math.floor(buf.byteLength / 4));
  const copy = new Uint8Array(buf.byteLength);
  copy.set(buf);
  return new Float32Array(copy.buffer, 0, Math.floor(copy.byteLength / 4));
}

/**
 * frameEnergies over a track read in chunks: push() samples as they come, finish() for the
 * envelope. The values are those frameEnergies gives for the whole track (the same sums in
 * the same order), with one chunk in memory at a time.
 */
export class EnvelopeBuilder {
  private readonly frame: number;
  private readonly out: Float32Array;
  private f = 0;
  private sum = 0;
  private count = 0;
  constructor(totalSamples: number, sampleRate: number, frameSeconds = FRAME_SECONDS) {
    this.frame = Math.max(1, Math.round(sampleRate * frameSeconds));
    this.out = new Float32Array(Math.ceil(totalSamples / this.frame));
  }

  push(samples: Int16Array): void {
    for (let i = 0; i < samples.length; i++) {
      const s = samples[i]! / 32768;
      this.sum += s * s;
      if (++this.count === this.frame) this.close();
    }
  }

  private close(): void {
    if (this.f < this.out.length) {
      const rms = Math.sqrt(this.sum / Math.max(1, this.count));
      this.out[this.f] = rms > 1e-5 ? Math.max(SILENCE_DB, 20 * Math.log10(rms)) : SILENCE_DB;
    }
    this.f++;
    this.sum = 0;
    this.count = 0;
  }

  finish(): Float32Array {
    if (this.count > 0) this.close();
    return this.out;
  }
}

/** Frames read by index: an envelope in memory, or an EnvelopeWindow over a stored one. */
export interface Frames {
  readonly length: number;
  at(i: number): number | undefined;
}

/** Mean power (in dB) of an envelope over [from, to) frames; SILENCE_DB outside the track. */
export function meanDb(env: Frames, from: number, to: number): number {
  const a = Math.max(0, Math.floor(from));
  const b = Math.min(env.length, Math.ceil(to));
  if (b <= a) return SILENCE_DB;
  let p = 0;
  for (let i = a; i < b; i++) p += 10 ** (env.at(i)! / 10);
  return Math.max(SILENCE_DB, 10 * Math.log10(p / (b - a)));
}

/** N peak values in 0..1 for drawing a waveform. */
export function waveformPeaks(samples: Int16Array, n: number): number[] {
  if (samples.length === 0) return new Array<number>(n).fill(0);
  const out: number[] = [];
  const per = samples.length / n;
  let max = 1;
  const raw: number[] = [];
  for (let i = 0; i < n; i++) {
    let peak = 0;
    const a = Math.floor(i * per);
    const b = Math.max(a + 1, Math.floor((i + 1) * per));
    for (let j = a; j < b && j < samples.length; j++) peak = Math.max(peak, Math.abs(samples[j]!));
    raw.push(peak);
    max = Math.max(max, peak);
  }
  for (const p of raw) out.push(Math.round((p / max) * 1000) / 1000);
  return out;
}

/**
 * Waveform of several aligned tracks without building their mix in memory (an hour of
 * 16 kHz audio is 57.6 M samples per track): each track adds its own per-bucket peak at
 * its offset, one track at a time. The sum of the tracks' peaks bounds the mix's peak and
 * is what a listener sees in a meeting where people mostly take turns.
 */
export class PeakAccumulator {
  private readonly sums: Float64Array;
  constructor(readonly buckets: number, readonly totalSamples: number) {
    this.sums = new Float64Array(buckets);
  }

  /** one whole track starting at `offsetSamples` on the timeline */
  add(samples: Int16Array, offsetSamples: number): void {
    this.addChunk(samples, offsetSamples, offsetSamples);
    this.endTrack();
  }

  /** the current track's peak per bucket, kept until endTrack (a bucket may span chunks) */
  private track: Float64Array | undefined;
  private touched: [number, number] | undefined;

  /**
   * A piece of a track read in chunks: `samples` start at `atSamples` on the timeline, the
   * track itself at `trackOffsetSamples`. Call endTrack() after its last chunk. The result
   * is the same as add() with the whole track (each bucket takes the track's peak over the
   * bucket's range, whichever chunks it spans), with one chunk in memory at a time.
   */
  addChunk(samples: Int16Array, atSamples: number, trackOffsetSamples: number): void {
    const per = this.totalSamples / this.buckets;
    if (per <= 0 || samples.length === 0) return;
    this.track ??= new Float64Array(this.buckets);
    const first = Math.max(0, Math.floor(trackOffsetSamples / per), Math.floor(atSamples / per) - 1);
    // one bucket more than the last sample's quotient: a bucket starts at floor(b × per), so
    // the chunk's last sample may open the next one
    const last = Math.min(this.buckets - 1, Math.floor((atSamples + samples.length - 1) / per) + 1);
    for (let b = first; b <= last; b++) {
      // the bucket's range for this track, cut to this chunk
      const a = Math.max(Math.floor(b * per), trackOffsetSamples, atSamples) - atSamples;
      const e = Math.min(Math.max(Math.floor(b * per) + 1, Math.floor((b + 1) * per)) - atSamples, samples.length);
      if (e <= a) continue;
      let peak = this.track[b]!;
      for (let j = a; j < e; j++) {
        const v = Math.abs(samples[j]!);
        if (v > peak) peak = v;
      }
      this.track[b] = peak;
      this.touched = this.touched ? [Math.min(this.touched[0], b), Math.max(this.touched[1], b)] : [b, b];
    }
  }

  /** the current track is complete: its peaks join the sum */
  endTrack(): void {
    if (this.track && this.touched) {
      for (let b = this.touched[0]; b <= this.touched[1]; b++) {
        this.sums[b]! += this.track[b]!;
        this.track[b] = 0;
      }
    }
    this.touched = undefined;
  }

  /** N values in 0..1, scaled so the loudest bucket is 1 (all zeros for silence). */
  peaks(): number[] {
    let max = 1;
    for (const v of this.sums) max = Math.max(max, v);
    return Array.from(this.sums, (v) => Math.round((v / max) * 1000) / 1000);
  }
}
