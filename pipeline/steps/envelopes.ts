/** Loads the stored frame-energy envelopes of a set of tracks. */
import type { TrackSpeechPlan } from "../contracts/index.ts";
import { envelopeFromBytes } from "../audio/envelope.ts";
import type { Storage } from "../ports.ts";

export async function loadEnvelopes(
  storage: Storage,
  tracks: readonly Pick<TrackSpeechPlan, "track_index" | "offset_seconds" | "frame_seconds" | "envelope_key">[],
): Promise<{ track_index: number; offset_seconds: number; frame_seconds: number; envelope: Float32Array }[]> {
  return Promise.all(
    tracks.map(async (t) => ({
      track_index: t.track_index,
      offset_seconds: t.offset_seconds,
      frame_seconds: t.frame_seconds,
      envelope: envelopeFromBytes(await storage.get(t.envelope_key)),
    })),
  );
}
