/** Plain-text tables for `trackscribe compare` and `trackscribe replay` (pure). */
import { orderedTasks, type Instruction, type PipelineState } from "../../pipeline/state/index.ts";
import type { ShadowReport } from "./compare.ts";

export function formatTable(headers: string[], rows: string[][], maxWidth = 100): string {
  const clip = (s: string): string => (s.length > maxWidth ? `${s.slice(0, maxWidth - 1)}…` : s);
  const cells = [headers, ...rows].map((r) => r.map(clip));
  const widths = headers.map((_, c) => Math.max(...cells.map((r) => (r[c] ?? "").length)));
  const line = (r: string[]): string => r.map((v, c) => (c === r.length - 1 ? v : v.padEnd(widths[c]!))).join("  ").trimEnd();
  return [line(cells[0]!), line(widths.map((w) => "-".repeat(w))), ...cells.slice(1).map(line)].join("\n") + "\n";
}

const track = (t: number | null | undefined): string => (t === null || t === undefined ? "-" : String(t));
const MARK = { matched: "ok", mismatched: "MISMATCH", ignored: "ignored" } as const;

export function formatReport(report: ShadowReport, opts: { onlyMismatches?: boolean } = {}): string {
  const out: string[] = [];
  const counts = report.counts;
  out.push(
    `Shadow comparison: ${report.verdict.toUpperCase()}  (${counts.matched} matched, ${counts.mismatched} mismatched, ${counts.ignored} ignored)`,
    `  ${report.primary.engine.padEnd(9)} ${report.primary.status}${report.primary.run_id ? `  run ${report.primary.run_id}` : ""}${report.primary.error ? `  error: ${report.primary.error}` : ""}`,
    `  ${report.shadow.engine.padEnd(9)} ${report.shadow.status}${report.shadow.run_id ? `  run ${report.shadow.run_id}` : ""}${report.shadow.error ? `  error: ${report.shadow.error}` : ""}`,
    "",
  );
  const items = report.items.filter((i) => i.check !== "duration" && (!opts.onlyMismatches || i.classification === "mismatched"));
  out.push(
    formatTable(
      ["STEP", "TRACK", "CHECK", "RESULT", "DETAIL"],
      items.map((i) => [i.step, track(i.track_index), i.check, MARK[i.classification], i.reason ? `${i.summary} [${i.reason}]` : i.summary]),
      140,
    ),
  );
  if (!opts.onlyMismatches) {
    const p = report.primary.engine;
    const s = report.shadow.engine;
    out.push(
      "",
      formatTable(
        ["STEP", "TRACK", `${p.toUpperCase()} ms`, `${s.toUpperCase()} ms`, `${s}/${p}`, "ATTEMPTS"],
        report.durations.map((d) => [
          d.step,
          track(d.track_index),
          d.primary_ms === null ? "-" : String(Math.round(d.primary_ms)),
          d.shadow_ms === null ? "-" : String(Math.round(d.shadow_ms)),
          d.primary_ms && d.shadow_ms !== null ? (d.shadow_ms / d.primary_ms).toFixed(2) : "-",
          `${d.primary_attempts}/${d.shadow_attempts}`,
        ]),
      ),
    );
  }
  return out.join("\n");
}

export function formatInstruction(i: Instruction): string {
  const key = "step" in i ? `${i.step}${i.track_index === undefined ? "" : `[${i.track_index}]`}` : "";
  switch (i.type) {
    case "RunStep":
      return `RunStep ${key} attempt ${i.attempt} job ${i.job_id}`;
    case "ScheduleRetry":
      return `ScheduleRetry ${key} attempt ${i.attempt} in ${i.delay_ms} ms`;
    case "EmitProgress":
      return `EmitProgress ${key} ${i.status}${i.attempt ? ` #${i.attempt}` : ""}${i.message ? `: ${i.message}` : ""}`;
    case "Finish":
      return `Finish "${i.result.title}" (${i.result.words.length} words, ${i.result.topics.length} topics)`;
    case "Fail":
      return `Fail ${i.reason}`;
  }
}

export function formatState(state: PipelineState): string {
  const head = [
    `recording ${state.recording_id ?? "?"}  namespace ${state.namespace ?? "?"}  status ${state.status}  events ${state.seq}`,
    ...(state.failure ? [`failure: ${state.failure.reason}`] : []),
    ...(state.result ? [`result: "${state.result.title}", ${state.result.words.length} words, ${state.result.topics.length} topics`] : []),
    "",
  ];
  const tasks = formatTable(
    ["TASK", "STATUS", "ATTEMPTS", "LAST ms", "WORKER", "ERROR"],
    orderedTasks(state).map((t) => {
      const last = t.attempts[t.attempts.length - 1];
      return [t.key, t.status, String(t.attempt), last?.duration_ms == null ? "-" : String(Math.round(last.duration_ms)), last?.worker_id ?? "-", t.error ?? ""];
    }),
  );
  return head.join("\n") + tasks;
}
