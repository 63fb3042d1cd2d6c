/**
 * One recording's Conductor-vs-BullMQ comparison: the verdict and counts, every check per
 * step and track (matched / mismatched / ignored, with the detail of a mismatch), and the
 * step durations of both engines. The summary across recordings is ShadowSummaryView.
 */
import type { ShadowSummary, ShadowView } from "../api/client";
import { duration } from "../lib/transcript";

const trackLabel = (t: number | null): string => (t === null ? "—" : `#${t + 1}`);

export function ShadowTable({ view }: { view: ShadowView }) {
  const report = view.report;
  return (
    <section aria-label="Shadow comparison" className="shadow">
      <p>
        <span className={`badge ${view.status}`}>{view.status}</span>{" "}
        <span>
          {view.counts.matched} matched, {view.counts.mismatched} mismatched, {view.counts.ignored} ignored
        </span>
        {view.error && <span className="error-text"> — {view.error}</span>}
      </p>
      {view.status === "running" && <p className="muted">The BullMQ run is still going; the comparison appears when both engines have finished.</p>}
      {report && (
        <>
          <div className="table-scroll">
            <table>
              <caption>Checks per step and track</caption>
              <thead>
                <tr>
                  <th scope="col">Step</th>
                  <th scope="col">Track</th>
                  <th scope="col">Check</th>
                  <th scope="col">Result</th>
                  <th scope="col">Detail</th>
                </tr>
              </thead>
              <tbody>
                {report.items.map((it, i) => (
                  <tr key={i} className={it.classification}>
                    <td>{it.step}</td>
                    <td>{trackLabel(it.track_index)}</td>
                    <td>{it.check}</td>
                    <td>
                      <span className={`badge ${it.classification}`}>{it.classification}</span>
                    </td>
                    <td>
                      {it.summary}
                      {it.reason && <div className="muted">{it.reason}</div>}
                      {it.classification === "mismatched" && it.details !== undefined && (
                        <details>
                          <summary>Details</summary>
                          <pre>{JSON.stringify(it.details, null, 2)}</pre>
                        </details>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <div className="table-scroll">
            <table>
              <caption>Step durations per engine</caption>
              <thead>
                <tr>
                  <th scope="col">Step</th>
                  <th scope="col">Track</th>
                  <th scope="col">Conductor</th>
                  <th scope="col">BullMQ</th>
                </tr>
              </thead>
              <tbody>
                {report.durations.map((d, i) => (
                  <tr key={i}>
                    <td>{d.step}</td>
                    <td>{trackLabel(d.track_index)}</td>
                    <td>
                      {duration(d.primary_ms)}
                      {d.primary_attempts > 1 && <span className="muted"> ({d.primary_attempts} attempts)</span>}
                    </td>
                    <td>
                      {duration(d.shadow_ms)}
                      {d.shadow_attempts > 1 && <span className="muted"> ({d.shadow_attempts} attempts)</span>}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  );
}

export function ShadowSummaryView({ summary }: { summary: ShadowSummary }) {
  const rate = summary.match_rate === null ? "—" : `${(summary.match_rate * 100).toFixed(1)} %`;
  const engines = [...new Set(summary.durations.map((d) => d.engine))].sort();
  const steps = [...new Set(summary.durations.map((d) => d.step))];
  return (
    <section aria-label="Shadow summary" className="shadow">
      <dl className="stats">
        {(
          [
            ["Match rate", rate],
            ["Recordings", summary.recordings],
            ["Compared", summary.compared],
            ["Matched", summary.matched],
            ["Mismatched", summary.mismatched],
            ["Running", summary.running],
            ["Errors", summary.errors],
          ] as const
        ).map(([label, value]) => (
          <div key={label}>
            <dt>{label}</dt>
            <dd>{value}</dd>
          </div>
        ))}
      </dl>
      <div className="table-scroll">
        <table>
          <caption>Mismatches by step</caption>
          <thead>
            <tr>
              <th scope="col">Step</th>
              <th scope="col">Mismatches</th>
              <th scope="col">Recordings</th>
            </tr>
          </thead>
          <tbody>
            {summary.mismatches_by_step.length === 0 && (
              <tr>
                <td colSpan={3} className="muted">
                  No mismatches.
                </td>
              </tr>
            )}
            {summary.mismatches_by_step.map((m) => (
              <tr key={m.step}>
                <td>{m.step}</td>
                <td>{m.mismatches}</td>
                <td>{m.recordings}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <div className="table-scroll">
        <table>
          <caption>Step durations per engine (p50 / p95)</caption>
          <thead>
            <tr>
              <th scope="col">Step</th>
              {engines.map((e) => (
                <th scope="col" key={e}>
                  {e}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {steps.map((s) => (
              <tr key={s}>
                <td>{s}</td>
                {engines.map((e) => {
                  const d = summary.durations.find((x) => x.step === s && x.engine === e);
                  return <td key={e}>{d ? `${duration(d.p50_ms)} / ${duration(d.p95_ms)} (${d.samples})` : "—"}</td>;
                })}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
