import { render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { ShadowSummary, ShadowView } from "../api/client";
import { ShadowSummaryView, ShadowTable } from "./ShadowTable";

const view: ShadowView = {
  recording_id: "r1",
  status: "mismatched",
  bullmq_run_id: "b1",
  conductor_workflow_id: "w1",
  counts: { matched: 2, mismatched: 1, ignored: 1 },
  error: null,
  started_at: "2025-01-01T00:00:00.000Z",
  compared_at: "2025-01-01T00:01:00.000Z",
  report: {
    verdict: "mismatched",
    counts: { matched: 2, mismatched: 1, ignored: 1 },
    primary: { engine: "conductor", run_id: "w1", status: "COMPLETED", error: null },
    shadow: { engine: "bullmq", run_id: "b1", status: "completed", error: null },
    items: [
      { step: "prepare_track", track_index: 0, check: "track.duration", classification: "matched", summary: "12.0 s both" },
      { step: "transcribe_track", track_index: 1, check: "words", classification: "mismatched", summary: "41 vs 40 words", details: { only_primary: ["hello"] } },
      { step: "generate_title", track_index: null, check: "title", classification: "ignored", summary: "titles differ", reason: "model output varies" },
      { step: "finalize", track_index: null, check: "result", classification: "matched", summary: "same" },
    ],
    durations: [{ step: "prepare_track", track_index: 0, primary_ms: 812, shadow_ms: 1500, primary_attempts: 1, shadow_attempts: 2 }],
  },
};

describe("<ShadowTable>", () => {
  it("shows the verdict, counts, each check per step and track, and the detail of a mismatch", () => {
    const { container } = render(<ShadowTable view={view} />);
    expect(screen.getByText("2 matched, 1 mismatched, 1 ignored")).toBeTruthy();
    const checks = screen.getByRole("table", { name: "Checks per step and track" });
    const rows = within(checks).getAllByRole("row").slice(1);
    expect(rows).toHaveLength(4);
    expect(rows.map((r) => r.className)).toEqual(["matched", "mismatched", "ignored", "matched"]);
    expect(within(rows[1]!).getByText("transcribe_track")).toBeTruthy();
    expect(within(rows[1]!).getByText("#2")).toBeTruthy();
    expect(within(rows[1]!).getByText(/only_primary/)).toBeTruthy();
    expect(within(rows[2]!).getByText("model output varies")).toBeTruthy();
    // only a mismatch carries the details block
    expect(container.querySelectorAll("details")).toHaveLength(1);
    const durations = screen.getByRole("table", { name: "Step durations per engine" });
    expect(within(durations).getByText("812 ms")).toBeTruthy();
    expect(within(durations).getByText("1.5 s")).toBeTruthy();
    expect(within(durations).getByText("(2 attempts)")).toBeTruthy();
  });

  it("a comparison still running says so and has no table", () => {
    render(<ShadowTable view={{ ...view, status: "running", report: null, counts: { matched: 0, mismatched: 0, ignored: 0 } }} />);
    expect(screen.getByText(/still going/)).toBeTruthy();
    expect(screen.queryByRole("table")).toBeNull();
  });
});

describe("<ShadowSummaryView>", () => {
  it("shows the match rate, mismatches by step and step durations per engine", () => {
    const summary: ShadowSummary = {
      recordings: 4,
      running: 1,
      compared: 3,
      matched: 2,
      mismatched: 1,
      errors: 0,
      match_rate: 2 / 3,
      mismatches_by_step: [{ step: "transcribe_track", mismatches: 2, recordings: 1 }],
      durations: [
        { step: "prepare_track", engine: "conductor", samples: 9, p50_ms: 800, p95_ms: 1200 },
        { step: "prepare_track", engine: "bullmq", samples: 9, p50_ms: 700, p95_ms: 900 },
      ],
    };
    render(<ShadowSummaryView summary={summary} />);
    expect(screen.getByText("66.7 %")).toBeTruthy();
    const byStep = screen.getByRole("table", { name: "Mismatches by step" });
    expect(within(byStep).getByText("transcribe_track")).toBeTruthy();
    const durations = screen.getByRole("table", { name: /Step durations per engine/ });
    const head = within(durations).getAllByRole("columnheader").map((h) => h.textContent);
    expect(head).toEqual(["Step", "bullmq", "conductor"]);
    expect(within(durations).getByText("800 ms / 1.2 s (9)")).toBeTruthy();
  });
});
