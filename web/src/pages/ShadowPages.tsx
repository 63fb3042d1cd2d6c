/** The engines compared: one recording's comparison, and the summary across recordings (the operator's). */
import { useEffect, useState } from "react";
import type { Session } from "../App";
import { ApiError, unwrap, type ShadowSummary, type ShadowView } from "../api/client";
import { ShadowSummaryView, ShadowTable } from "../components/ShadowTable";
import { Link } from "../lib/router";

const POLL_MS = 3000;

export function ShadowPage({ session, id }: { session: Session; id: string }) {
  const [view, setView] = useState<ShadowView | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let stop = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ctl = new AbortController();
    const load = async (): Promise<void> => {
      try {
        const v = unwrap(await session.api.GET("/v1/recordings/{id}/shadow", { params: { path: { id } }, signal: ctl.signal }));
        if (stop) return;
        setView(v);
        setError(null);
        if (v.status === "running") timer = setTimeout(load, POLL_MS);
      } catch (err) {
        if (stop) return;
        if (err instanceof ApiError && err.status === 401) return session.expired();
        setError(err instanceof ApiError && err.status === 404 ? "This recording was not run on the shadow engine (shadow mode is off, or it was not sampled)." : (err as Error).message);
      }
    };
    void load();
    return () => {
      stop = true;
      ctl.abort();
      clearTimeout(timer);
    };
  }, [session, id]);
  return (
    <section>
      <p>
        <Link to={`/recordings/${id}`}>← Back to the recording</Link>
      </p>
      <h1>Conductor vs BullMQ</h1>
      {error && <p className="muted" role="status">{error}</p>}
      {!view && !error && <p className="muted">Loading…</p>}
      {view && <ShadowTable view={view} />}
    </section>
  );
}

export function ShadowSummaryPage({ session }: { session: Session }) {
  const [summary, setSummary] = useState<ShadowSummary | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const ctl = new AbortController();
    session.api
      .GET("/v1/shadow/summary", { signal: ctl.signal })
      .then((r) => setSummary(unwrap(r)))
      .catch((err: unknown) => {
        if (ctl.signal.aborted) return;
        if (err instanceof ApiError && err.status === 401) return session.expired();
        setError(err instanceof ApiError && err.status === 403 ? "The summary across all recordings is for the operator (API_TOKEN); an API key sees each of its recordings' comparison on the recording's page." : (err as Error).message);
      });
    return () => ctl.abort();
  }, [session]);
  return (
    <section>
      <h1>Engines: Conductor vs BullMQ</h1>
      {error && <p className="muted" role="status">{error}</p>}
      {!summary && !error && <p className="muted">Loading…</p>}
      {summary && <ShadowSummaryView summary={summary} />}
    </section>
  );
}
