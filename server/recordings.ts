/**
 * The recording use cases behind the routes: accept an upload (tracks streamed to storage,
 * rows, workflow start; any failure removes everything again), show one with its progress
 * and Result, retry, delete, and reconcile the stored status with Conductor's.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { KeyManifest, PipelineInput, Result } from "../pipeline/contracts/index.ts";
import type { Storage } from "../pipeline/ports.ts";
import type { ResultSink } from "../pipeline/steps/deps.ts";
import type { WorkflowGateway, WorkflowSnapshot } from "./conductor.ts";
import { ApiError, badRequest, ClientGoneError, conflict, DependencyError, notFound } from "./errors.ts";
import type { RecordingRow, RecordingsRepo, RecordingStatus, StepRunRow, TrackRow } from "./db/recordings-repo.ts";
import { describeIssues, receiveUpload, type TrackSink, type UploadPart } from "./upload/receive.ts";
import { sniffAudio, SNIFF_BYTES, describeFormats } from "./upload/sniff.ts";
import { recordingPrefix } from "./storage-sweep.ts";
import { taskCount } from "../pipeline/state/index.ts";

export interface RecordingServiceDeps {
  repo: RecordingsRepo;
  storage: Storage;
  /** how track bytes are stored (S3 multipart upload, or storage.put for a local directory) */
  trackSink: TrackSink;
  workflows: WorkflowGateway;
  results: ResultSink;
  log: Logger;
  limits: { maxTracks: number; maxTrackBytes: number };
  /** called after a workflow started (shadow mode) */
  onStarted?: (recordingId: string, input: PipelineInput, workflowId: string) => void;
  /** called on DELETE once the workflow is terminated, before rows and objects go (shadow mode: stop its run) */
  beforeDelete?: (recordingId: string) => Promise<void>;
  /** counts uploads by outcome (metrics) */
  onUploadOutcome?: (outcome: string, bytes: number) => void;
  /** minimum time between two Conductor look-ups of one recording */
  reconcileEveryMs?: number;
}

/** Steps of one run, counted from the pipeline graph (per-track steps once per track). */
export const totalSteps = (tracks: number): number => taskCount(tracks);

export interface RecordingView {
  id: string;
  status: RecordingStatus;
  language: string;
  created_at: string;
  updated_at: string;
  completed_at: string | null;
  workflow_id: string | null;
  error: string | null;
  failed_step: string | null;
  tracks: { index: number; participant: string; offset_seconds: number; filename: string | null; size_bytes: number | null; format: string | null }[];
  progress: {
    completed_steps: number;
    total_steps: number;
    steps: { step: string; track_index: number | null; status: string; attempts: number; duration_ms: number | null; worker_id: string | null; message: string | null }[];
  };
  result?: Result;
}

const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export function createRecordingService(deps: RecordingServiceDeps) {
  const { repo, storage, workflows, log } = deps;
  const lastChecked = new Map<string, number>();
  const reconcileEveryMs = deps.reconcileEveryMs ?? 2000;

  /**
   * Remove what a failed or cancelled upload left: objects, rows. Never throws. The upload's
   * intent row goes only once its objects are gone; else the storage sweeper removes them
   * later (server/storage-sweep.ts).
   */
  async function discard(id: string, why: string): Promise<void> {
    const [objects, rows] = await Promise.allSettled([storage.deletePrefix(recordingPrefix(id)), repo.delete(id)]);
    if (objects.status === "rejected" || rows.status === "rejected") {
      log.error({ recording_id: id, objects: objects.status, rows: rows.status, why }, "cleanup of a refused upload failed");
      return;
    }
    await repo.clearUploadIntent(id).catch((err: unknown) => log.warn({ err, recording_id: id }, "could not clear an upload intent; the storage sweeper will"));
    log.info({ recording_id: id, removed_objects: objects.value, why }, "refused upload removed");
  }

  /** Rows, then the workflow; if Conductor refuses, everything is removed again. */
  async function commit(id: string, language: string, source: "upload" | "bucket", tracks: TrackRow[]): Promise<RecordingRow> {
    const input = PipelineInput.parse({
      recording_id: id,
      language,
      namespace: "conductor",
      tracks: tracks.map((t) => ({ track_index: t.track_index, participant: t.participant, offset_seconds: t.offset_seconds, source_key: t.source_key })),
    });
    const row = await repo.create({ id, language, source, tracks });
    let workflowId: string;
    try {
      workflowId = await workflows.start(input);
    } catch (err) {
      throw new DependencyError("conductor", `the recording was not accepted: ${(err as Error).message}`);
    }
    try {
      await repo.setWorkflowId(id, workflowId);
    } catch (err) {
      await workflows.remove(workflowId, "recording could not be stored").catch(() => undefined);
      throw err;
    }
    log.info({ recording_id: id, workflow_id: workflowId, tracks: tracks.length }, "workflow started");
    deps.onStarted?.(id, input, workflowId);
    return { ...row, workflow_id: workflowId };
  }

  /** Idempotency-Key handling around an accept function. */
  async function withIdempotency(
    key: string | undefined,
    accept: () => Promise<RecordingRow>,
  ): Promise<{ recording: { id: string; status: RecordingStatus }; replayed: boolean }> {
    if (key === undefined) return { recording: await accept(), replayed: false };
    const r = await repo.reserveKey(key);
    if (r.state === "done") {
      const existing = await repo.get(r.recordingId);
      if (existing) return { recording: existing, replayed: true };
      return withIdempotency(key, accept); // deleted meanwhile: the key went with it
    }
    if (r.state === "pending") throw conflict("upload_in_progress", "an upload with this Idempotency-Key is still in progress");
    try {
      const rec = await accept();
      await repo.completeKey(key, rec.id);
      return { recording: rec, replayed: false };
    } catch (err) {
      await repo.releaseKey(key).catch((e: unknown) => log.error({ err: e }, "could not release an idempotency key"));
      throw err;
    }
  }

  async function acceptUpload(parts: AsyncIterable<UploadPart>, clientGone: () => boolean): Promise<RecordingRow> {
    const id = randomUUID();
    let bytes = 0;
    try {
      // before the first object: should this process stop mid-upload, the sweeper knows what to remove
      await repo.addUploadIntent(id);
      const { manifest, tracks } = await receiveUpload(parts, {
        recordingId: id,
        ...deps.limits,
        sink: deps.trackSink,
        clientGone,
        onTrackStored: (t) => {
          bytes += t.size_bytes ?? 0;
        },
      });
      if (clientGone()) throw new ClientGoneError("the client disconnected before the upload was accepted");
      const rec = await commit(id, manifest.language, "upload", tracks);
      deps.onUploadOutcome?.("accepted", bytes);
      return rec;
    } catch (err) {
      await discard(id, (err as Error).message);
      deps.onUploadOutcome?.(err instanceof ApiError ? err.code : err instanceof ClientGoneError ? "client_gone" : "error", bytes);
      throw err;
    }
  }

  async function acceptKeys(body: unknown): Promise<RecordingRow> {
    const parsed = KeyManifest.safeParse(body);
    if (!parsed.success) {
      const noTracks = parsed.error.issues.some((i) => i.message === "the manifest has no tracks");
      throw badRequest(noTracks ? "no_tracks" : "invalid_manifest", `manifest is invalid: ${describeIssues(parsed.error)}`);
    }
    const m = parsed.data;
    if (m.tracks.length > deps.limits.maxTracks) {
      throw badRequest("too_many_tracks", `the manifest lists ${m.tracks.length} tracks; at most ${deps.limits.maxTracks} are accepted`);
    }
    const tracks: TrackRow[] = [];
    for (const [i, t] of m.tracks.entries()) {
      const label = `track ${i} (${t.participant})`;
      let size: number | undefined;
      let head: Buffer;
      try {
        size = await storage.size(t.key);
        if (size === undefined) throw badRequest("missing_object", `${label}: no object '${t.key}' in the bucket`);
        if (size > deps.limits.maxTrackBytes) throw new ApiError(413, "track_too_large", `${label} is ${size} bytes; the limit is ${deps.limits.maxTrackBytes}`);
        if (size === 0) throw badRequest("empty_track", `${label} is empty`);
        const chunks: Buffer[] = [];
        for await (const c of await storage.stream(t.key, { start: 0, end: Math.min(size, SNIFF_BYTES) - 1 })) chunks.push(c as Buffer);
        head = Buffer.concat(chunks);
      } catch (err) {
        if (err instanceof ApiError) throw err;
        throw new DependencyError("s3", `${label}: could not read '${t.key}': ${(err as Error).message}`);
      }
      const format = sniffAudio(head);
      if (!format) throw new ApiError(415, "unsupported_media_type", `${label} ('${t.key}') is not audio (expected ${describeFormats}; judged from its first bytes)`);
      tracks.push({ track_index: i, participant: t.participant, offset_seconds: t.offset_seconds, source_key: t.key, owned: false, filename: null, size_bytes: size, format });
    }
    const id = randomUUID();
    try {
      return await commit(id, m.language, "bucket", tracks);
    } catch (err) {
      // the referenced objects are the client's: only our rows (and any derived objects) go
      await discard(id, (err as Error).message);
      throw err;
    }
  }

  async function reconcileRow(rec: RecordingRow, force = false): Promise<RecordingRow> {
    if (rec.status === "completed" || rec.status === "failed" || !rec.workflow_id) return rec;
    const now = Date.now();
    if (!force && now - (lastChecked.get(rec.id) ?? 0) < reconcileEveryMs) return rec;
    lastChecked.set(rec.id, now);
    if (lastChecked.size > 10_000) for (const k of [...lastChecked.keys()].slice(0, 5_000)) lastChecked.delete(k);
    let wf: WorkflowSnapshot | undefined;
    try {
      wf = await workflows.get(rec.workflow_id);
    } catch (err) {
      log.debug({ err, recording_id: rec.id }, "Conductor look-up failed; status left as stored");
      return rec;
    }
    if (!wf) {
      await repo.markFailed(rec.id, `Conductor has no workflow ${rec.workflow_id} any more`, null);
    } else if (wf.status === "FAILED" || wf.status === "TIMED_OUT" || wf.status === "TERMINATED") {
      await repo.markFailed(rec.id, wf.reason ?? `workflow ${wf.status.toLowerCase()}`, wf.failed_step ?? null);
    } else if (wf.status === "COMPLETED") {
      if (!(await repo.result(rec.id))) {
        // finalize normally stores the Result itself; fall back to the workflow's output
        const candidate = Result.safeParse((wf.output?.result as unknown) ?? wf.output);
        if (candidate.success) await deps.results.saveResult(rec.id, "conductor", candidate.data);
        else await repo.markFailed(rec.id, "the workflow completed without a Result", "finalize");
      }
    } else return rec;
    return (await repo.get(rec.id)) ?? rec;
  }

  function view(d: NonNullable<Awaited<ReturnType<RecordingsRepo["details"]>>>): RecordingView {
    const r = d.recording;
    const succeeded = d.steps.filter((s: StepRunRow) => s.status === "succeeded").length;
    return {
      id: r.id,
      status: r.status,
      language: r.language,
      created_at: r.created_at.toISOString(),
      updated_at: r.updated_at.toISOString(),
      completed_at: r.completed_at ? r.completed_at.toISOString() : null,
      workflow_id: r.workflow_id,
      error: r.error,
      failed_step: r.failed_step,
      tracks: d.tracks.map((t) => ({ index: t.track_index, participant: t.participant, offset_seconds: t.offset_seconds, filename: t.filename, size_bytes: t.size_bytes, format: t.format })),
      progress: {
        completed_steps: r.status === "completed" ? totalSteps(d.tracks.length) : Math.min(succeeded, totalSteps(d.tracks.length)),
        total_steps: totalSteps(d.tracks.length),
        steps: d.steps.map((s) => ({
          step: s.step,
          track_index: s.track_index < 0 ? null : s.track_index,
          status: s.status,
          attempts: s.attempts,
          duration_ms: s.duration_ms,
          worker_id: s.worker_id,
          message: s.message,
        })),
      },
      ...(r.status === "completed" && d.result ? { result: d.result.result } : {}),
    };
  }

  const checkId = (id: string): void => {
    if (!ID_PATTERN.test(id)) throw notFound(`no recording '${id.slice(0, 80)}'`);
  };

  return {
    isValidId: (id: string): boolean => ID_PATTERN.test(id),

    async createFromUpload(parts: AsyncIterable<UploadPart>, opts: { idempotencyKey?: string; clientGone: () => boolean }) {
      return withIdempotency(opts.idempotencyKey, () => acceptUpload(parts, opts.clientGone));
    },

    async createFromKeys(body: unknown, opts: { idempotencyKey?: string }) {
      return withIdempotency(opts.idempotencyKey, () => acceptKeys(body));
    },

    async get(id: string): Promise<RecordingView> {
      checkId(id);
      const d = await repo.details(id);
      if (!d) throw notFound(`no recording '${id}'`);
      if (d.recording.status === "queued" || d.recording.status === "processing") {
        // never make a status read wait for Conductor: the look-up (throttled per recording)
        // runs alongside and the next read shows what it found
        reconcileRow(d.recording).catch((err: unknown) => log.debug({ err, recording_id: id }, "reconcile failed"));
      }
      return view(d);
    },

    /** The stored row (404 when unknown), reconciled when due. */
    async status(id: string): Promise<RecordingRow> {
      checkId(id);
      const rec = await repo.get(id);
      if (!rec) throw notFound(`no recording '${id}'`);
      return reconcileRow(rec);
    },

    reconcile: reconcileRow,

    async result(id: string): Promise<{ recording: RecordingRow; result: Result; audio_key: string | null }> {
      const rec = await this.status(id);
      if (rec.status !== "completed") throw conflict("not_completed", `recording ${id} is ${rec.status}; its transcript is available once it has completed`);
      const r = await repo.result(id);
      if (!r) throw conflict("not_completed", `recording ${id} has no result yet`);
      return { recording: rec, result: r.result, audio_key: r.audio_key };
    },

    async retry(id: string): Promise<RecordingRow> {
      const rec = await this.status(id);
      if (rec.status !== "failed") throw conflict("not_failed", `recording ${id} is ${rec.status}; only a failed recording can be retried`);
      if (!rec.workflow_id) throw conflict("no_workflow", `recording ${id} has no workflow to retry`);
      let wf: WorkflowSnapshot | undefined;
      try {
        wf = await workflows.get(rec.workflow_id);
        if (!wf) {
          // Conductor lost it: start the same input afresh
          const tracks = await repo.tracks(id);
          const input = PipelineInput.parse({
            recording_id: id,
            language: rec.language,
            namespace: "conductor",
            tracks: tracks.map((t) => ({ track_index: t.track_index, participant: t.participant, offset_seconds: t.offset_seconds, source_key: t.source_key })),
          });
          await repo.setWorkflowId(id, await workflows.start(input));
        } else if (wf.status !== "RUNNING") {
          await workflows.retry(rec.workflow_id);
        }
      } catch (err) {
        if (err instanceof ApiError) throw err;
        throw new DependencyError("conductor", `could not retry the workflow: ${(err as Error).message}`);
      }
      lastChecked.set(id, Date.now());
      await repo.markRetrying(id);
      log.info({ recording_id: id, workflow_id: rec.workflow_id }, "retry requested");
      return (await repo.get(id)) ?? rec;
    },

    async remove(id: string): Promise<void> {
      checkId(id);
      const rec = await repo.get(id);
      if (!rec) throw notFound(`no recording '${id}'`);
      if (rec.workflow_id) {
        try {
          await workflows.remove(rec.workflow_id, `recording ${id} deleted`);
        } catch (err) {
          throw new DependencyError("conductor", `could not terminate workflow ${rec.workflow_id}; nothing was deleted: ${(err as Error).message}`);
        }
      }
      if (deps.beforeDelete) {
        try {
          await deps.beforeDelete(id);
        } catch (err) {
          log.warn({ err, recording_id: id }, "could not stop the recording's shadow run; deleting anyway");
        }
      }
      const gone = await repo.delete(id);
      if (!gone) throw notFound(`no recording '${id}'`);
      const removed = await storage.deletePrefix(recordingPrefix(id));
      // a task that was already running when the workflow was terminated may still write
      // derived audio: repo.delete left a row from which the storage sweeper clears the prefix
      // again on a schedule (server/storage-sweep.ts)
      log.info({ recording_id: id, workflow_id: rec.workflow_id, removed_objects: removed }, "recording deleted");
    },

    /** Look at every unfinished recording once (the background reconciler's tick). */
    async reconcileAll(limit = 50): Promise<number> {
      let changed = 0;
      for (const rec of await repo.unfinished(limit)) {
        const after = await reconcileRow(rec);
        if (after.status !== rec.status) changed++;
      }
      return changed;
    },

    close(): void {
      lastChecked.clear();
    },
  };
}

export type RecordingService = ReturnType<typeof createRecordingService>;
