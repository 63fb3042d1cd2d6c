/**
 * Is this error a dependency being down (the S3 server, Postgres, Redis, the speech server
 * refusing connections or dropping them), rather than the step failing on its input? Such
 * an error is nobody's fault in the step: a worker hands the task back to its orchestrator
 * to run again a little later (Conductor: IN_PROGRESS with callbackAfterSeconds; BullMQ:
 * the job moved to delayed), which spends none of the step's retries. Bounded by the caller
 * (STEP_OUTAGE_HANDBACKS), so a dependency that never comes back still fails the task.
 *
 * Errors cross child-process boundaries as name and message only, so the message is read
 * as well as the codes along the `cause` chain.
 */
const CODES = new Set([
  "ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN", "ECONNABORTED", "UND_ERR_SOCKET", "UND_ERR_CONNECT_TIMEOUT",
  // Postgres: admin shutdown, crash shutdown, cannot connect now, connection failures
  "57P01", "57P02", "57P03", "08000", "08001", "08003", "08006",
]);
const TEXT = /ECONNREFUSED|ECONNRESET|socket hang up|Connection terminated|connection to server .* failed|the database system is (starting up|shutting down|in recovery mode)|Client network socket disconnected|terminating connection due to administrator command|Connection is closed|other side closed|fetch failed/i;

export function isDependencyOutage(err: unknown, depth = 0): boolean {
  if (!err || depth > 6) return false;
  const e = err as { code?: unknown; message?: unknown; cause?: unknown; detail?: unknown; errors?: unknown };
  if (typeof e.code === "string" && CODES.has(e.code)) return true;
  if (typeof e.message === "string" && TEXT.test(e.message)) return true;
  if (typeof e.detail === "string" && TEXT.test(e.detail)) return true;
  if (Array.isArray(e.errors) && e.errors.some((x) => isDependencyOutage(x, depth + 1))) return true;
  return isDependencyOutage(e.cause, depth + 1);
}
