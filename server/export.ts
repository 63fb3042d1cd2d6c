/**
 * `GET /v1/recordings/:id/transcript?format=zip`: one archive of a completed recording,
 * streamed (yazl): the Result as JSON, the transcript in every text format, the mixdown and
 * every uploaded track. Audio is copied from storage into the response one object at a
 * time (each opened only when the archive reaches it, stored without recompression), so the
 * API holds a few chunks, never a file.
 */
import { PassThrough, type Readable } from "node:stream";
import yazl from "yazl";
import type { Result } from "../pipeline/contracts/index.ts";
import type { Storage } from "../pipeline/ports.ts";
import type { TrackRow } from "../adapters/postgres/recordings-repo.ts";
import { renderTranscript } from "./transcript.ts";

/** A name safe inside a zip: no path separators, no dot segments, no control characters. */
export const zipName = (s: string): string =>
  s
    .replace(/[\u0000-\u001f\u007f/\\:*?"<>|]/g, "_")
    .replace(/^\.+/, "_")
    .slice(0, 120) || "track";

const extensionOf = (t: TrackRow): string => {
  const fromName = t.filename ? /\.([A-Za-z0-9]{1,8})$/.exec(t.filename)?.[1] : undefined;
  return (fromName ?? t.format ?? "audio").toLowerCase();
};

/** The archive's entries: what `unzip -l` shows (the test checks them). */
export function archiveEntries(result: Result, tracks: TrackRow[], hasMixdown: boolean): string[] {
  return [
    "result.json",
    "transcript.json",
    "transcript.txt",
    "transcript.vtt",
    "transcript.srt",
    "transcript.md",
    ...(hasMixdown ? ["audio/mixdown.mp3"] : []),
    ...tracks.map((t) => `audio/tracks/${t.track_index}-${zipName(t.participant)}.${extensionOf(t)}`),
  ];
}

/**
 * The archive as a stream. An object that cannot be read mid-way ends the stream with an
 * error (the client sees a truncated download, the log says why): the status line has
 * been sent by then.
 */
export function streamArchive(opts: { result: Result; tracks: TrackRow[]; audioKey: string | null; storage: Storage; onError(err: unknown): void }): Readable {
  const zip = new yazl.ZipFile();
  const [resultJson, json, txt, vtt, srt, md] = [
    Buffer.from(JSON.stringify(opts.result, null, 2)),
    Buffer.from(renderTranscript(opts.result, "json")),
    Buffer.from(renderTranscript(opts.result, "text")),
    Buffer.from(renderTranscript(opts.result, "vtt")),
    Buffer.from(renderTranscript(opts.result, "srt")),
    Buffer.from(renderTranscript(opts.result, "md")),
  ];
  const names = archiveEntries(opts.result, opts.tracks, opts.audioKey !== null);
  let i = 0;
  for (const b of [resultJson, json, txt, vtt, srt, md]) zip.addBuffer(b, names[i++]!);
  const out = new PassThrough();
  const lazy = (key: string, name: string): void => {
    zip.addReadStreamLazy(name, { compress: false }, (cb) => {
      opts.storage.stream(key).then(
        (s) => {
          s.on("error", (err) => {
            opts.onError(err);
            out.destroy(err as Error);
          });
          cb(null, s);
        },
        (err: unknown) => {
          opts.onError(err);
          out.destroy(err as Error);
          cb(err, new PassThrough());
        },
      );
    });
  };
  if (opts.audioKey) lazy(opts.audioKey, names[i++]!);
  for (const t of opts.tracks) lazy(t.source_key, names[i++]!);
  zip.end();
  zip.outputStream.pipe(out);
  return out;
}
