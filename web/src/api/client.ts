/**
 * The API client: openapi-fetch over the types generated from the API's own OpenAPI
 * document (schema.d.ts, `npm run web:client`), with the person's key sent as
 * `Authorization: Bearer …` on every request (never in a URL).
 */
import createClient, { type Client } from "openapi-fetch";
import type { paths } from "./schema";

export type Api = Client<paths>;

type Json<T> = T extends { content: { "application/json": infer B } } ? B : never;
export type RecordingView = Json<paths["/v1/recordings/{id}"]["get"]["responses"][200]>;
export type RecordingList = Json<paths["/v1/recordings"]["get"]["responses"][200]>;
export type RecordingSummary = RecordingList["items"][number];
export type RecordingStatus = RecordingView["status"];
export type Result = NonNullable<RecordingView["result"]>;
export type Word = Result["words"][number];
export type Participant = Result["participants"][number];
export type StepProgress = RecordingView["progress"]["steps"][number];
export type ShadowView = Json<paths["/v1/recordings/{id}/shadow"]["get"]["responses"][200]>;
export type ShadowSummary = Json<paths["/v1/shadow/summary"]["get"]["responses"][200]>;
export type Waveform = Json<paths["/v1/recordings/{id}/waveform"]["get"]["responses"][200]>;
export type Accepted = Json<paths["/v1/recordings"]["post"]["responses"][202]>;
export type TranscriptFormat = NonNullable<NonNullable<paths["/v1/recordings/{id}/transcript"]["get"]["parameters"]["query"]>["format"]>;

/** An API answer that was not 2xx: its status and the `{error, message}` body. */
export class ApiError extends Error {
  override readonly name = "ApiError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** `{error, message}` of a failed answer (or what can be said without one). */
export function apiError(status: number, body: unknown): ApiError {
  const b = body as { error?: unknown; message?: unknown } | undefined;
  if (b && typeof b.error === "string") return new ApiError(status, b.error, typeof b.message === "string" ? b.message : b.error);
  return new ApiError(status, status === 0 ? "network_error" : "http_error", status === 0 ? "the server could not be reached" : `the server answered ${status}`);
}

/** The data of an openapi-fetch answer, or its error thrown as ApiError. */
export function unwrap<T>(r: { data?: T; error?: unknown; response: Response }): T {
  if (r.response.ok && r.data !== undefined) return r.data;
  throw apiError(r.response.status, r.error);
}

export function createApi(key: string, origin: string = window.location.origin): Api {
  const api = createClient<paths>({ baseUrl: origin });
  api.use({
    onRequest({ request }) {
      request.headers.set("authorization", `Bearer ${key}`);
      return request;
    },
  });
  return api;
}

/** A route the generated client cannot express (a binary body): fetched with the same header. */
export async function fetchBlob(key: string, url: string, signal?: AbortSignal): Promise<Blob> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${key}` }, ...(signal ? { signal } : {}) });
  if (!res.ok) throw apiError(res.status, await res.json().catch(() => undefined));
  return res.blob();
}
