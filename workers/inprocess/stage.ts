/**
 * Staging a `trackscribe process` manifest: every track file is checked first (exists,
 * is a regular readable file, not empty, holds an audio stream ffprobe can read) and
 * only when all of them pass are they copied into storage as
 * `recordings/{id}/tracks/{index}-{safe name}`. A bad manifest therefore leaves nothing
 * behind; a copy that fails half-way removes what it had written.
 */
import { execFile } from "node:child_process";
import { constants } from "node:fs";
import { access, stat } from "node:fs/promises";
import path from "node:path";
import { PipelineInput, type FileManifest } from "../../pipeline/contracts/index.ts";
import type { Storage } from "../../pipeline/ports.ts";
import { safeFileName } from "../../pipeline/steps/keys.ts";

export class ManifestFileError extends Error {
  override readonly name = "ManifestFileError";
  constructor(readonly problems: string[]) {
    super(problems.length === 1 ? problems[0]! : `${problems.length} track files are unusable:\n  ${problems.join("\n  ")}`);
  }
}

/** Resolves to undefined when the file holds audio, or to the reason it does not. */
export type AudioProbe = (file: string) => Promise<string | undefined>;

/** ffprobe: the file must parse and contain at least one audio stream. */
export const ffprobeAudio: AudioProbe = (file) =>
  new Promise((resolve) => {
    execFile(
      "ffprobe",
      ["-v", "error", "-select_streams", "a", "-show_entries", "stream=codec_name", "-of", "csv=p=0", file],
      { timeout: 30_000, maxBuffer: 1 << 20 },
      (err, stdout, stderr) => {
        if (err) {
          const why = String(stderr).trim().split("\n").pop() || err.message;
          resolve(`is not an audio file ffmpeg can read (${why})`);
        } else if (!String(stdout).trim()) resolve("contains no audio stream");
        else resolve(undefined);
      },
    );
  });

/** A file name safe as the last part of a storage key. */
export { safeFileName };

export async function checkTrackFiles(manifest: FileManifest, manifestDir: string, probe: AudioProbe = ffprobeAudio): Promise<string[]> {
  const files = manifest.tracks.map((t) => path.resolve(manifestDir, t.path));
  const problems = await Promise.all(
    manifest.tracks.map(async (t, i): Promise<string | undefined> => {
      const file = files[i]!;
      const label = `track ${i} (${t.participant}): ${t.path}`;
      let size: number;
      try {
        const s = await stat(file);
        if (!s.isFile()) return `${label} is not a regular file`;
        size = s.size;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        return code === "ENOENT" ? `${label} does not exist (looked for ${file})` : `${label} cannot be read (${code ?? String(err)})`;
      }
      try {
        await access(file, constants.R_OK);
      } catch (err) {
        return `${label} is not readable (${(err as NodeJS.ErrnoException).code ?? String(err)})`;
      }
      if (size === 0) return `${label} is empty (0 bytes)`;
      const why = await probe(file);
      return why ? `${label} ${why}` : undefined;
    }),
  );
  return problems.filter((p): p is string => p !== undefined);
}

export async function stageManifest(
  manifest: FileManifest,
  storage: Storage,
  recordingId: string,
  manifestDir: string,
  opts: { namespace?: string; probe?: AudioProbe } = {},
): Promise<PipelineInput> {
  const problems = await checkTrackFiles(manifest, manifestDir, opts.probe);
  if (problems.length) throw new ManifestFileError(problems);
  const prefix = `recordings/${recordingId}/`;
  const tracks = manifest.tracks.map((t, i) => ({
    track_index: i,
    participant: t.participant,
    offset_seconds: t.offset_seconds,
    source_key: `${prefix}tracks/${i}-${safeFileName(t.path)}`,
  }));
  try {
    for (const [i, t] of tracks.entries()) await storage.putFile(t.source_key, path.resolve(manifestDir, manifest.tracks[i]!.path));
  } catch (err) {
    await storage.deletePrefix(prefix).catch(() => undefined);
    throw err;
  }
  return PipelineInput.parse({ recording_id: recordingId, language: manifest.language, namespace: opts.namespace ?? "inprocess", tracks });
}
