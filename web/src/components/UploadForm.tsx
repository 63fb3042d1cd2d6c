/**
 * New recording: drop or pick audio files; for each a participant name (from the file name
 * at first) and a start offset; the language; then one upload with a progress bar per file
 * and a cancel button. The form's own checks and the API's refusals are shown next to the
 * field they name.
 */
import { useId, useRef, useState, type DragEvent, type FormEvent } from "react";
import { ApiError, type Accepted } from "../api/client";
import { fieldErrorsFromApi, participantFromFileName, perFileProgress, validateDraft, type FieldErrors, type TrackDraft, type Uploader } from "../lib/upload";

export interface UploadFormProps {
  upload: Uploader;
  onCreated(created: Accepted): void;
}

export function UploadForm({ upload, onCreated }: UploadFormProps) {
  const [tracks, setTracks] = useState<TrackDraft[]>([]);
  const [language, setLanguage] = useState("en");
  const [errors, setErrors] = useState<FieldErrors>({});
  const [progress, setProgress] = useState<number[] | null>(null);
  const [dragging, setDragging] = useState(false);
  const abort = useRef<AbortController | null>(null);
  const fileInput = useRef<HTMLInputElement>(null);
  const ids = useId();

  const addFiles = (files: FileList | File[]): void => {
    const list = [...files].filter((f) => f.type === "" || f.type.startsWith("audio/") || f.type.startsWith("video/"));
    setTracks((prev) => [...prev, ...list.map((file) => ({ file, participant: participantFromFileName(file.name), offset: "0" }))]);
    setErrors({});
  };
  const update = (i: number, patch: Partial<TrackDraft>): void => setTracks((prev) => prev.map((t, j) => (j === i ? { ...t, ...patch } : t)));
  const remove = (i: number): void => {
    setTracks((prev) => prev.filter((_, j) => j !== i));
    setErrors({});
  };

  const submit = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    const found = validateDraft(language, tracks);
    setErrors(found);
    if (Object.keys(found).length) return;
    const ctl = new AbortController();
    abort.current = ctl;
    const sizes = tracks.map((t) => t.file.size);
    setProgress(sizes.map(() => 0));
    try {
      const created = await upload(
        { language, tracks: tracks.map((t) => ({ file: t.file, participant: t.participant.trim(), offset_seconds: Number(t.offset) })) },
        (sent, total) => setProgress(perFileProgress(sizes, sent, total)),
        ctl.signal,
      );
      onCreated(created);
    } catch (err) {
      if ((err as Error).name === "AbortError") setErrors({ form: "Upload cancelled: nothing was kept." });
      else if (err instanceof ApiError) setErrors(fieldErrorsFromApi(err));
      else setErrors({ form: (err as Error).message });
    } finally {
      abort.current = null;
      setProgress(null);
    }
  };

  const onDrop = (e: DragEvent): void => {
    e.preventDefault();
    setDragging(false);
    if (e.dataTransfer.files.length) addFiles(e.dataTransfer.files);
  };
  const busy = progress !== null;
  const err = (field: string) =>
    errors[field] ? (
      <span className="field-error" id={`${ids}-${field}`} role="alert">
        {errors[field]}
      </span>
    ) : null;
  const described = (field: string) => (errors[field] ? { "aria-invalid": true, "aria-describedby": `${ids}-${field}` } : {});

  return (
    <form className="upload" onSubmit={submit} noValidate aria-label="New recording">
      <div
        className={dragging ? "dropzone dragging" : "dropzone"}
        onDragOver={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={onDrop}
      >
        <p>Drop one audio file per participant here, or</p>
        <label className="button">
          Choose audio files
          <input
            ref={fileInput}
            type="file"
            accept="audio/*,video/webm,.wav,.mp3,.ogg,.opus,.flac,.m4a,.webm"
            multiple
            disabled={busy}
            className="visually-hidden"
            onChange={(e) => {
              if (e.target.files) addFiles(e.target.files);
              e.target.value = "";
            }}
          />
        </label>
      </div>

      {tracks.length > 0 && (
        <ol className="tracks" aria-label="Tracks">
          {tracks.map((t, i) => (
            <li key={i} className="track-row">
              <div className="file-name" title={t.file.name}>
                {t.file.name} <span className="muted">({(t.file.size / 1024 / 1024).toFixed(1)} MB)</span>
                {err(`tracks.${i}.file`)}
              </div>
              <label>
                Participant
                <input
                  name={`tracks.${i}.participant`}
                  value={t.participant}
                  disabled={busy}
                  maxLength={120}
                  onChange={(e) => update(i, { participant: e.target.value })}
                  {...described(`tracks.${i}.participant`)}
                />
                {err(`tracks.${i}.participant`)}
              </label>
              <label>
                Starts at (s)
                <input
                  name={`tracks.${i}.offset_seconds`}
                  inputMode="decimal"
                  value={t.offset}
                  disabled={busy}
                  onChange={(e) => update(i, { offset: e.target.value })}
                  {...described(`tracks.${i}.offset_seconds`)}
                />
                {err(`tracks.${i}.offset_seconds`)}
              </label>
              {progress ? (
                <progress max={1} value={progress[i] ?? 0} aria-label={`Upload of ${t.file.name}`} />
              ) : (
                <button type="button" className="secondary" onClick={() => remove(i)} aria-label={`Remove ${t.file.name}`}>
                  Remove
                </button>
              )}
            </li>
          ))}
        </ol>
      )}

      <label className="language">
        Language
        <input name="language" value={language} disabled={busy} onChange={(e) => setLanguage(e.target.value)} {...described("language")} />
        {err("language")}
      </label>
      {err("form")}
      <div className="actions">
        <button type="submit" disabled={busy}>
          {busy ? "Uploading…" : "Upload and transcribe"}
        </button>
        {busy && (
          <button type="button" className="secondary" onClick={() => abort.current?.abort()}>
            Cancel upload
          </button>
        )}
      </div>
    </form>
  );
}
