/**
 * The new-recording form's data and the one request that sends it: a multipart POST
 * /v1/recordings with the manifest first and one `track` part per file, in order. Sent with
 * XMLHttpRequest (fetch has no upload progress); the body's parts go out in order, so the
 * bytes sent so far say how far each file is.
 */
import { ApiError, apiError, type Accepted } from "../api/client";

export interface TrackDraft {
  file: File;
  participant: string;
  /** as typed: a number of seconds */
  offset: string;
}

export interface UploadRequest {
  language: string;
  tracks: { file: File; participant: string; offset_seconds: number }[];
}

export type Uploader = (req: UploadRequest, onProgress: (sent: number, total: number) => void, signal: AbortSignal) => Promise<Accepted>;

/** `alice_mic.wav` → "Alice mic". */
export function participantFromFileName(name: string): string {
  const base = name.replace(/\.[^.]+$/, "").replace(/[_\-.]+/g, " ").replace(/[<>\u0000-\u001f]/g, "").trim().slice(0, 80);
  return base ? base[0]!.toUpperCase() + base.slice(1) : "Speaker";
}

/** Field → message: `language`, `tracks.N.participant`, `tracks.N.offset_seconds`, `tracks.N.file`, `form`. */
export type FieldErrors = Record<string, string>;

/** What the form can say before sending anything (the API checks again, and more). */
export function validateDraft(language: string, tracks: readonly TrackDraft[]): FieldErrors {
  const errs: FieldErrors = {};
  if (!/^[a-z]{2}(-[A-Za-z]{2})?$/.test(language)) errs.language = "a language code like en or en-US";
  if (!tracks.length) errs.form = "add at least one audio file";
  const seen = new Map<string, number>();
  tracks.forEach((t, i) => {
    const name = t.participant.trim();
    if (!name) errs[`tracks.${i}.participant`] = "a name is needed";
    else if (name.length > 80) errs[`tracks.${i}.participant`] = "at most 80 characters";
    else if (/[<>\u0000-\u001f]/.test(name)) errs[`tracks.${i}.participant`] = "no < or > characters";
    else if (seen.has(name.toLowerCase())) errs[`tracks.${i}.participant`] = `the same name as track ${seen.get(name.toLowerCase())! + 1}`;
    else seen.set(name.toLowerCase(), i);
    const off = Number(t.offset);
    if (t.offset.trim() === "" || !Number.isFinite(off)) errs[`tracks.${i}.offset_seconds`] = "a number of seconds";
    else if (off < 0) errs[`tracks.${i}.offset_seconds`] = "0 or more";
    if (t.file.size === 0) errs[`tracks.${i}.file`] = "this file is empty";
  });
  return errs;
}

/**
 * The API's refusal, placed next to the field it names. The API's manifest errors read
 * `manifest is invalid: tracks.1.participant: …; language: …`; a track that starts too late
 * names `track N`; the rest belong to the whole form.
 */
export function fieldErrorsFromApi(err: ApiError): FieldErrors {
  const out: FieldErrors = {};
  if (err.code === "invalid_manifest" || err.code === "no_tracks") {
    const body = err.message.replace(/^manifest is invalid:\s*/, "");
    for (const part of body.split(/;\s+/)) {
      const m = /^(language|tracks\.(\d+)\.(participant|offset_seconds))(?:\.[^:]*)?:\s*(.*)$/.exec(part);
      if (m) out[m[1]!] = m[4]!;
    }
  } else if (err.code === "recording_too_long") {
    const m = /^track (\d+)\b/.exec(err.message);
    if (m) out[`tracks.${m[1]}.offset_seconds`] = err.message;
  } else if (["empty_track", "unsupported_media_type", "invalid_filename", "track_too_large"].includes(err.code)) {
    const m = /\btrack (\d+)\b/.exec(err.message);
    if (m) out[`tracks.${m[1]}.file`] = err.message;
  }
  if (!Object.keys(out).length) out.form = err.message;
  return out;
}

/** Per-file progress (0..1) from the bytes of the body sent so far. */
export function perFileProgress(sizes: readonly number[], sent: number, total: number): number[] {
  const files = sizes.reduce((a, b) => a + b, 0);
  // the form's own bytes (manifest, part headers) are spread evenly: close enough for a bar
  const overhead = Math.max(0, total - files) / Math.max(1, sizes.length + 1);
  let offset = overhead;
  return sizes.map((size) => {
    const p = size === 0 ? 1 : Math.min(1, Math.max(0, (sent - offset) / size));
    offset += size + overhead;
    return sent >= total && total > 0 ? 1 : p;
  });
}

/** The real uploader: XMLHttpRequest with the key in the Authorization header. */
export function xhrUploader(key: string): Uploader {
  return (req, onProgress, signal) =>
    new Promise<Accepted>((resolve, reject) => {
      const form = new FormData();
      form.append("manifest", JSON.stringify({ language: req.language, tracks: req.tracks.map((t) => ({ participant: t.participant, offset_seconds: t.offset_seconds })) }));
      for (const t of req.tracks) form.append("track", t.file, t.file.name);
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/v1/recordings");
      xhr.setRequestHeader("authorization", `Bearer ${key}`);
      xhr.responseType = "json";
      xhr.upload.onprogress = (e) => {
        if (e.lengthComputable) onProgress(e.loaded, e.total);
      };
      xhr.onload = () => {
        if (xhr.status === 202) resolve(xhr.response as Accepted);
        else reject(apiError(xhr.status, xhr.response));
      };
      xhr.onerror = () => reject(apiError(0, undefined));
      xhr.onabort = () => reject(new DOMException("the upload was cancelled", "AbortError"));
      signal.addEventListener("abort", () => xhr.abort(), { once: true });
      xhr.send(form);
    });
}

export { ApiError };
