/**
 * The recordings, newest first, a page at a time (the API's cursor; a stack of cursors for
 * "Previous"). While any shown recording is queued or processing the page asks again every
 * few seconds, so their status stays live.
 */
import { useEffect, useState } from "react";
import type { Session } from "../App";
import { ApiError, unwrap, type RecordingList } from "../api/client";
import { Link } from "../lib/router";
import { clock } from "../lib/transcript";

const PAGE = 20;
const POLL_MS = 3000;

export function RecordingsPage({ session }: { session: Session }) {
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const [page, setPage] = useState<RecordingList | null>(null);
  const [error, setError] = useState<string | null>(null);
  const cursor = cursors[cursors.length - 1];

  useEffect(() => {
    let stop = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ctl = new AbortController();
    const load = async (): Promise<void> => {
      try {
        const data = unwrap(await session.api.GET("/v1/recordings", { params: { query: { limit: PAGE, ...(cursor ? { cursor } : {}) } }, signal: ctl.signal }));
        if (stop) return;
        setPage(data);
        setError(null);
        if (data.items.some((r) => r.status === "queued" || r.status === "processing")) timer = setTimeout(load, POLL_MS);
      } catch (err) {
        if (stop) return;
        if (err instanceof ApiError && err.status === 401) return session.expired();
        setError((err as Error).message);
        timer = setTimeout(load, POLL_MS * 3);
      }
    };
    void load();
    return () => {
      stop = true;
      ctl.abort();
      clearTimeout(timer);
    };
  }, [session, cursor]);

  return (
    <section>
      <div className="title-row">
        <h1>Recordings</h1>
        <Link to="/new" className="button">
          New recording
        </Link>
      </div>
      {error && (
        <p className="error-text" role="alert">
          Could not load the recordings: {error}
        </p>
      )}
      {page && page.items.length === 0 && cursors.length === 1 && (
        <div className="empty">
          <p>No recordings yet.</p>
          <p>
            Start one with <Link to="/new">New recording</Link>: drop one audio file per participant (each person's own microphone), name them, and upload. You will see it
            being transcribed here.
          </p>
        </div>
      )}
      {page && page.items.length > 0 && (
        <div className="table-scroll">
          <table className="recordings">
            <caption className="visually-hidden">Recordings, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Title</th>
                <th scope="col">Status</th>
                <th scope="col">Duration</th>
                <th scope="col">Participants</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {page.items.map((r) => (
                <tr key={r.id} data-id={r.id}>
                  <td>
                    <Link to={`/recordings/${r.id}`}>{r.title ?? (r.status === "completed" ? "Untitled" : `Recording ${r.id.slice(0, 8)}`)}</Link>
                    {r.error && <div className="error-text small">{r.error}</div>}
                  </td>
                  <td>
                    <span className={`badge ${r.status}`}>{r.status}</span>
                  </td>
                  <td>{r.duration === null ? "—" : clock(r.duration)}</td>
                  <td>{r.participants.join(", ")}</td>
                  <td>
                    <time dateTime={r.created_at}>{new Date(r.created_at).toLocaleString()}</time>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {(cursors.length > 1 || page?.next_cursor) && (
        <nav className="pager" aria-label="Pages">
          <button type="button" className="secondary" disabled={cursors.length === 1} onClick={() => setCursors((c) => c.slice(0, -1))}>
            Previous
          </button>
          <span>Page {cursors.length}</span>
          <button type="button" className="secondary" disabled={!page?.next_cursor} onClick={() => page?.next_cursor && setCursors((c) => [...c, page.next_cursor!])}>
            Next
          </button>
        </nav>
      )}
    </section>
  );
}
