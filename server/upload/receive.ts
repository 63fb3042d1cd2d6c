/**
 * Reading a multipart upload: the `manifest` field first, then one `track` file part per
 * manifest entry, in order. Each file goes through a TrackGuard (format from its first
 * bytes, size limit) straight into storage, one at a time, so memory stays bounded by the
 * storage client's part buffers whatever the file sizes. Any problem throws an ApiError;
 * the caller removes whatever was stored (everything is under recordings/{id}/).
 */
import type { Readable, Transform } from "node:stream";
import { finished, pipeline } from "node:stream/promises";
import type { z } from "zod/v4";
import { UploadManifest } from "../../pipeline/contracts/index.ts";
import { ApiError, badRequest, ClientGoneError, DependencyError } from "../errors.ts";
import type { TrackRow } from "../../adapters/postgres/recordings-repo.ts";
import { checkOffsets, uploadTooLarge } from "./limits.ts";
import { AudioLimitError, durationProblem, type DurationLimits } from "../../pipeline/audio/errors.ts";
import type { AudioFormat } from "../../pipeline/audio/sniff.ts";
import { EmptyTrackError, filenameProblem, NotAudioError, TooLargeError, TrackGuard, trackKey } from "./sniff.ts";

/** What @fastify/multipart yields (only what we read). */
export type UploadPart =
  | { type: "field"; fieldname: string; value: unknown; valueTruncated?: boolean }
  | { type: "file"; fieldname: string; filename: string; mimetype: string; file: Readable };

/** Where track bytes go: resolves when the whole stream is stored. */
export type TrackSink = (key: string, body: Readable, contentType: string) => Promise<void>;

export interface ReceiveOptions {
  recordingId: string;
  maxTracks: number;
  maxTrackBytes: number;
  maxUploadBytes: number;
  maxRecordingSeconds: number;
  sink: TrackSink;
  /** true once the client has disconnected */
  clientGone: () => boolean;
  onTrackStored?: (t: TrackRow) => void;
  /**
   * Called once the manifest is read and valid, before any track is stored (e.g. reserve the
   * Idempotency-Key). `"skip"`: store nothing; the rest of the body is read and dropped, so
   * the client can be answered once it has sent everything (a replayed request).
   */
  onManifest?: (manifest: UploadManifest) => Promise<void | "skip">;
  /**
   * Measures each track's audio while it streams to storage (adapters/audio/probe.ts), so a
   * track breaking a duration limit is refused, and stopped as soon as it passes one.
   */
  probe?: {
    limits: DurationLimits;
    tap: (format: () => AudioFormat | undefined, check: (seconds: number) => Error | undefined) => { stream: Transform; verdict: Promise<{ seconds: number; unreadable?: string }> };
  };
}

export const describeIssues = (e: z.ZodError): string =>
  e.issues.map((i) => `${i.path.length ? i.path.join(".") : "(root)"}: ${i.message}`).join("; ");

/** Validate a manifest (already JSON-decoded or a JSON string) against UploadManifest and the track limit. */
export function parseUploadManifest(value: unknown, maxTracks: number): UploadManifest {
  let json: unknown = value;
  if (typeof value === "string") {
    try {
      json = JSON.parse(value);
    } catch (err) {
      throw badRequest("invalid_manifest", `manifest is not valid JSON: ${(err as Error).message}`);
    }
  }
  const parsed = UploadManifest.safeParse(json);
  if (!parsed.success) {
    const tooFew = parsed.error.issues.some((i) => i.message === "the manifest has no tracks");
    throw badRequest(tooFew ? "no_tracks" : "invalid_manifest", `manifest is invalid: ${describeIssues(parsed.error)}`);
  }
  if (parsed.data.tracks.length > maxTracks) {
    throw badRequest("too_many_tracks", `the manifest lists ${parsed.data.tracks.length} tracks; at most ${maxTracks} are accepted`);
  }
  return parsed.data;
}

/** Map an error raised while a track streamed to the API error it means. */
function trackError(err: unknown, label: string, clientGone: boolean): Error {
  if (err instanceof AudioLimitError) return new ApiError(422, err.code, err.message);
  if (err instanceof TooLargeError) return new ApiError(413, "track_too_large", err.message);
  if (err instanceof NotAudioError) return new ApiError(415, "unsupported_media_type", err.message);
  if (err instanceof EmptyTrackError) return badRequest("empty_track", err.message);
  if (err instanceof ApiError) return err;
  const code = (err as { code?: string })?.code;
  if (clientGone || code === "FST_REQ_FILE_TOO_LARGE" || code === "ECONNRESET" || /premature close|aborted|terminated early/i.test(String((err as Error)?.message))) {
    if (code === "FST_REQ_FILE_TOO_LARGE") return new ApiError(413, "track_too_large", `${label} is larger than the limit`);
    return new ClientGoneError(`the client disconnected while sending ${label}`);
  }
  return new DependencyError("s3", `storing ${label} failed; try again later`, err);
}

export async function receiveUpload(
  parts: AsyncIterable<UploadPart>,
  opts: ReceiveOptions,
): Promise<{ manifest: UploadManifest; tracks: TrackRow[]; skipped?: true }> {
  let manifest: UploadManifest | undefined;
  let skipping = false;
  const tracks: TrackRow[] = [];
  try {
    for await (const part of parts) {
      if (part.type === "field") {
        if (part.fieldname !== "manifest") throw badRequest("unexpected_field", `unexpected form field '${part.fieldname.slice(0, 64)}' (expected 'manifest' and 'track' files)`);
        if (manifest) throw badRequest("invalid_manifest", "the manifest field was sent twice");
        if (part.valueTruncated) throw badRequest("invalid_manifest", "the manifest field is too large");
        manifest = parseUploadManifest(part.value, opts.maxTracks);
        checkOffsets(manifest.tracks, opts);
        if ((await opts.onManifest?.(manifest)) === "skip") skipping = true;
        continue;
      }
      if (part.fieldname !== "track") {
        throw badRequest("unexpected_field", `unexpected file field '${part.fieldname.slice(0, 64)}' (track files go in 'track' parts)`);
      }
      if (!manifest) {
        throw badRequest("missing_manifest", "the manifest field must come before the track files");
      }
      if (skipping) {
        part.file.resume();
        await finished(part.file).catch(() => undefined);
        continue;
      }
      const index = tracks.length;
      if (index >= manifest.tracks.length) {
        throw badRequest("track_count_mismatch", `the manifest lists ${manifest.tracks.length} track(s) but more files were sent`);
      }
      const label = `track ${index} (${manifest.tracks[index]!.participant})`;
      const problem = filenameProblem(part.filename);
      if (problem) {
        throw badRequest("invalid_filename", `${label} ${problem}`);
      }
      const key = trackKey(opts.recordingId, index, part.filename);
      // the request's byte budget: what is left of MAX_UPLOAD_BYTES bounds this track too
      const received = tracks.reduce((n, t) => n + (t.size_bytes ?? 0), 0);
      const budget = opts.maxUploadBytes - received;
      const byBudget = budget < opts.maxTrackBytes;
      const guard = new TrackGuard(label, Math.min(opts.maxTrackBytes, budget));
      const offset = manifest.tracks[index]!.offset_seconds;
      const probe = opts.probe;
      // the running figure: the upload stops the moment the track passes a length limit
      const tap = probe?.tap(
        () => guard.format,
        (seconds) => (seconds > probe.limits.maxTrackSeconds || offset + seconds > probe.limits.maxRecordingSeconds ? durationProblem(label, seconds, offset, probe.limits) : undefined),
      );
      const out = tap ? tap.stream : guard;
      // the guard holds bytes back until it has judged the format, so a refused file never reaches storage
      const stored = opts.sink(key, out, "application/octet-stream").catch((err: unknown) => {
        out.destroy(err as Error); // unblocks the pipeline below
        throw err;
      });
      const piped = tap ? pipeline(part.file, guard, tap.stream) : pipeline(part.file, guard);
      const [pipeResult, storeResult] = await Promise.allSettled([piped, stored]);
      if (pipeResult.status === "rejected" || storeResult.status === "rejected") {
        // the guard's own verdict explains the failure best; then the storage error; then the source's
        const reasons = [pipeResult, storeResult].filter((r): r is PromiseRejectedResult => r.status === "rejected").map((r) => r.reason as unknown);
        const verdict =
          reasons.find((r) => r instanceof TooLargeError || r instanceof NotAudioError || r instanceof EmptyTrackError || r instanceof AudioLimitError) ?? reasons[0];
        if (verdict instanceof TooLargeError && byBudget) throw uploadTooLarge(opts.maxUploadBytes);
        throw trackError(verdict, label, opts.clientGone());
      }
      if (tap && probe) {
        // the whole track has passed: its exact length against every limit, the minimum included
        const v = await tap.verdict;
        if (v.unreadable) throw new ApiError(415, "unsupported_media_type", `${label} could not be read as ${guard.format ?? "audio"} past its first bytes`);
        const problem = durationProblem(label, v.seconds, offset, probe.limits);
        if (problem) throw new ApiError(422, problem.code, problem.message);
      }
      const row: TrackRow = {
        track_index: index,
        participant: manifest.tracks[index]!.participant,
        offset_seconds: manifest.tracks[index]!.offset_seconds,
        source_key: key,
        owned: true,
        filename: part.filename,
        size_bytes: guard.bytes,
        format: guard.format ?? null,
      };
      tracks.push(row);
      opts.onTrackStored?.(row);
    }
  } catch (err) {
    if (err instanceof ApiError || err instanceof ClientGoneError) throw err;
    const code = (err as { code?: string })?.code;
    if (opts.clientGone() || code === "FST_REQ_PREMATURE_CLOSE") throw new ClientGoneError("the client disconnected during the upload");
    if (code === "FST_INVALID_JSON_FIELD_ERROR") throw badRequest("invalid_manifest", "manifest is not valid JSON");
    if (code === "FST_FILES_LIMIT") throw badRequest("track_count_mismatch", "more files were sent than the manifest lists");
    if (code === "FST_PARTS_LIMIT" || code === "FST_FIELDS_LIMIT") throw badRequest("too_many_parts", "the form has too many parts");
    if (code === "FST_REQ_FILE_TOO_LARGE") throw new ApiError(413, "track_too_large", "a track is larger than the limit");
    if (/Unexpected end of (multipart|form)|Malformed|boundary/i.test(String((err as Error)?.message))) {
      throw badRequest("invalid_multipart", `the multipart body is malformed: ${(err as Error).message}`);
    }
    throw err;
  }
  if (skipping && manifest) return { manifest, tracks, skipped: true };
  if (!manifest) throw badRequest(tracks.length ? "missing_manifest" : "no_tracks", "the form has no manifest field (and so no tracks)");
  if (tracks.length !== manifest.tracks.length) {
    throw badRequest(
      tracks.length === 0 ? "no_tracks" : "track_count_mismatch",
      `the manifest lists ${manifest.tracks.length} track(s) but ${tracks.length} file(s) were sent`,
    );
  }
  return { manifest, tracks };
}
