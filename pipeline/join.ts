/**
 * After FORK_JOIN_DYNAMIC the JOIN output is a dict keyed by task reference
 * name, in no useful order (`transcribe_10` sorts before `transcribe_2`), and a fork task
 * with an empty output is missing from it entirely. Normalize to an array ordered by the
 * track index carried inside each output, rebuild each element with its zod schema, and
 * verify every expected track is present exactly once.
 */
import type { z } from "zod/v4";
import { FailedTrack } from "./contracts/index.ts";

export class JoinNormalizationError extends Error {
  override readonly name = "JoinNormalizationError";
  constructor(message: string, readonly details: { missing?: number[]; duplicate?: number[]; unexpected?: number[]; invalid?: string[] }) {
    super(message);
  }
}

export function normalizeJoinOutput<S extends z.ZodType<{ track_index: number }>>(
  joinOutput: Record<string, unknown> | unknown[],
  element: S,
  expectedTracks: readonly number[],
): z.infer<S>[] {
  const entries: [string, unknown][] = Array.isArray(joinOutput)
    ? joinOutput.map((v, i) => [`[${i}]`, v])
    : Object.entries(joinOutput);
  const invalid: string[] = [];
  const byTrack = new Map<number, z.infer<S>>();
  const duplicate: number[] = [];
  for (const [ref, value] of entries) {
    const parsed = element.safeParse(value);
    if (!parsed.success) {
      const first = parsed.error.issues[0];
      invalid.push(`${ref}: ${first ? `${first.path.join(".") || "(root)"}: ${first.message}` : "invalid"}`);
      continue;
    }
    const idx = parsed.data.track_index;
    if (byTrack.has(idx)) duplicate.push(idx);
    byTrack.set(idx, parsed.data);
  }
  const expected = new Set(expectedTracks);
  const missing = [...expected].filter((i) => !byTrack.has(i)).sort((a, b) => a - b);
  const unexpected = [...byTrack.keys()].filter((i) => !expected.has(i)).sort((a, b) => a - b);
  if (invalid.length || duplicate.length || missing.length || unexpected.length) {
    const parts = [
      missing.length ? `missing track(s) ${missing.join(", ")}` : "",
      duplicate.length ? `duplicate track(s) ${duplicate.join(", ")}` : "",
      unexpected.length ? `unexpected track(s) ${unexpected.join(", ")}` : "",
      invalid.length ? `invalid output(s): ${invalid.join("; ")}` : "",
    ].filter(Boolean);
    throw new JoinNormalizationError(`join output is incomplete: ${parts.join("; ")}`, { missing, duplicate, unexpected, invalid });
  }
  return [...byTrack.values()].sort((a, b) => a.track_index - b.track_index);
}

/** The track index a fork task's reference name ends with (`transcribe_track_3` → 3). */
const refTrack = (ref: string): number | null => {
  const m = /_(\d+)$/.exec(ref);
  return m ? Number(m[1]) : null;
};

/**
 * A per-track JOIN whose tracks may have failed: each element is either the step's output
 * or a FailedTrack (what a task that gave up on its track leaves). A fork task that ended
 * with no output at all (Conductor: an optional task that timed out because its worker
 * vanished) counts as failed, named by its reference name. Every expected track must be
 * there once, as an output or as a failure.
 */
export function splitJoinOutput<S extends z.ZodType<{ track_index: number }>>(
  joinOutput: Record<string, unknown> | unknown[],
  element: S,
  expectedTracks: readonly number[],
  step: string,
): { ok: z.infer<S>[]; failed: FailedTrack[] } {
  const marked: Record<string, unknown> | unknown[] = Array.isArray(joinOutput)
    ? joinOutput
    : Object.fromEntries(
        Object.entries(joinOutput).map(([ref, value]) => {
          const index = refTrack(ref);
          const bare = !value || typeof value !== "object" || (value as { track_index?: unknown }).track_index === undefined;
          return bare && index !== null
            ? [ref, { track_index: index, failed: { step, code: "track_failed", message: `${step} ended for this track without a result` } }]
            : [ref, value];
        }),
      );
  const all = normalizeJoinOutput(marked, FailedTrack.or(element as unknown as z.ZodType<{ track_index: number }>), expectedTracks);
  const ok: z.infer<S>[] = [];
  const failed: FailedTrack[] = [];
  for (const item of all) {
    if ((item as Partial<FailedTrack>).failed !== undefined) failed.push(item as FailedTrack);
    else ok.push(item as z.infer<S>);
  }
  return { ok, failed };
}
