/** Typed HTTP errors: every one is answered as JSON `{error, message}` with its status. */
export class ApiError extends Error {
  override readonly name: string = "ApiError";
  constructor(readonly statusCode: number, readonly code: string, message: string) {
    super(message);
  }
}

export const badRequest = (code: string, message: string): ApiError => new ApiError(400, code, message);
export const notFound = (message: string): ApiError => new ApiError(404, "not_found", message);
export const conflict = (code: string, message: string): ApiError => new ApiError(409, code, message);

export class UnauthorizedError extends ApiError {
  override readonly name = "UnauthorizedError";
  constructor(message: string) {
    super(401, "unauthorized", message);
  }
}

/** A dependency (Postgres, S3, Conductor) did not answer as needed. */
export class DependencyError extends ApiError {
  override readonly name = "DependencyError";
  /**
   * `message` is what the client reads: never the dependency's own error text (it can carry
   * internal URLs or response bodies); that is `cause`, which only the log shows.
   */
  constructor(readonly dependency: "postgres" | "s3" | "conductor", message: string, cause?: unknown) {
    super(503, `${dependency}_unavailable`, message);
    if (cause !== undefined) this.cause = cause;
  }
}

/** The client went away mid-request: nothing can be answered. */
export class ClientGoneError extends Error {
  override readonly name = "ClientGoneError";
}
