/** Word error rate: word-level edit distance / reference length, on normalized tokens. */

export const normalizeToken = (w: string): string => w.toLowerCase().replace(/^[^\p{L}\p{N}']+|[^\p{L}\p{N}']+$/gu, "");

export function tokens(text: string | readonly string[]): string[] {
  const list = typeof text === "string" ? text.split(/\s+/) : text;
  return list.map(normalizeToken).filter(Boolean);
}

/** Levenshtein distance between token lists (two rows, O(n·m) time, O(m) memory). */
export function editDistance(ref: readonly string[], hyp: readonly string[]): number {
  let prev = Array.from({ length: hyp.length + 1 }, (_, j) => j);
  for (let i = 1; i <= ref.length; i++) {
    const cur = [i];
    for (let j = 1; j <= hyp.length; j++) {
      const sub = prev[j - 1]! + (ref[i - 1] === hyp[j - 1] ? 0 : 1);
      cur.push(Math.min(sub, prev[j]! + 1, cur[j - 1]! + 1));
    }
    prev = cur;
  }
  return prev[hyp.length]!;
}

/** WER of `hyp` against `ref`; 0 for two empty lists, 1 per inserted word against an empty reference. */
export function wordErrorRate(ref: string | readonly string[], hyp: string | readonly string[]): number {
  const r = tokens(ref);
  const h = tokens(hyp);
  if (r.length === 0) return h.length === 0 ? 0 : 1;
  return editDistance(r, h) / r.length;
}
