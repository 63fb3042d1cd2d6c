/**
 * Envelopes read a window at a time. A stored envelope is 4 bytes a frame (three hours of a
 * track: 2.2 MB); the planner and the bleed rule look at every track of a meeting together,
 * so reading them whole made those steps' memory grow with the meeting's length × its
 * tracks. They walk the timeline forward instead, with an EnvelopeWindow per track that
 * holds the few chunks around the frames being looked at.
 */
export interface EnvelopeSource {
  /** frames in the envelope */
  readonly frames: number;
  /**
   * frames [from, to) (within 0…frames); into the start of `into` when given (its length
   * at least to − from), so a reader walking an envelope reuses its buffers
   */
  read(from: number, to: number, into?: Float32Array): Promise<Float32Array>;
}

/** An envelope already in memory (tests, the bench's own analysis). */
export function arraySource(env: Float32Array): EnvelopeSource {
  return {
    frames: env.length,
    async read(from, to, into) {
      if (!into) return env.subarray(from, to);
      into.set(env.subarray(from, to));
      return into.subarray(0, to - from);
    },
  };
}

export const isEnvelopeSource = (e: Float32Array | EnvelopeSource): e is EnvelopeSource => !(e instanceof Float32Array);

/** An envelope in memory or a stored one, as a source. */
export const toEnvelopeSource = (e: Float32Array | EnvelopeSource): EnvelopeSource => (isEnvelopeSource(e) ? e : arraySource(e));

/** frames per chunk read from storage: 16,384 frames (5.5 minutes at 20 ms) are 64 kB */
export const ENVELOPE_CHUNK_FRAMES = 16_384;

/**
 * The frames of an envelope around the place being looked at: `cover(from, to)` loads the
 * chunks holding those frames and drops the others, then `at(i)` reads any frame in them.
 * `length` is the whole envelope's. An envelope in memory is one chunk (nothing is copied).
 */
export class EnvelopeWindow {
  readonly length: number;
  private readonly chunk: number;
  private first = 0;
  private chunks: Float32Array[] = [];
  /** buffers of chunks dropped, reused for the next reads */
  private spare: Float32Array[] = [];

  /** false for an envelope in memory: its chunks are views of it, read without copying */
  private readonly reusable: boolean;

  constructor(private readonly source: EnvelopeSource, chunkFrames = ENVELOPE_CHUNK_FRAMES, reusable = true) {
    this.length = source.frames;
    this.chunk = Math.max(1, Math.floor(chunkFrames));
    this.reusable = reusable;
  }

  static of(envelope: Float32Array | EnvelopeSource, chunkFrames = ENVELOPE_CHUNK_FRAMES): EnvelopeWindow {
    return isEnvelopeSource(envelope) ? new EnvelopeWindow(envelope, chunkFrames) : new EnvelopeWindow(arraySource(envelope), Math.max(1, envelope.length), false);
  }

  /** frames from…to (inclusive, clipped to the envelope) are loaded after this */
  async cover(from: number, to: number): Promise<void> {
    const a = Math.max(0, Math.floor(from));
    const b = Math.min(this.length - 1, Math.ceil(to));
    if (b < a) return;
    const c0 = Math.floor(a / this.chunk);
    const c1 = Math.floor(b / this.chunk);
    if (c0 >= this.first && c1 < this.first + this.chunks.length) return;
    const next: Float32Array[] = [];
    for (let c = c0; c <= c1; c++) {
      const have = c >= this.first ? this.chunks[c - this.first] : undefined;
      next.push(have ?? (await this.source.read(c * this.chunk, Math.min(this.length, (c + 1) * this.chunk), this.spare.pop() ?? (this.reusable ? new Float32Array(this.chunk) : undefined))));
    }
    // the chunks no longer needed lend their buffers to the next reads (only once every read
    // succeeded: until then they are still the window)
    this.chunks.forEach((data, k) => {
      const dropped = k + this.first < c0 || k + this.first > c1;
      if (dropped && this.reusable && data.byteOffset === 0 && data.buffer.byteLength >= this.chunk * 4) this.spare.push(new Float32Array(data.buffer, 0, this.chunk));
    });
    this.first = c0;
    this.chunks = next;
  }

  /** frame i, which a cover() must have loaded */
  at(i: number): number {
    const c = Math.floor(i / this.chunk);
    const data = this.chunks[c - this.first];
    if (!data || i < 0) throw new RangeError(`envelope frame ${i} is not loaded`);
    return data[i - c * this.chunk]!;
  }
}

/**
 * Every frame of an envelope in order, a chunk at a time, read into `buffer` (one read per
 * chunk of its length; pass the same buffer to every call, so the reads leave no garbage).
 */
export async function forEachFrame(source: EnvelopeSource, fn: (v: number) => void, buffer: Float32Array = new Float32Array(ENVELOPE_CHUNK_FRAMES * 4)): Promise<void> {
  const chunkFrames = buffer.length;
  for (let f = 0; f < source.frames; f += chunkFrames) {
    const data = await source.read(f, Math.min(source.frames, f + chunkFrames), buffer);
    for (let i = 0; i < data.length; i++) fn(data[i]!);
  }
}
