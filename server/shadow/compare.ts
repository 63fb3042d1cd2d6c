/**
 * Shadow comparison (pure): the authoritative run (Conductor) against the shadow run
 * (BullMQ), per step and per track, keyed by track index (never by engine-specific task
 * names or storage keys). Every comparison is classified matched / mismatched / ignored:
 *
 *   status, error          both engines' verdict per task and for the pipeline
 *   words                  WER between the two word lists (≤ SHADOW_WER_TOLERANCE)
 *   speakers               speaker of every aligned word
 *   timing                 start/end of aligned words within SHADOW_TIME_TOLERANCE_SECONDS (a word
 *                          whose time was interpolated: within INTERPOLATED_TIME_SLACK_SECONDS, 0.5 s)
 *   topics.count / topics.boundaries / topics.titles
 *   title, summary.short, summary.long, action_items
 *   audio.duration, audio.waveform, plan.duration, plan.spans, track.duration, bleed.dropped
 *   duration               each engine's step duration (informational: always ignored)
 *
 * SHADOW_IGNORE lists rules; a rule matches a check by its name (`timing`), its group
 * (`summary` matches `summary.short`), its step (`mixdown`) or `step:check`
 * (`transcribe_track:timing`). Matching items are classified ignored with the rule named.
 */
import type { ActionItem, Result, StepName, StepOutputOf, Word } from "../../pipeline/contracts/index.ts";
import { INTERPOLATED_TIME_SLACK_SECONDS } from "../../pipeline/contracts/index.ts";
import { orderedSteps } from "../../pipeline/state/index.ts";
import { alignWords, AlignmentTooLargeError, type Alignment } from "./align.ts";

export type Classification = "matched" | "mismatched" | "ignored";

/** One task's outcome on one engine. */
export interface StepRecord {
  step: StepName;
  track_index: number | null;
  status: "succeeded" | "failed" | "cancelled" | "running" | "waiting";
  output: unknown;
  error: string | null;
  duration_ms: number | null;
  attempts: number;
  worker_id: string | null;
}

export interface EngineSnapshot {
  engine: string;
  /** the engine's own run id (workflow id, BullMQ run id) */
  run_id: string | null;
  status: "succeeded" | "failed" | "running";
  error: string | null;
  steps: StepRecord[];
  result: Result | null;
}

export interface CompareRules {
  werTolerance: number;
  timeToleranceSeconds: number;
  /** SHADOW_IGNORE rules */
  ignore: string[];
  /** waveform peaks may differ by this much (0..1 scale) */
  waveformTolerance: number;
}

export interface ComparisonItem {
  step: StepName | "pipeline";
  track_index: number | null;
  check: string;
  classification: Classification;
  /** one readable line: what was compared and how it came out */
  summary: string;
  /** why an item is ignored */
  reason?: string;
  details?: unknown;
}

export interface StepDuration {
  step: StepName;
  track_index: number | null;
  primary_ms: number | null;
  shadow_ms: number | null;
  primary_attempts: number;
  shadow_attempts: number;
}

export interface ShadowReport {
  verdict: "matched" | "mismatched";
  counts: Record<Classification, number>;
  primary: { engine: string; run_id: string | null; status: string; error: string | null };
  shadow: { engine: string; run_id: string | null; status: string; error: string | null };
  items: ComparisonItem[];
  durations: StepDuration[];
}

export function parseIgnoreRules(spec: string): string[] {
  return spec
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

export function rulesFromConfig(c: { SHADOW_WER_TOLERANCE: number; SHADOW_TIME_TOLERANCE_SECONDS: number; SHADOW_IGNORE: string }): CompareRules {
  return {
    werTolerance: c.SHADOW_WER_TOLERANCE,
    timeToleranceSeconds: c.SHADOW_TIME_TOLERANCE_SECONDS,
    ignore: parseIgnoreRules(c.SHADOW_IGNORE),
    waveformTolerance: 0.02,
  };
}

/** the steps in pipeline order (the graph's stages) */
const STEP_ORDER: readonly StepName[] = orderedSteps();

const keyOf = (step: string, track: number | null): string => (track === null ? step : `${step}[${track}]`);
const fmtT = (s: number): string => `${s.toFixed(2)}s`;
const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
const quote = (s: string, max = 80): string => JSON.stringify(s.length > max ? `${s.slice(0, max)}…` : s);

export function compareRuns(primary: EngineSnapshot, shadow: EngineSnapshot, rules: CompareRules): ShadowReport {
  const items: ComparisonItem[] = [];
  const add = (step: ComparisonItem["step"], track: number | null, check: string, ok: boolean, summary: string, details?: unknown, informational = false): void => {
    const rule = rules.ignore.find((r) => ruleMatches(r, step, check));
    const item: ComparisonItem = {
      step,
      track_index: track,
      check,
      classification: rule ? "ignored" : informational ? "ignored" : ok ? "matched" : "mismatched",
      summary,
    };
    if (rule) item.reason = `SHADOW_IGNORE rule '${rule}'`;
    else if (informational) item.reason = "informational";
    if (details !== undefined) item.details = details;
    items.push(item);
  };

  // the pipeline as a whole
  add(
    "pipeline",
    null,
    "status",
    primary.status === shadow.status,
    `${primary.engine} ${primary.status}, ${shadow.engine} ${shadow.status}`,
  );
  if (primary.error || shadow.error) {
    add("pipeline", null, "error", primary.error === shadow.error, `${primary.engine}: ${primary.error ?? "none"}; ${shadow.engine}: ${shadow.error ?? "none"}`);
  }

  const index = (s: EngineSnapshot): Map<string, StepRecord> => new Map(s.steps.map((r) => [keyOf(r.step, r.track_index), r]));
  const p = index(primary);
  const q = index(shadow);
  const keys = [...new Set([...p.keys(), ...q.keys()])].sort((x, y) => order(x) - order(y));
  const durations: StepDuration[] = [];

  for (const key of keys) {
    const a = p.get(key);
    const b = q.get(key);
    const ref = (a ?? b)!;
    const { step, track_index: track } = ref;
    durations.push({
      step,
      track_index: track,
      primary_ms: a?.duration_ms ?? null,
      shadow_ms: b?.duration_ms ?? null,
      primary_attempts: a?.attempts ?? 0,
      shadow_attempts: b?.attempts ?? 0,
    });
    const sa = a?.status ?? "missing";
    const sb = b?.status ?? "missing";
    add(step, track, "status", sa === sb, `${primary.engine} ${sa}${a && a.attempts > 1 ? ` after ${a.attempts} attempts` : ""}, ${shadow.engine} ${sb}${b && b.attempts > 1 ? ` after ${b.attempts} attempts` : ""}`);
    if (a?.error || b?.error) {
      if (sa === "failed" || sb === "failed") {
        add(step, track, "error", (a?.error ?? null) === (b?.error ?? null), `${primary.engine}: ${a?.error ?? "none"}; ${shadow.engine}: ${b?.error ?? "none"}`);
      }
    }
    add(
      step,
      track,
      "duration",
      true,
      `${primary.engine} ${a?.duration_ms ?? "?"} ms, ${shadow.engine} ${b?.duration_ms ?? "?"} ms`,
      undefined,
      true,
    );
    if (a?.status === "succeeded" && b?.status === "succeeded") compareOutputs(step, track, a.output, b.output, rules, add);
  }

  const counts = { matched: 0, mismatched: 0, ignored: 0 };
  for (const i of items) counts[i.classification]++;
  return {
    verdict: counts.mismatched === 0 ? "matched" : "mismatched",
    counts,
    primary: { engine: primary.engine, run_id: primary.run_id, status: primary.status, error: primary.error },
    shadow: { engine: shadow.engine, run_id: shadow.run_id, status: shadow.status, error: shadow.error },
    items,
    durations,
  };
}

function order(key: string): number {
  const m = /^([a-z_]+)(?:\[(\d+)\])?$/.exec(key);
  const stepIdx = STEP_ORDER.indexOf((m?.[1] ?? key) as StepName);
  return stepIdx * 10_000 + Number(m?.[2] ?? 0);
}

export function ruleMatches(rule: string, step: string, check: string): boolean {
  if (rule === check || check.startsWith(`${rule}.`) || rule === step) return true;
  const [rs, rc] = rule.split(":");
  return rs === step && rc !== undefined && (rc === check || check.startsWith(`${rc}.`));
}

type Add = (step: StepName, track: number | null, check: string, ok: boolean, summary: string, details?: unknown, informational?: boolean) => void;

/** What a comparator gets besides the two outputs. */
interface CompareContext {
  step: StepName;
  track: number | null;
  rules: CompareRules;
  add: Add;
  /** within SHADOW_TIME_TOLERANCE_SECONDS */
  near(x: number, y: number): boolean;
}

/** Compares one step's outputs of the two engines, adding its checks through `c.add`. */
export type Comparator<K extends StepName> = (primary: StepOutputOf<K>, shadow: StepOutputOf<K>, c: CompareContext) => void;

/**
 * One comparator per step: a step without one is a compile error, so a new step cannot
 * silently go uncompared.
 */
export const COMPARATORS: { readonly [K in StepName]: Comparator<K> } = {
  prepare_track: (o1, o2, { step, track, add, near }) => {
    add(step, track, "track.duration", near(o1.duration_seconds, o2.duration_seconds), `track duration ${fmtT(o1.duration_seconds)} vs ${fmtT(o2.duration_seconds)}`);
  },
  plan_speech: (o1, o2, { step, track, add, near }) => {
    add(step, track, "plan.duration", near(o1.duration, o2.duration), `recording duration ${fmtT(o1.duration)} vs ${fmtT(o2.duration)}`);
    const t2 = new Map(o2.tracks.map((t) => [t.track_index, t]));
    for (const t of o1.tracks) {
      const other = t2.get(t.track_index)?.spans ?? [];
      const off = t.spans.length !== other.length || t.spans.some((s, i) => !near(s.start, other[i]!.start) || !near(s.end, other[i]!.end));
      add(step, t.track_index, "plan.spans", !off, `track ${t.track_index}: ${t.spans.length} vs ${other.length} speech span(s)${off ? " (boundaries differ)" : ""}`, off ? { primary: t.spans, shadow: other } : undefined);
    }
    compareTrackOutcomes(step, track, outcomesOf(o1.failed_tracks), outcomesOf(o2.failed_tracks), add);
  },
  transcribe_track: (o1, o2, { step, track, rules, add }) => compareWords(step, track, o1.words, o2.words, rules, add, false),
  merge_transcripts: (o1, o2, { step, track, rules, add }) => {
    compareWords(step, track, o1.words, o2.words, rules, add, true);
    compareTrackOutcomes(step, track, outcomesOf(o1.track_status), outcomesOf(o2.track_status), add);
  },
  suppress_bleed: (o1, o2, { step, track, rules, add }) => {
    compareWords(step, track, o1.words, o2.words, rules, add, true);
    add(step, track, "bleed.dropped", o1.dropped === o2.dropped, `bleed words dropped ${String(o1.dropped)} vs ${String(o2.dropped)}`);
  },
  detect_topics: (o1, o2, { step, rules, add }) => compareTopics(step, o1.topics, o2.topics, rules.timeToleranceSeconds, add),
  generate_title: (o1, o2, { step, track, add }) => {
    add(step, track, "title", o1.title === o2.title, o1.title === o2.title ? `title ${quote(o1.title)}` : `title ${quote(o1.title)} vs ${quote(o2.title)}`);
  },
  generate_summary: (o1, o2, { step, track, add }) => {
    for (const [field, check] of [["short_summary", "summary.short"], ["long_summary", "summary.long"]] as const) {
      const same = o1[field] === o2[field];
      add(step, track, check, same, same ? `${field} identical (${o1[field].length} chars)` : `${field} ${quote(o1[field])} vs ${quote(o2[field])}`);
    }
  },
  extract_action_items: (o1, o2, c) => compareActionItems(c, o1.action_items, o2.action_items),
  mixdown: (o1, o2, { step, track, rules, add, near }) => {
    add(step, track, "audio.duration", near(o1.duration, o2.duration), `mixdown duration ${fmtT(o1.duration)} vs ${fmtT(o2.duration)}`);
    const w1 = o1.waveform;
    const w2 = o2.waveform;
    const maxDiff = w1.length === w2.length ? w1.reduce((m, v, i) => Math.max(m, Math.abs(v - w2[i]!)), 0) : Infinity;
    add(
      step,
      track,
      "audio.waveform",
      maxDiff <= rules.waveformTolerance,
      w1.length === w2.length ? `waveform ${w1.length} peaks, largest difference ${maxDiff.toFixed(3)}` : `waveform ${w1.length} vs ${w2.length} peaks`,
    );
  },
  finalize: (r1, r2, { step, track, rules, add, near }) => {
    add(step, track, "result.duration", near(r1.duration, r2.duration), `result duration ${fmtT(r1.duration)} vs ${fmtT(r2.duration)}`);
    compareWords(step, track, r1.words, r2.words, rules, add, true);
    compareTrackOutcomes(step, track, outcomesOf((r1.tracks ?? []).map((t) => ({ track_index: t.speaker, failed: t.error }))), outcomesOf((r2.tracks ?? []).map((t) => ({ track_index: t.speaker, failed: t.error }))), add);
  },
};

/** Failed tracks by index, as `code` (an ok track is absent): what both engines must agree on. */
function outcomesOf(list: readonly { track_index: number; failed?: { code: string } | undefined }[] | undefined): Map<number, string> {
  return new Map((list ?? []).filter((t) => t.failed).map((t) => [t.track_index, t.failed!.code]));
}

/** Both engines gave up on the same tracks, for the same reason (its code; messages may word it differently). */
function compareTrackOutcomes(step: StepName, track: number | null, f1: Map<number, string>, f2: Map<number, string>, add: Add): void {
  const show = (m: Map<number, string>): string => (m.size ? [...m].map(([i, c]) => `track ${i} ${c}`).join(", ") : "none");
  const same = f1.size === f2.size && [...f1].every(([i, c]) => f2.get(i) === c);
  add(step, track, "tracks.failed", same, `failed tracks: ${show(f1)} vs ${show(f2)}`);
}

function compareOutputs(step: StepName, track: number | null, a: unknown, b: unknown, rules: CompareRules, add: Add): void {
  const tol = rules.timeToleranceSeconds;
  const near = (x: number, y: number): boolean => Math.abs(x - y) <= tol + 1e-9;
  (COMPARATORS[step] as Comparator<StepName>)(a as never, b as never, { step, track, rules, add, near });
}

/**
 * Action items pair up in order: the same number, and each pair with the same text and
 * owner and starts within the time tolerance.
 */
function compareActionItems(c: CompareContext, i1: readonly ActionItem[], i2: readonly ActionItem[]): void {
  const n = Math.min(i1.length, i2.length);
  const differ: string[] = [];
  for (let i = 0; i < n; i++) {
    const x = i1[i]!;
    const y = i2[i]!;
    if (x.text !== y.text || x.speaker !== y.speaker || !c.near(x.start, y.start)) {
      differ.push(`item ${i}: ${quote(x.text, 40)} (speaker ${x.speaker}, ${fmtT(x.start)}) vs ${quote(y.text, 40)} (speaker ${y.speaker}, ${fmtT(y.start)})`);
    }
  }
  const ok = differ.length === 0 && i1.length === i2.length;
  c.add(
    c.step,
    c.track,
    "action_items",
    ok,
    `${i1.length} vs ${i2.length} action item(s)` + (differ.length ? `: ${differ.slice(0, 3).join("; ")}${differ.length > 3 ? "; …" : ""}` : ok ? ", identical" : ""),
    ok ? undefined : { primary: i1.slice(0, 50), shadow: i2.slice(0, 50) },
  );
}

function compareWords(step: StepName, track: number | null, ref: Word[], hyp: Word[], rules: CompareRules, add: Add, withSpeakers: boolean): void {
  let al: Alignment<Word>;
  try {
    al = alignWords(ref, hyp, (w) => w.text);
  } catch (err) {
    if (!(err instanceof AlignmentTooLargeError)) throw err;
    add(step, track, "words", false, `${ref.length} vs ${hyp.length} words: ${err.message}`);
    return;
  }
  const where = track === null ? "" : `track ${track}: `;
  const diffs = al.ops
    .filter((o) => o.op !== "equal")
    .map((o) =>
      o.op === "sub"
        ? { op: "substitution", primary: o.ref.text, shadow: o.hyp.text, at: o.ref.start, speaker: o.ref.speaker }
        : o.op === "del"
          ? { op: "deletion", primary: o.ref.text, at: o.ref.start, speaker: o.ref.speaker }
          : { op: "insertion", shadow: o.hyp.text, at: o.hyp.start, speaker: o.hyp.speaker },
    );
  const shown = diffs
    .slice(0, 5)
    .map(
      (d) =>
        (d.op === "substitution" ? `"${d.primary}"→"${d.shadow}"` : d.op === "deletion" ? `-"${d.primary}"` : `+"${d.shadow}"`) +
        ` at ${fmtT(d.at)}${withSpeakers ? ` (speaker ${d.speaker})` : ""}`,
    )
    .join(", ");
  add(
    step,
    track,
    "words",
    al.wer <= rules.werTolerance + 1e-12,
    `${where}${ref.length} vs ${hyp.length} words, WER ${pct(al.wer)}` +
      (diffs.length ? ` (${al.substitutions} sub, ${al.deletions} del, ${al.insertions} ins): ${shown}${diffs.length > 5 ? ", …" : ""}` : ""),
    diffs.length ? { wer: al.wer, substitutions: al.substitutions, deletions: al.deletions, insertions: al.insertions, diffs: diffs.slice(0, 200) } : { wer: 0 },
  );

  const pairs = al.ops.filter((o): o is { op: "equal"; ref: Word; hyp: Word } => o.op === "equal");
  if (withSpeakers) {
    const differ = pairs.filter((o) => o.ref.speaker !== o.hyp.speaker);
    const agreement = pairs.length ? 1 - differ.length / pairs.length : 1;
    add(
      step,
      track,
      "speakers",
      differ.length === 0,
      `${where}speaker agreement ${pct(agreement)} over ${pairs.length} aligned words` +
        (differ.length ? `: ${differ.slice(0, 5).map((o) => `"${o.ref.text}" at ${fmtT(o.ref.start)} speaker ${o.ref.speaker} vs ${o.hyp.speaker}`).join(", ")}` : ""),
      differ.length ? { agreement, differ: differ.slice(0, 200).map((o) => ({ text: o.ref.text, at: o.ref.start, primary: o.ref.speaker, shadow: o.hyp.speaker })) } : undefined,
    );
  }
  const tol = rules.timeToleranceSeconds;
  // an interpolated time (spread over its segment: pipeline/contracts/domain.ts) may be off by up to the slack
  const tolOf = (o: { ref: Word; hyp: Word }): number =>
    o.ref.timing === "interpolated" || o.hyp.timing === "interpolated" ? Math.max(tol, INTERPOLATED_TIME_SLACK_SECONDS) : tol;
  const late = pairs.filter((o) => Math.abs(o.ref.start - o.hyp.start) > tolOf(o) + 1e-9 || Math.abs(o.ref.end - o.hyp.end) > tolOf(o) + 1e-9);
  add(
    step,
    track,
    "timing",
    late.length === 0,
    `${where}${late.length} of ${pairs.length} aligned words moved more than ${tol}s` +
      (late.length ? `: ${late.slice(0, 5).map((o) => `"${o.ref.text}" ${fmtT(o.ref.start)}–${fmtT(o.ref.end)} vs ${fmtT(o.hyp.start)}–${fmtT(o.hyp.end)}`).join(", ")}` : ""),
    late.length ? { moved: late.slice(0, 200).map((o) => ({ text: o.ref.text, primary: [o.ref.start, o.ref.end], shadow: [o.hyp.start, o.hyp.end] })) } : undefined,
  );
}

interface TopicLike {
  title: string;
  timestamp: number;
  duration: number;
}

function compareTopics(step: StepName, t1: readonly TopicLike[], t2: readonly TopicLike[], tol: number, add: Add): void {
  add(step, null, "topics.count", t1.length === t2.length, `${t1.length} vs ${t2.length} topic(s)`);
  const n = Math.min(t1.length, t2.length);
  const moved: string[] = [];
  const retitled: string[] = [];
  for (let i = 0; i < n; i++) {
    const x = t1[i]!;
    const y = t2[i]!;
    if (Math.abs(x.timestamp - y.timestamp) > tol + 1e-9 || Math.abs(x.timestamp + x.duration - (y.timestamp + y.duration)) > tol + 1e-9) {
      moved.push(`topic ${i}: ${fmtT(x.timestamp)}+${fmtT(x.duration)} vs ${fmtT(y.timestamp)}+${fmtT(y.duration)}`);
    }
    if (x.title !== y.title) retitled.push(`topic ${i}: ${quote(x.title, 40)} vs ${quote(y.title, 40)}`);
  }
  add(step, null, "topics.boundaries", moved.length === 0 && t1.length === t2.length, moved.length ? moved.join("; ") : `${n} topic boundaries within ${tol}s`);
  add(step, null, "topics.titles", retitled.length === 0 && t1.length === t2.length, retitled.length ? retitled.join("; ") : `${n} topic titles identical`);
}

export { keyOf as shadowItemKey };
