/**
 * A Result's transcript in four formats. Lines are grouped the same way as the CLI's text
 * output (pipeline/render/format-result.ts): consecutive words of one speaker, split at long pauses.
 * JSON and text carry the action items too (text: a section after the transcript, only
 * when there are any); the cue formats (VTT, SRT) are the transcript alone.
 */
import { resultWarnings, type Result } from "../pipeline/contracts/index.ts";
import { actionItemLines, clock, transcriptLines } from "../pipeline/render/format-result.ts";

export const TRANSCRIPT_FORMATS = ["json", "text", "vtt", "srt", "md", "zip"] as const;
export type TranscriptFormat = (typeof TRANSCRIPT_FORMATS)[number];

export const TRANSCRIPT_CONTENT_TYPES: Record<TranscriptFormat, string> = {
  json: "application/json; charset=utf-8",
  text: "text/plain; charset=utf-8",
  vtt: "text/vtt; charset=utf-8",
  srt: "application/x-subrip; charset=utf-8",
  md: "text/markdown; charset=utf-8",
  zip: "application/zip",
};

/** Markdown: text that cannot turn into markup (emphasis, links, headings, HTML, tables). */
const mdEscape = (s: string): string => s.replace(/[\\`*_[\]#<>|]/g, (c) => `\\${c}`).replace(/\s*\n\s*/g, " ");

/**
 * Speakers given the same name are one voice for display: each name is shown under its
 * lowest speaker index, so their turns join up. The words keep their track index.
 */
export function displaySpeakers(result: Pick<Result, "participants">): (speaker: number) => number {
  const first = new Map<string, number>();
  for (const p of [...result.participants].sort((a, b) => a.speaker - b.speaker)) if (!first.has(p.name)) first.set(p.name, p.speaker);
  const names = new Map(result.participants.map((p) => [p.speaker, p.name]));
  return (speaker) => {
    const n = names.get(speaker);
    return n === undefined ? speaker : first.get(n)!;
  };
}

/** `00:01:02.345` (VTT) or `00:01:02,345` (SRT). */
export function timestamp(seconds: number, sep: "." | ","): string {
  const ms = Math.max(0, Math.round(seconds * 1000));
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = Math.floor((ms % 60_000) / 1000);
  const pad = (n: number, w = 2): string => String(n).padStart(w, "0");
  return `${pad(h)}:${pad(m)}:${pad(s)}${sep}${pad(ms % 1000, 3)}`;
}

/** Cue text must not contain a blank line or `-->` (it would end or fake a cue). */
const cueText = (s: string): string => s.replace(/-->/g, "→").replace(/\s*\n\s*/g, " ");
/** VTT voice names may not contain `>` and cue text escapes `&` and `<`. */
const vttEscape = (s: string): string => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

export function renderTranscript(result: Result, format: TranscriptFormat): string {
  const names = new Map(result.participants.map((p) => [p.speaker, p.name]));
  const name = (s: number): string => names.get(s) ?? `Speaker ${s}`;
  const display = displaySpeakers(result);
  const lines = transcriptLines(result.words.map((w) => ({ ...w, speaker: display(w.speaker) })));
  // a track the meeting went on without is said in every format that has room for a note
  const warnings = resultWarnings(result);
  switch (format) {
    case "json":
      return JSON.stringify({
        title: result.title,
        duration: result.duration,
        participants: result.participants,
        segments: lines.map((l) => ({ speaker: l.speaker, name: name(l.speaker), start: l.start, end: l.end, text: l.text })),
        words: result.words,
        action_items: (result.action_items ?? []).map((a) => ({ ...a, name: name(a.speaker) })),
        ...(result.tracks ? { tracks: result.tracks } : {}),
        warnings,
      });
    case "text": {
      const notes = warnings.map((w) => `Note: ${w.message}\n`).join("") + (warnings.length ? "\n" : "");
      const text = notes + lines.map((l) => `[${clock(l.start)}] ${name(l.speaker)}: ${l.text}`).join("\n") + (lines.length ? "\n" : "");
      const items = actionItemLines(result);
      return items.length ? `${text}${text ? "\n" : ""}Action items:\n${items.join("\n")}\n` : text;
    }
    case "vtt":
      return (
        "WEBVTT\n\n" +
        warnings.map((w) => `NOTE ${cueText(w.message)}\n\n`).join("") +
        lines
          .map((l, i) => `${i + 1}\n${timestamp(l.start, ".")} --> ${timestamp(Math.max(l.end, l.start + 0.001), ".")}\n<v ${vttEscape(name(l.speaker))}>${vttEscape(cueText(l.text))}\n`)
          .join("\n")
      );
    case "md": {
      const out = [`# ${mdEscape(result.title)}`, "", `_${clock(result.duration)} · ${[...new Set(result.participants.map((p) => p.name))].map(mdEscape).join(", ")}_`];
      for (const w of warnings) out.push("", `> **Note:** ${mdEscape(w.message)}`);
      if (result.short_summary || result.long_summary) {
        out.push("", "## Summary", "");
        if (result.short_summary) out.push(mdEscape(result.short_summary));
        if (result.long_summary && result.long_summary !== result.short_summary) out.push("", mdEscape(result.long_summary));
      }
      if (result.topics.length) {
        out.push("", "## Topics", "");
        for (const t of result.topics) out.push(`- **${mdEscape(t.title)}** (${clock(t.timestamp)})${t.summary ? ` — ${mdEscape(t.summary)}` : ""}`);
      }
      if (result.action_items?.length) {
        out.push("", "## Action items", "");
        for (const a of result.action_items) out.push(`- [ ] ${mdEscape(a.text)} — ${mdEscape(name(a.speaker))}, ${clock(a.start)}`);
      }
      out.push("", "## Transcript", "");
      for (const l of lines) out.push(`**${mdEscape(name(l.speaker))}** [${clock(l.start)}]: ${mdEscape(l.text)}`, "");
      return `${out.join("\n").trimEnd()}\n`;
    }
    case "zip":
      throw new Error("the archive is streamed (server/export.ts), not rendered");
    case "srt":
      return lines
        .map((l, i) => `${i + 1}\n${timestamp(l.start, ",")} --> ${timestamp(Math.max(l.end, l.start + 0.001), ",")}\n${cueText(name(l.speaker))}: ${cueText(l.text)}\n`)
        .join("\n");
  }
}
