/** The `trackscribe process --manifest` file and the upload manifest of the HTTP API. */
import { z } from "zod/v4";
import { Language, ParticipantName } from "./domain.ts";

const Offset = z
  .number({ error: "offset_seconds must be a number" })
  .finite("offset_seconds must be finite")
  .nonnegative("offset_seconds must be ≥ 0")
  .max(24 * 3600, "offset_seconds is more than 24 hours");

function uniqueParticipants(tracks: { participant: string }[], ctx: z.RefinementCtx): void {
  const seen = new Map<string, number>();
  tracks.forEach((t, i) => {
    const key = t.participant.toLowerCase();
    const first = seen.get(key);
    if (first !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["tracks", i, "participant"],
        message: `duplicate participant name '${t.participant}' (also track ${first})`,
      });
    } else seen.set(key, i);
  });
}

/** CLI manifest: tracks are local file paths. */
export const FileManifest = z
  .strictObject({
    language: Language.default("en"),
    tracks: z
      .array(
        z.strictObject({
          path: z.string().min(1, "track path must not be empty"),
          participant: ParticipantName,
          offset_seconds: Offset.default(0),
        }),
      )
      .min(1, "the manifest has no tracks"),
  })
  .superRefine((m, ctx) => uniqueParticipants(m.tracks, ctx));
export type FileManifest = z.infer<typeof FileManifest>;

/** Multipart upload manifest: files arrive as parts, in the same order. */
export const UploadManifest = z
  .strictObject({
    language: Language.default("en"),
    tracks: z
      .array(z.strictObject({ participant: ParticipantName, offset_seconds: Offset.default(0) }))
      .min(1, "the manifest has no tracks"),
  })
  .superRefine((m, ctx) => uniqueParticipants(m.tracks, ctx));
export type UploadManifest = z.infer<typeof UploadManifest>;

/** JSON body referencing objects already in the bucket. */
export const KeyManifest = z
  .strictObject({
    language: Language.default("en"),
    tracks: z
      .array(
        z.strictObject({
          key: z
            .string()
            .min(1)
            .max(1024)
            .refine((k) => !k.startsWith("/") && !k.split("/").includes(".."), "key must be a relative bucket key without '..'"),
          participant: ParticipantName,
          offset_seconds: Offset.default(0),
        }),
      )
      .min(1, "the manifest has no tracks"),
  })
  .superRefine((m, ctx) => uniqueParticipants(m.tracks, ctx));
export type KeyManifest = z.infer<typeof KeyManifest>;
