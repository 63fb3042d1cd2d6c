/**
 * Run async jobs with at most `limit` in flight. On the first failure no new job starts;
 * the jobs already running are awaited (so nothing is left writing into a directory that
 * is about to be removed), then the first error is thrown.
 */
export async function runLimited<T>(jobs: readonly (() => Promise<T>)[], limit: number): Promise<T[]> {
  const results: T[] = new Array(jobs.length);
  let next = 0;
  let failed = false;
  let firstError: unknown;
  const lane = async (): Promise<void> => {
    while (!failed && next < jobs.length) {
      const i = next++;
      try {
        results[i] = await jobs[i]!();
      } catch (err) {
        if (!failed) firstError = err;
        failed = true;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, jobs.length)) }, lane));
  if (failed) throw firstError;
  return results;
}
