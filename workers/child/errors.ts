/**
 * Errors of the child channel. Each says what happened to which child and, when the child
 * is gone, how it died and the last lines it logged. `retryable` follows the step error
 * convention (pipeline/steps/index.ts): false means retrying the same input cannot help.
 */

export interface ChildExit {
  pid: number | undefined;
  code: number | null;
  signal: NodeJS.Signals | null;
}

const describeExit = (e: ChildExit): string =>
  e.signal ? `was killed by ${e.signal}` : e.code === null ? "died" : `exited with code ${e.code}`;

const formatTail = (tail: string[]): string =>
  tail.length === 0 ? " (it logged nothing)" : `; last ${tail.length} log line(s):\n${tail.map((l) => `  | ${l}`).join("\n")}`;

/** The child process died (crash, OOM kill, exit) while a call was running or before it was ready. */
export class WorkerCrashError extends Error {
  override readonly name = "WorkerCrashError";
  readonly retryable = true;
  readonly pid: number | undefined;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  constructor(exit: ChildExit, readonly logTail: string[], readonly during: string) {
    super(`child process ${exit.pid ?? "?"} ${describeExit(exit)} ${during}${formatTail(logTail)}`);
    this.pid = exit.pid;
    this.code = exit.code;
    this.signal = exit.signal;
  }
}

/** A call did not finish within its time limit; the child was killed and will be replaced. */
export class ChildCallTimeoutError extends Error {
  override readonly name = "ChildCallTimeoutError";
  readonly retryable = true;
  constructor(readonly what: string, readonly timeoutMs: number, readonly pid: number | undefined, readonly logTail: string[]) {
    super(`${what} did not finish within ${timeoutMs} ms; child process ${pid ?? "?"} was killed${formatTail(logTail)}`);
  }
}

/** A call that streams progress went silent for longer than the stall limit. */
export class ChildStallError extends Error {
  override readonly name = "ChildStallError";
  readonly retryable = true;
  constructor(readonly what: string, readonly stallMs: number, readonly pid: number | undefined, readonly logTail: string[]) {
    super(`${what} reported no progress for ${stallMs} ms; child process ${pid ?? "?"} was killed${formatTail(logTail)}`);
  }
}

/** The child answered no ping (or did not become ready) in time: its event loop is stuck. */
export class ChildUnresponsiveError extends Error {
  override readonly name = "ChildUnresponsiveError";
  readonly retryable = true;
  constructor(readonly what: string, readonly waitedMs: number, readonly pid: number | undefined, readonly logTail: string[]) {
    super(`child process ${pid ?? "?"} did not answer for ${waitedMs} ms ${what}; it was killed${formatTail(logTail)}`);
  }
}

/** A message is larger than the channel allows; checked before anything is sent. */
export class PayloadTooLargeError extends Error {
  override readonly name = "PayloadTooLargeError";
  readonly retryable = false;
  constructor(readonly what: string, readonly bytes: number, readonly limit: number) {
    super(`${what} is ${bytes} bytes, more than the child channel's limit of ${limit} bytes (CHILD_MAX_PAYLOAD_BYTES); pass storage keys, not data`);
  }
}

/** The call was cancelled by its caller's AbortSignal. */
export class ChildCallCancelledError extends Error {
  override readonly name = "ChildCallCancelledError";
  readonly retryable = true;
  constructor(readonly what: string, reason?: unknown) {
    super(`${what} was cancelled${reason instanceof Error ? `: ${reason.message}` : ""}`);
  }
}

/** The channel is closed (runner closed, or child shut down). */
export class ChildChannelClosedError extends Error {
  override readonly name = "ChildChannelClosedError";
  readonly retryable = true;
  constructor(what: string) {
    super(`${what}: the child channel is closed`);
  }
}

/**
 * An error thrown by the step inside the child, rebuilt on this side: same name, message
 * and retryable flag (e.g. StepInputError stays non-retryable).
 */
export class ChildStepError extends Error {
  override name: string;
  readonly retryable: boolean;
  constructor(remote: { name: string; message: string; retryable?: boolean; stack?: string }, readonly pid: number | undefined) {
    super(remote.message);
    this.name = remote.name || "Error";
    this.retryable = remote.retryable !== false;
    if (remote.stack) this.stack = `${remote.stack}\n    --- in child process ${pid ?? "?"}`;
  }
}
