/**
 * What a client may read about a failure: a stable code and a human message. The text of
 * the error that caused it (an upstream URL, a response body, a driver message, a child's
 * log tail) belongs in the worker's log, never in a Result, an SSE event or an HTTP answer.
 *
 * A failure crosses Conductor and Postgres as text (`reasonForIncompletion`, a step's
 * message): `formatFailure` writes it as `[code] message`, and `clientFailure` reads any
 * stored text back into a code and a message fit for a client (text in another shape, from
 * an older worker or the orchestrator itself, is scrubbed of addresses and cut to a line).
 */

export interface PublicFailure {
  /** snake_case, stable: clients branch on it */
  code: string;
  /** one line for a person; no URLs, bodies or internals */
  message: string;
}

/**
 * An error whose `message` is already fit for a client. `detail` (and `cause`) carry what
 * only the log may show.
 */
export class PublicError extends Error {
  override readonly name: string = "PublicError";
  constructor(
    readonly code: string,
    message: string,
    readonly options: { detail?: string; retryable?: boolean; cause?: unknown } = {},
  ) {
    super(message);
    if (options.cause !== undefined) this.cause = options.cause;
  }
  get detail(): string | undefined {
    return this.options.detail;
  }
  get retryable(): boolean | undefined {
    return this.options.retryable;
  }
}

const CODE = /^[a-z][a-z0-9_]{1,63}$/;
const MAX_MESSAGE = 300;

/** Remove what must not reach a client from a line of text: addresses, paths, bodies. */
export function scrub(text: string): string {
  const firstLine = text.split(/\r?\n/, 1)[0] ?? "";
  return firstLine
    .replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s'"),]+/gi, "<address>")
    .replace(/\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b/g, "<address>")
    .replace(/(?:^|\s)\/(?:[\w.-]+\/)+[\w.-]*/g, " <path>")
    .replace(/[{[].*$/, "")
    .replace(/\s+/g, " ")
    .trim()
    .slice(0, MAX_MESSAGE);
}

/**
 * Errors the pipeline throws, by class name, as a client should read them. Their own
 * messages name endpoints, quote response bodies or carry a child's log tail: those stay in
 * the log. (Matched by name: the classes live in adapters this module must not import.)
 */
const BY_NAME: Record<string, PublicFailure> = {
  LlmError: { code: "text_model_unavailable", message: "the text model did not give a usable answer" },
  AsrError: { code: "speech_recognition_failed", message: "the speech recognizer could not transcribe this audio" },
  DecoderError: { code: "speech_recognition_failed", message: "the speech decoder failed" },
  AudioToolError: { code: "audio_decode_failed", message: "the audio could not be decoded" },
  WavFormatError: { code: "audio_decode_failed", message: "the audio could not be decoded" },
  StorageKeyNotFoundError: { code: "object_missing", message: "an object the step needs is missing from storage" },
  WorkerCrashError: { code: "worker_crashed", message: "the process running the step stopped unexpectedly" },
  ChildChannelClosedError: { code: "worker_crashed", message: "the process running the step stopped unexpectedly" },
  ChildUnresponsiveError: { code: "worker_crashed", message: "the process running the step stopped answering" },
  ChildStallError: { code: "step_stalled", message: "the step stopped making progress" },
  ChildCallTimeoutError: { code: "step_timed_out", message: "the step took longer than it may" },
  ExternalPayloadError: { code: "payload_too_large", message: "the step's input is larger than the orchestrator passes inline" },
  StepInputError: { code: "invalid_input", message: "the step's input is not valid" },
  StepOutputError: { code: "invalid_output", message: "the step produced output that breaks its contract" },
  JoinNormalizationError: { code: "invalid_input", message: "the tracks' results did not come back complete" },
};

/** Errors whose own message describes the client's input, never our internals: name → code. */
const SELF_DESCRIBING: Record<string, string> = {
  StepInputError: "invalid_input",
  StepOutputError: "invalid_output",
  ForkPlanError: "invalid_input",
  UnknownStorageKeyError: "object_missing",
  NotAudioError: "not_audio",
  EmptyTrackError: "empty_track",
  // duration limits (pipeline/audio/errors.ts): the same codes the API refuses an upload with
  TrackTooLongError: "track_too_long",
  RecordingTooLongError: "recording_too_long",
  NoAudioError: "no_audio",
  // every track of the meeting failed (pipeline/steps/track-failures.ts): its message lists their public reasons
  AllTracksFailedError: "all_tracks_failed",
};

/** The client's view of an error thrown anywhere in a step. */
export function publicFailure(err: unknown): PublicFailure {
  if (err instanceof PublicError && CODE.test(err.code)) return { code: err.code, message: scrub(err.message) || err.code.replace(/_/g, " ") };
  const e = err as { name?: string; issues?: unknown } | undefined;
  if (e?.name === "ZodError" || Array.isArray(e?.issues)) return { code: "invalid_input", message: "the step's input is not valid" };
  // these say what was wrong with the client's own input (a field and its rule, a track and
  // its key, what the decoder made of it): shown, scrubbed of anything path- or address-like
  const own = e?.name ? SELF_DESCRIBING[e.name] : undefined;
  if (own && err instanceof Error) return { code: own, message: scrub(err.message) || own.replace(/_/g, " ") };
  const known = e?.name ? BY_NAME[e.name] : undefined;
  if (known) return { ...known };
  return { code: "step_failed", message: "the step failed unexpectedly (the worker's log has the details)" };
}

/** Invalid input fails the same way every time: never worth a retry. */
export const isInvalidInput = (f: PublicFailure): boolean => f.code === "invalid_input";

/** `[code] message`: how a failure travels as text (Conductor's reason, a stored message). */
export const formatFailure = (f: PublicFailure): string => `[${f.code}] ${f.message}`;

/** Read stored failure text for a client: `[code] message` as written, anything else scrubbed. */
export function clientFailure(text: string | null | undefined, fallbackCode = "failed"): PublicFailure | null {
  if (text === null || text === undefined || text === "") return null;
  const m = /^\[([a-z][a-z0-9_]{1,63})\] (.*)$/s.exec(text.trim());
  if (m) return { code: m[1]!, message: scrub(m[2]!) };
  // e.g. "transcribe_track_1: [asr_unavailable] …": the orchestrator names the task first
  const inner = /^([a-z][a-z0-9_]*): \[([a-z][a-z0-9_]{1,63})\] (.*)$/s.exec(text.trim());
  if (inner) return { code: inner[2]!, message: `${inner[1]}: ${scrub(inner[3]!)}` };
  // the orchestrator may wrap it: "Task detect_topics failed with status FAILED and reason: '[code] …'"
  const wrapped = /\[([a-z][a-z0-9_]{1,63})\] ([^'"\n]*)/.exec(text);
  if (wrapped) return { code: wrapped[1]!, message: scrub(wrapped[2]!) || wrapped[1]!.replace(/_/g, " ") };
  return { code: fallbackCode, message: scrub(text) || "failed" };
}
