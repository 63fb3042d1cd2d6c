/**
 * The stored frame-energy envelopes of a set of tracks, as sources read a window at a time
 * (pipeline/audio/envelope-source.ts): ranged reads of the stored object, so a step looking
 * at every track of a three-hour meeting holds a few chunks of each, not each whole.
 */
import type { TrackSpeechPlan } from "../contracts/index.ts";
import type { EnvelopeSource } from "../audio/envelope-source.ts";
import { StorageKeyNotFoundError, type Storage } from "../ports.ts";

/** A stored envelope (Float32 little-endian) read by byte range. */
export async function storedEnvelope(storage: Storage, key: string): Promise<EnvelopeSource> {
  const size = await storage.size(key);
  if (size === undefined) throw new StorageKeyNotFoundError(key, storage.describe);
  return {
    frames: Math.floor(size / 4),
    async read(from, to, into) {
      const n = Math.max(0, to - from);
      const out = into && into.length >= n ? into.subarray(0, n) : new Float32Array(n);
      if (n === 0) return out;
      const bytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
      let at = 0;
      for await (const chunk of await storage.stream(key, { start: from * 4, end: to * 4 - 1 })) {
        const b = chunk as Buffer;
        bytes.set(b.subarray(0, bytes.length - at), at);
        at += b.length;
      }
      if (at < bytes.length) throw new Error(`envelope ${key}: read ${at} of ${bytes.length} bytes at frame ${from}`);
      return out;
    },
  };
}

export async function envelopeSources(
  storage: Storage,
  tracks: readonly Pick<TrackSpeechPlan, "track_index" | "offset_seconds" | "frame_seconds" | "envelope_key">[],
): Promise<{ track_index: number; offset_seconds: number; frame_seconds: number; envelope: EnvelopeSource }[]> {
  return Promise.all(
    tracks.map(async (t) => ({
      track_index: t.track_index,
      offset_seconds: t.offset_seconds,
      frame_seconds: t.frame_seconds,
      envelope: await storedEnvelope(storage, t.envelope_key),
    })),
  );
}
