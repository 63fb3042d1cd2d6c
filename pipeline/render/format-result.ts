/** The human-readable form of a Result (what `trackscribe process` prints without --json). */
import { resultWarnings, type Result, type Word } from "../contracts/index.ts";

/** `[00:12.3]`, or `[1:02:03.4]` past an hour. */
export function clock(seconds: number): string {
  const tenths = Math.round(seconds * 10);
  const h = Math.floor(tenths / 36000);
  const m = Math.floor((tenths % 36000) / 600);
  const s = (tenths % 600) / 10;
  const ss = s.toFixed(1).padStart(4, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${String(m).padStart(2, "0")}:${ss}`;
}

export interface TranscriptLine {
  speaker: number;
  start: number;
  end: number;
  text: string;
}

/**
 * Consecutive words of one speaker form a line; a new line starts when the speaker
 * changes or after a pause of at least `pauseSeconds` (default 2 s).
 */
export function transcriptLines(words: readonly Word[], pauseSeconds = 2): TranscriptLine[] {
  const lines: TranscriptLine[] = [];
  let cur: { speaker: number; start: number; end: number; words: string[] } | undefined;
  for (const w of words) {
    if (!cur || cur.speaker !== w.speaker || w.start - cur.end >= pauseSeconds) {
      if (cur) lines.push({ speaker: cur.speaker, start: cur.start, end: cur.end, text: cur.words.join(" ") });
      cur = { speaker: w.speaker, start: w.start, end: w.end, words: [] };
    }
    cur.words.push(w.text);
    cur.end = Math.max(cur.end, w.end);
  }
  if (cur) lines.push({ speaker: cur.speaker, start: cur.start, end: cur.end, text: cur.words.join(" ") });
  return lines;
}

/**
 * `- [00:41.2] Alice: We will send the draft by Friday.`: one line per action item, owner
 * named. A Result stored before the step existed may have none.
 */
export function actionItemLines(result: Pick<Result, "participants" | "action_items">): string[] {
  const names = new Map(result.participants.map((p) => [p.speaker, p.name]));
  return (result.action_items ?? []).map((a) => `- [${clock(a.start)}] ${names.get(a.speaker) ?? `Speaker ${a.speaker}`}: ${a.text}`);
}

export function formatResult(result: Result): string {
  const names = new Map(result.participants.map((p) => [p.speaker, p.name]));
  const name = (s: number): string => names.get(s) ?? `Speaker ${s}`;
  const out: string[] = [];
  out.push(`Title: ${result.title}`);
  out.push(`Duration: ${clock(result.duration)} · participants: ${result.participants.map((p) => p.name).join(", ")}`);
  for (const w of resultWarnings(result)) out.push(`Warning: ${w.message}`);
  out.push("", "Transcript:");
  const lines = transcriptLines(result.words);
  if (lines.length === 0) out.push("  (no speech recognized)");
  for (const l of lines) out.push(`[${clock(l.start)}] ${name(l.speaker)}: ${l.text}`);
  out.push("", "Topics:");
  if (result.topics.length === 0) out.push("  (none)");
  for (const t of result.topics) {
    out.push(`[${clock(t.timestamp)}–${clock(t.timestamp + t.duration)}] ${t.title}`);
    if (t.summary) out.push(`    ${t.summary}`);
  }
  out.push("", "Short summary:", result.short_summary || "(empty)");
  out.push("", "Long summary:", result.long_summary || "(empty)");
  out.push("", "Action items:");
  const items = actionItemLines(result);
  if (items.length === 0) out.push("  (none)");
  out.push(...items);
  return `${out.join("\n")}\n`;
}
