/**
 * After FORK_JOIN_DYNAMIC the JOIN output is a dict keyed by task reference
 * name, in no useful order (`transcribe_10` sorts before `transcribe_2`), and a fork task
 * with an empty output is missing from it entirely. Normalize to an array ordered by the
 * track index carried inside each output, rebuild each element with its zod schema, and
 * verify every expected track is present exactly once.
 */
import type { z } from "zod/v4";

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
