/**
 * How fast this machine runs a fixed piece of work right now. On shared virtual machines the
 * speed of a core can change by 2× from one minute to the next (a CPU-bound loop measured
 * 1.1–2.2 s here), which moves wall-time ratios far more than the effects being measured;
 * the benches probe between rounds and print the spread, so a reader can tell a noisy run.
 */
export function speedProbeMs(): number {
  const t0 = performance.now();
  let x = 0;
  for (let i = 0; i < 20_000_000; i++) x = (x + i * 7) % 1_000_003;
  const ms = performance.now() - t0;
  if (x < 0) throw new Error("unreachable"); // keeps the loop from being optimized away
  return ms;
}

/** "a fixed loop took 41–83 ms across N probes (2.0× spread)" */
export function describeProbes(ms: readonly number[]): string {
  if (ms.length === 0) return "no speed probes";
  const lo = Math.min(...ms);
  const hi = Math.max(...ms);
  return `machine speed: a fixed loop took ${lo.toFixed(0)}–${hi.toFixed(0)} ms across ${ms.length} probes (${(hi / lo).toFixed(2)}× spread${hi / lo > 1.3 ? ": wall-time ratios of single rounds are unreliable, read the medians" : ""})`;
}
