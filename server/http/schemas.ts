/**
 * The HTTP API's request and response shapes (zod): routes validate with them, responses
 * are serialized through them, and /openapi.json is generated from them. Shapes of the
 * pipeline (the Result) come from pipeline/contracts, never restated here.
 */
import { z } from "zod/v4";
import { Result, Warning } from "../../pipeline/contracts/index.ts";
import { TRANSCRIPT_FORMATS } from "../transcript.ts";

export const RecordingStatus = z.enum(["queued", "processing", "completed", "failed"]);

/** `{error, message}`: every 4xx and 5xx answer */
export const ErrorBody = z.object({
  error: z.string().describe("a stable, snake_case code"),
  message: z.string().describe("what happened, for a person"),
});

/** every error status a route may answer with */
export function errors<const S extends readonly number[]>(...statuses: S): { [K in S[number]]: typeof ErrorBody } {
  return Object.fromEntries(statuses.map((s) => [s, ErrorBody])) as { [K in S[number]]: typeof ErrorBody };
}

export const RecordingParams = z.object({ id: z.string().min(1).max(200).describe("the recording's id (a UUID)") });

export const ListQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().min(1).max(200).optional().describe("next_cursor of the previous page"),
  status: RecordingStatus.optional(),
});

export const Waveform = z.object({
  duration: z.number().describe("the mixdown's length in seconds"),
  peaks: z.array(z.number().min(0).max(1)).describe("evenly spaced peak levels over the whole mixdown, 0..1"),
});

export const TranscriptQuery = z.object({ format: z.enum(TRANSCRIPT_FORMATS).default("json") });

export const IdempotencyKey = z.string().regex(/^[\x21-\x7e]{1,200}$/, "Idempotency-Key must be 1-200 visible ASCII characters");

export const Accepted = z.object({ id: z.string(), status: RecordingStatus });

export const RecordingSummary = z.object({
  id: z.string(),
  status: RecordingStatus,
  language: z.string(),
  tracks: z.number().int(),
  participants: z.array(z.string()).describe("the tracks' participant names, in track order"),
  title: z.string().nullable().describe("the Result's title, once completed"),
  duration: z.number().nullable().describe("the Result's duration in seconds, once completed"),
  created_at: z.string(),
  updated_at: z.string(),
  error: z.string().nullable(),
  warnings: z.array(Warning).describe("a completed recording's warnings: one per track it went on without"),
});

export const RecordingList = z.object({ items: z.array(RecordingSummary), next_cursor: z.string().nullable() });

export const StepProgress = z.object({
  step: z.string(),
  track_index: z.number().int().nullable(),
  status: z.string(),
  attempts: z.number().int(),
  duration_ms: z.number().nullable(),
  worker_id: z.string().nullable(),
  message: z.string().nullable(),
  code: z.string().optional().describe("a failed or retrying step's error code"),
});

export const RecordingView = z.object({
  id: z.string(),
  status: RecordingStatus,
  language: z.string(),
  created_at: z.string(),
  updated_at: z.string(),
  completed_at: z.string().nullable(),
  workflow_id: z.string().nullable(),
  error: z.string().nullable().describe("why it failed, for a person"),
  error_code: z.string().nullable(),
  failed_step: z.string().nullable(),
  warnings: z.array(Warning).describe("a completed recording's warnings: one per track that could not be decoded or transcribed (the meeting went on without it)"),
  tracks: z.array(
    z.object({
      index: z.number().int(),
      status: z.enum(["ok", "failed"]).nullable().describe("once completed: whether the track's words are in the Result"),
      participant: z.string(),
      offset_seconds: z.number(),
      filename: z.string().nullable(),
      size_bytes: z.number().nullable(),
      format: z.string().nullable(),
    }),
  ),
  progress: z.object({ completed_steps: z.number().int(), total_steps: z.number().int(), steps: z.array(StepProgress) }),
  result: Result.optional().describe("once completed"),
});

/** A JSON body naming tracks already in the bucket (the multipart form is the other way in). */
export const KeyManifestBody = z.object({
  language: z.string().optional(),
  tracks: z.array(z.object({ key: z.string(), participant: z.string(), offset_seconds: z.number().optional() })),
});

const Classification = z.enum(["matched", "mismatched", "ignored"]);
const EngineRun = z.object({ engine: z.string(), run_id: z.string().nullable(), status: z.string(), error: z.string().nullable() });

export const ShadowView = z.object({
  recording_id: z.string(),
  status: z.enum(["running", "matched", "mismatched", "error"]),
  bullmq_run_id: z.string().nullable(),
  conductor_workflow_id: z.string().nullable(),
  counts: z.object({ matched: z.number().int(), mismatched: z.number().int(), ignored: z.number().int() }),
  error: z.string().nullable(),
  started_at: z.string(),
  compared_at: z.string().nullable(),
  report: z
    .object({
      verdict: z.enum(["matched", "mismatched"]),
      counts: z.record(Classification, z.number().int()),
      primary: EngineRun,
      shadow: EngineRun,
      items: z.array(
        z.object({
          step: z.string(),
          track_index: z.number().int().nullable(),
          check: z.string(),
          classification: Classification,
          summary: z.string(),
          reason: z.string().optional(),
          details: z.unknown().optional(),
        }),
      ),
      durations: z.array(
        z.object({
          step: z.string(),
          track_index: z.number().int().nullable(),
          primary_ms: z.number().nullable(),
          shadow_ms: z.number().nullable(),
          primary_attempts: z.number().int(),
          shadow_attempts: z.number().int(),
        }),
      ),
    })
    .nullable(),
});

export const ShadowSummary = z.object({
  recordings: z.number().int(),
  running: z.number().int(),
  compared: z.number().int(),
  matched: z.number().int(),
  mismatched: z.number().int(),
  errors: z.number().int(),
  match_rate: z.number().nullable(),
  mismatches_by_step: z.array(z.object({ step: z.string(), mismatches: z.number().int(), recordings: z.number().int() })),
  durations: z.array(z.object({ step: z.string(), engine: z.string(), samples: z.number().int(), p50_ms: z.number(), p95_ms: z.number() })),
});

export const Health = z.object({ status: z.literal("ok") });
export const Readiness = z.object({
  status: z.enum(["ready", "not_ready"]),
  checks: z.record(z.string(), z.enum(["up", "down"])),
  error: z.string().optional(),
  message: z.string().optional(),
});

// ---- integrations: webhooks, speakers, search ------------------------------------------
export const WEBHOOK_EVENT_NAMES = ["recording.completed", "recording.failed", "recording.participants_updated"] as const;

export const WebhookCreate = z
  .object({
    url: z.string().min(1).max(2048).describe("http(s) URL of the receiver; no credentials in it"),
    events: z.array(z.enum(WEBHOOK_EVENT_NAMES)).min(1).max(WEBHOOK_EVENT_NAMES.length).describe("events to send"),
    secret: z
      .string()
      .min(16)
      .max(200)
      .regex(/^[\x21-\x7e]+$/, "secret must be visible ASCII characters")
      .optional()
      .describe("HMAC key for Trackscribe-Signature; generated (and shown once) when absent"),
  })
  .strict();

export const WebhookParams = z.object({ id: z.string().min(1).max(200).describe("the webhook's id") });
export const DeliveryParams = WebhookParams.extend({ delivery_id: z.string().min(1).max(200).describe("the delivery's id") });

export const WebhookView = z.object({
  id: z.string(),
  url: z.string(),
  events: z.array(z.string()),
  created_at: z.string(),
});
export const WebhookCreated = WebhookView.extend({ secret: z.string().describe("shown once: keep it to verify signatures") });
export const WebhookList = z.object({ items: z.array(WebhookView) });

export const DeliveryView = z.object({
  id: z.string().describe("also the Trackscribe-Delivery header and the body's id"),
  event: z.string(),
  recording_id: z.string(),
  status: z.enum(["pending", "delivered", "failed"]),
  attempts: z.number().int(),
  next_attempt_at: z.string().nullable().describe("when the next attempt is due (pending only)"),
  last_status_code: z.number().int().nullable(),
  last_error: z.string().nullable(),
  created_at: z.string(),
  delivered_at: z.string().nullable(),
  redelivery_of: z.string().nullable(),
  attempt_log: z.array(
    z.object({
      attempt: z.number().int(),
      at: z.string(),
      status_code: z.number().int().nullable(),
      error: z.string().nullable(),
      response_body: z.string().nullable().describe("at most 1 KB of the receiver's answer (the owner's own endpoint)"),
      duration_ms: z.number().nullable(),
    }),
  ),
});
export const DeliveryList = z.object({ items: z.array(DeliveryView), next_cursor: z.string().nullable() });
export const DeliveryQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().min(1).max(200).optional().describe("next_cursor of the previous page"),
});

/** A speaker's display name: 1-200 characters, no control characters or angle brackets. */
export const SpeakerName = z
  .string()
  .trim()
  .min(1, "name must not be empty")
  .max(200, "name is longer than 200 characters")
  .refine((s) => !/[\u0000-\u001f\u007f<>]/.test(s), "name contains control characters or angle brackets");

export const ParticipantsPatch = z
  .object({
    participants: z
      .array(z.object({ speaker: z.number().int().min(0).max(1023), name: SpeakerName }).strict())
      .min(1)
      .max(256)
      .refine((ps) => new Set(ps.map((p) => p.speaker)).size === ps.length, "each speaker may be named once"),
  })
  .strict();
export const ParticipantsView = z.object({ id: z.string(), participants: z.array(z.object({ speaker: z.number().int(), name: z.string() })) });

export const SearchQuery = z.object({
  q: z.string().trim().min(1).max(500).describe("websearch syntax: words, \"a phrase\", or, -not"),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().min(1).max(400).optional().describe("next_cursor of the previous page"),
});
export const SearchResults = z.object({
  items: z.array(
    z.object({
      recording_id: z.string(),
      title: z.string(),
      speaker: z.number().int().nullable().describe("null: the hit is in the title or summary"),
      name: z.string().nullable(),
      start: z.number().nullable().describe("seconds on the recording's timeline"),
      text: z.string().describe("the turn (or title/summary) that matched"),
    }),
  ),
  next_cursor: z.string().nullable(),
});
