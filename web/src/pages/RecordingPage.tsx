/**
 * One recording. While it runs: the pipeline's steps and each track's progress from the
 * event stream (read over fetch with the Authorization header, lib: api/sse.ts), errors as
 * they happen, retry once it failed. Once completed: title, summaries, topics and action
 * items (click → seek), the transcript by speaker turns, the mixdown with its waveform
 * (fetched with the header into a Blob URL: an <audio src> cannot send one), downloads, the
 * shadow comparison, and delete with a confirmation.
 */
import { useCallback, useEffect, useRef, useState } from "react";
import type { Session } from "../App";
import { ApiError, fetchBlob, unwrap, type RecordingView, type StepProgress, type TranscriptFormat, type Waveform } from "../api/client";
import { followEvents } from "../api/sse";
import { AudioPlayer } from "../components/AudioPlayer";
import { StepsView } from "../components/StepsView";
import { Transcript } from "../components/Transcript";
import { Link, useNav } from "../lib/router";
import { clock, duration, speakerColour } from "../lib/transcript";

interface ProgressEvent {
  step: string;
  track_index?: number;
  status: string;
  duration_ms?: number;
  worker_id?: string;
  message?: string;
  code?: string;
  at?: string;
  completed_steps?: number;
  total_steps?: number;
}

const stepKey = (step: string, track: number | null | undefined): string => `${step}:${track ?? -1}`;

/** The step list after one more event (the latest state of each step and track). */
export function applyEvent(steps: readonly StepProgress[], e: ProgressEvent): StepProgress[] {
  const key = stepKey(e.step, e.track_index);
  const prev = steps.find((s) => stepKey(s.step, s.track_index) === key);
  const next: StepProgress = {
    step: e.step,
    track_index: e.track_index ?? null,
    status: e.status,
    attempts: (prev?.attempts ?? 0) + (e.status === "started" ? 1 : 0),
    duration_ms: e.duration_ms ?? (e.status === "started" ? null : (prev?.duration_ms ?? null)),
    worker_id: e.worker_id ?? prev?.worker_id ?? null,
    message: e.message ?? null,
    ...(e.code ? { code: e.code } : {}),
  };
  return prev ? steps.map((s) => (s === prev ? next : s)) : [...steps, next];
}

const FORMATS: { format: TranscriptFormat; label: string; ext: string }[] = [
  { format: "json", label: "JSON", ext: "json" },
  { format: "text", label: "Text", ext: "txt" },
  { format: "vtt", label: "WebVTT", ext: "vtt" },
  { format: "srt", label: "SRT", ext: "srt" },
];

export function RecordingPage({ session, id }: { session: Session; id: string }) {
  const { navigate } = useNav();
  const [view, setView] = useState<RecordingView | null>(null);
  const [missing, setMissing] = useState(false);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [steps, setSteps] = useState<StepProgress[]>([]);
  const [counts, setCounts] = useState<{ done: number; total: number } | null>(null);
  const [live, setLive] = useState<string[]>([]);
  const [streamNote, setStreamNote] = useState<string | null>(null);
  const [generation, setGeneration] = useState(0);
  const [audioUrl, setAudioUrl] = useState<string | null>(null);
  const [waveform, setWaveform] = useState<Waveform | null>(null);
  const [mediaError, setMediaError] = useState<string | null>(null);
  const [time, setTime] = useState(0);
  const [busy, setBusy] = useState<string | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const audio = useRef<HTMLAudioElement | null>(null);
  // the last event seen: after a retry the stream resumes there, so old failures are not shown again
  const lastSeen = useRef<string | undefined>(undefined);

  const fail = useCallback(
    (err: unknown, set: (s: string) => void) => {
      if (err instanceof ApiError && err.status === 401) return session.expired();
      set((err as Error).message);
    },
    [session],
  );

  // the recording, then its event stream while it is not finished
  useEffect(() => {
    const ctl = new AbortController();
    const load = async (): Promise<RecordingView | undefined> => {
      try {
        const v = unwrap(await session.api.GET("/v1/recordings/{id}", { params: { path: { id } }, signal: ctl.signal }));
        if (ctl.signal.aborted) return undefined;
        setView(v);
        setSteps(v.progress.steps);
        setCounts({ done: v.progress.completed_steps, total: v.progress.total_steps });
        return v;
      } catch (err) {
        if (ctl.signal.aborted) return undefined;
        if (err instanceof ApiError && err.status === 404) setMissing(true);
        else fail(err, setLoadError);
        return undefined;
      }
    };
    void (async () => {
      const v = await load();
      if (!v || v.status === "completed" || v.status === "failed") return;
      await followEvents({
        key: session.key,
        url: `/v1/recordings/${encodeURIComponent(id)}/events`,
        signal: ctl.signal,
        ...(lastSeen.current ? { lastEventId: lastSeen.current } : {}),
        onMessage: (m) => {
          setStreamNote(null);
          if (m.id) lastSeen.current = m.id;
          let data: ProgressEvent & { status: string; error?: string };
          try {
            data = JSON.parse(m.data) as ProgressEvent;
          } catch {
            return;
          }
          if (m.event === "progress") {
            if (data.step !== "pipeline") {
              setSteps((s) => applyEvent(s, data));
              // a worker has picked it up (the API says processing from its first task event)
              setView((v) => (v && v.status === "queued" ? { ...v, status: "processing" } : v));
            }
            if (typeof data.completed_steps === "number" && typeof data.total_steps === "number") setCounts({ done: data.completed_steps, total: data.total_steps });
            if (data.status === "failed" || data.status === "retrying") {
              const who = data.track_index !== undefined ? ` (track ${data.track_index + 1})` : "";
              setLive((l) => [...l, `${data.step}${who} ${data.status}: ${data.message ?? data.code ?? "no reason given"}`]);
            }
          } else if (m.event === "status") {
            setView((v) => (v ? { ...v, status: data.status as RecordingView["status"] } : v));
          }
        },
        onError: (err, willRetry) => {
          if (err instanceof ApiError && err.status === 401) return session.expired();
          setStreamNote(willRetry ? "Connection to the progress stream lost; reconnecting…" : `Progress stream refused: ${err.message}`);
        },
      });
      if (!ctl.signal.aborted) await load();
    })();
    return () => ctl.abort();
  }, [session, id, generation, fail]);

  // the mixdown and its waveform, once completed
  const completed = view?.status === "completed";
  useEffect(() => {
    if (!completed) return;
    const ctl = new AbortController();
    let url: string | null = null;
    fetchBlob(session.key, `/v1/recordings/${encodeURIComponent(id)}/audio`, ctl.signal)
      .then((blob) => {
        url = URL.createObjectURL(blob);
        setAudioUrl(url);
      })
      .catch((err: unknown) => !ctl.signal.aborted && fail(err, (m) => setMediaError(`The audio could not be loaded: ${m}`)));
    session.api
      .GET("/v1/recordings/{id}/waveform", { params: { path: { id } }, signal: ctl.signal })
      .then((r) => r.response.ok && r.data && setWaveform(r.data))
      .catch(() => undefined);
    return () => {
      ctl.abort();
      if (url) URL.revokeObjectURL(url);
    };
  }, [completed, session, id, fail]);

  const seek = useCallback((seconds: number) => {
    const a = audio.current;
    if (!a) return;
    a.currentTime = seconds;
    setTime(seconds);
  }, []);

  const download = async (format: TranscriptFormat, ext: string): Promise<void> => {
    setActionError(null);
    try {
      const blob = await fetchBlob(session.key, `/v1/recordings/${encodeURIComponent(id)}/transcript?format=${format}`);
      const url = URL.createObjectURL(blob);
      const a = document.createElement("a");
      a.href = url;
      a.download = `${(view?.result?.title ?? id).replace(/[^\w .-]+/g, "").trim().slice(0, 80) || id}.${ext}`;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (err) {
      fail(err, setActionError);
    }
  };

  const retry = async (): Promise<void> => {
    setBusy("retry");
    setActionError(null);
    try {
      unwrap(await session.api.POST("/v1/recordings/{id}/retry", { params: { path: { id } } }));
      setLive([]);
      setGeneration((g) => g + 1);
    } catch (err) {
      fail(err, setActionError);
    } finally {
      setBusy(null);
    }
  };

  const remove = async (): Promise<void> => {
    setBusy("delete");
    setActionError(null);
    try {
      const r = await session.api.DELETE("/v1/recordings/{id}", { params: { path: { id } } });
      if (!r.response.ok) throw new ApiError(r.response.status, (r.error as { error?: string })?.error ?? "http_error", (r.error as { message?: string })?.message ?? `HTTP ${r.response.status}`);
      navigate("/", { replace: true });
    } catch (err) {
      fail(err, setActionError);
      setBusy(null);
    }
  };

  if (missing) {
    return (
      <section>
        <h1>Recording not found</h1>
        <p>
          It does not exist, or it belongs to another key. <Link to="/">Back to the recordings</Link>
        </p>
      </section>
    );
  }
  if (!view) return <section>{loadError ? <p className="error-text" role="alert">Could not load the recording: {loadError}</p> : <p className="muted">Loading…</p>}</section>;

  const result = view.result;
  const names = view.tracks.map((t) => t.participant);
  const running = view.status === "queued" || view.status === "processing";
  const failedTracks = steps.filter((s) => s.status === "failed" && s.track_index !== null);

  return (
    <article className="recording">
      <p>
        <Link to="/">← Recordings</Link>
      </p>
      <div className="title-row">
        <h1>{result?.title ?? `Recording ${id.slice(0, 8)}`}</h1>
        <span className={`badge ${view.status}`} role="status" aria-label={`Status: ${view.status}`}>
          {view.status}
        </span>
      </div>
      <p className="muted">
        {names.map((n, i) => (
          <span key={i} className="chip" style={{ borderColor: speakerColour(i) }}>
            {n}
          </span>
        ))}{" "}
        · created <time dateTime={view.created_at}>{new Date(view.created_at).toLocaleString()}</time>
        {result && <> · {clock(result.duration)}</>}
      </p>

      {view.status === "failed" && (
        <div className="failure" role="alert">
          <p>
            <strong>Failed</strong>
            {view.failed_step && <> in {view.failed_step}</>}: {view.error ?? "no reason was given"}
          </p>
          <button type="button" onClick={retry} disabled={busy !== null}>
            {busy === "retry" ? "Retrying…" : "Retry from the failed step"}
          </button>
        </div>
      )}
      {view.status === "completed" && (view.warnings ?? []).length > 0 && (
        <div className="warning" role="status" aria-label="Warnings">
          <p>
            <strong>Completed without {view.warnings.length === 1 ? "one track" : `${view.warnings.length} tracks`}</strong>
          </p>
          <ul>
            {view.warnings.map((w, i) => (
              <li key={i}>{w.message}</li>
            ))}
          </ul>
        </div>
      )}
      {actionError && (
        <p className="error-text" role="alert">
          {actionError}
        </p>
      )}

      {(running || view.status === "failed") && (
        <section aria-label="Progress">
          <h2>Progress</h2>
          {counts && (
            <p>
              <progress max={Math.max(1, counts.total)} value={Math.min(counts.done, counts.total)} aria-label="Steps completed" /> {counts.done} of {counts.total} steps
            </p>
          )}
          {streamNote && <p className="muted">{streamNote}</p>}
          {live.length > 0 && (
            <ul className="live-errors" aria-label="Errors" aria-live="polite">
              {live.map((l, i) => (
                <li key={i} className="error-text">
                  {l}
                </li>
              ))}
            </ul>
          )}
          <StepsView steps={steps} participants={names} />
        </section>
      )}

      {completed && result && (
        <>
          {failedTracks.length > 0 && (
            <p className="notice" role="status">
              Partial result: {failedTracks.map((s) => `${names[s.track_index!] ?? `track ${s.track_index! + 1}`} (${s.step} failed${s.message ? `: ${s.message}` : ""})`).join("; ")}.
            </p>
          )}
          <section aria-label="Player" className="sticky-player">
            {audioUrl ? (
              <AudioPlayer src={audioUrl} peaks={waveform?.peaks ?? null} duration={waveform?.duration ?? result.duration} currentTime={time} audioRef={audio} onTime={setTime} onSeek={seek} />
            ) : (
              <p className="muted">{mediaError ?? "Loading the audio…"}</p>
            )}
          </section>
          <div className="columns">
            <section aria-label="Transcript" className="main-col">
              <h2>Transcript</h2>
              <Transcript words={result.words} participants={result.participants} currentTime={time} onSeek={seek} />
            </section>
            <aside className="side-col">
              <section>
                <h2>Summary</h2>
                <p>{result.short_summary || <span className="muted">No summary.</span>}</p>
                {result.long_summary && result.long_summary !== result.short_summary && (
                  <details>
                    <summary>Longer summary</summary>
                    <p className="pre-line">{result.long_summary}</p>
                  </details>
                )}
              </section>
              <section>
                <h2>Topics</h2>
                {result.topics.length === 0 ? (
                  <p className="muted">No topics.</p>
                ) : (
                  <ol className="topics">
                    {result.topics.map((t) => (
                      <li key={t.id}>
                        <button type="button" className="link" onClick={() => seek(t.timestamp)}>
                          <span className="time">{clock(t.timestamp)}</span> {t.title}
                        </button>
                        <div className="muted small">{t.summary}</div>
                      </li>
                    ))}
                  </ol>
                )}
              </section>
              {result.action_items.length > 0 && (
                <section>
                  <h2>Action items</h2>
                  <ul className="actions-list">
                    {result.action_items.map((a, i) => (
                      <li key={i}>
                        <button type="button" className="link" onClick={() => seek(a.start)}>
                          <span className="time">{clock(a.start)}</span>
                        </button>{" "}
                        {a.text} <span className="muted">— {result.participants.find((p) => p.speaker === a.speaker)?.name ?? `speaker ${a.speaker + 1}`}</span>
                      </li>
                    ))}
                  </ul>
                </section>
              )}
              <section>
                <h2>Download</h2>
                <div className="button-row">
                  {FORMATS.map((f) => (
                    <button key={f.format} type="button" className="secondary" onClick={() => void download(f.format, f.ext)}>
                      {f.label}
                    </button>
                  ))}
                </div>
              </section>
              <section>
                <h2>Engines</h2>
                <p>
                  <Link to={`/recordings/${id}/shadow`}>Conductor vs BullMQ comparison</Link>
                </p>
                <details>
                  <summary>Step durations</summary>
                  <StepDurations steps={steps} names={names} />
                </details>
              </section>
            </aside>
          </div>
        </>
      )}

      <section className="danger" aria-label="Delete">
        {!confirmDelete ? (
          <button type="button" className="danger" onClick={() => setConfirmDelete(true)} disabled={busy !== null}>
            Delete recording
          </button>
        ) : (
          <div role="alertdialog" aria-label="Confirm deletion" className="confirm">
            <p>Delete this recording, its audio and its transcript? This cannot be undone.</p>
            <button type="button" className="danger" onClick={remove} disabled={busy !== null} autoFocus>
              {busy === "delete" ? "Deleting…" : "Yes, delete it"}
            </button>{" "}
            <button type="button" className="secondary" onClick={() => setConfirmDelete(false)} disabled={busy !== null}>
              Keep it
            </button>
          </div>
        )}
      </section>
    </article>
  );
}

function StepDurations({ steps, names }: { steps: readonly StepProgress[]; names: readonly string[] }) {
  return (
    <ul className="small">
      {steps
        .filter((s) => s.step !== "pipeline")
        .map((s) => (
          <li key={stepKey(s.step, s.track_index)}>
            {s.step}
            {s.track_index !== null && ` (${names[s.track_index] ?? s.track_index + 1})`}: {duration(s.duration_ms)}
          </li>
        ))}
    </ul>
  );
}
