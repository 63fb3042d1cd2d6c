/**
 * Word alignment of two transcripts (reference = the authoritative engine, hypothesis =
 * the shadow). Myers' O((N+M)·D) diff on normalized word texts, then every run of
 * deletions and insertions between two equal words is paired into substitutions; the
 * counts give the word error rate between the engines. Two engines running the same
 * steps should differ in few words, so D stays small even for hour-long meetings.
 */

export type AlignOp<T> =
  | { op: "equal"; ref: T; hyp: T }
  | { op: "sub"; ref: T; hyp: T }
  | { op: "del"; ref: T }
  | { op: "ins"; hyp: T };

export interface Alignment<T> {
  ops: AlignOp<T>[];
  substitutions: number;
  deletions: number;
  insertions: number;
  /** words in the reference */
  reference: number;
  /** (S + D + I) / N; with an empty reference, 1 if the hypothesis has words, else 0 */
  wer: number;
}

export class AlignmentTooLargeError extends Error {
  override readonly name = "AlignmentTooLargeError";
}

/** Lower-case, strip punctuation at both ends: "Hello," and "hello" are the same word. */
export const normalizeWord = (w: string): string => w.toLowerCase().replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, "");

export function alignWords<T>(ref: readonly T[], hyp: readonly T[], text: (t: T) => string, maxEdits = 4000): Alignment<T> {
  const a = ref.map((w) => normalizeWord(text(w)));
  const b = hyp.map((w) => normalizeWord(text(w)));
  const script = myers(a, b, maxEdits);
  if (!script) throw new AlignmentTooLargeError(`transcripts differ in more than ${maxEdits} words`);

  const ops: AlignOp<T>[] = [];
  let i = 0;
  let j = 0;
  let dels: T[] = [];
  let inss: T[] = [];
  const flush = (): void => {
    const pairs = Math.min(dels.length, inss.length);
    for (let k = 0; k < pairs; k++) ops.push({ op: "sub", ref: dels[k]!, hyp: inss[k]! });
    for (let k = pairs; k < dels.length; k++) ops.push({ op: "del", ref: dels[k]! });
    for (let k = pairs; k < inss.length; k++) ops.push({ op: "ins", hyp: inss[k]! });
    dels = [];
    inss = [];
  };
  for (const s of script) {
    if (s === "=") {
      flush();
      ops.push({ op: "equal", ref: ref[i++]!, hyp: hyp[j++]! });
    } else if (s === "-") dels.push(ref[i++]!);
    else inss.push(hyp[j++]!);
  }
  flush();
  const count = (op: AlignOp<T>["op"]): number => ops.filter((o) => o.op === op).length;
  const substitutions = count("sub");
  const deletions = count("del");
  const insertions = count("ins");
  const errors = substitutions + deletions + insertions;
  const wer = ref.length === 0 ? (hyp.length > 0 ? 1 : 0) : errors / ref.length;
  return { ops, substitutions, deletions, insertions, reference: ref.length, wer };
}

/** Myers' greedy diff with a trace for backtracking; null when more than maxD edits are needed. */
function myers(a: readonly string[], b: readonly string[], maxD: number): ("=" | "-" | "+")[] | null {
  const n = a.length;
  const m = b.length;
  const max = Math.min(n + m, maxD);
  const offset = max + 1;
  let v: Int32Array = new Int32Array(2 * max + 3);
  const trace: Int32Array[] = [];
  let found = -1;
  for (let d = 0; d <= max; d++) {
    trace.push(v.slice());
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[offset + k - 1]! < v[offset + k + 1]!) ? v[offset + k + 1]! : v[offset + k - 1]! + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      v[offset + k] = x;
      if (x >= n && y >= m) {
        found = d;
        break;
      }
    }
    if (found >= 0) break;
  }
  if (found < 0) return null;

  const script: ("=" | "-" | "+")[] = [];
  let x = n;
  let y = m;
  for (let d = found; d > 0; d--) {
    v = trace[d]!;
    const k = x - y;
    const prevK = k === -d || (k !== d && v[offset + k - 1]! < v[offset + k + 1]!) ? k + 1 : k - 1;
    const prevX = v[offset + prevK]!;
    const prevY = prevX - prevK;
    while (x > prevX && y > prevY) {
      script.push("=");
      x--;
      y--;
    }
    script.push(x === prevX ? "+" : "-");
    x = prevX;
    y = prevY;
  }
  while (x > 0 && y > 0) {
    script.push("=");
    x--;
    y--;
  }
  return script.reverse();
}
