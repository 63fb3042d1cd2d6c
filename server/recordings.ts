/**
 * The recording use cases behind the routes: accept an upload (tracks streamed to storage,
 * rows, workflow start; any failure removes everything again), show one with its progress
 * and Result, retry, delete, and reconcile the stored status with Conductor's.
 */
import { createHash, randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { KeyManifest, PipelineInput, Result, type Warning } from "../pipeline/contracts/index.ts";
import type { Storage } from "../pipeline/ports.ts";
import type { ResultSink } from "../pipeline/steps/deps.ts";
import type { WorkflowGateway, WorkflowSnapshot } from "../adapters/conductor/gateway.ts";
import { ApiError, badRequest, ClientGoneError, conflict, DependencyError, notFound } from "./errors.ts";
import type { RecordingRow, RecordingsRepo, RecordingStatus, StartOutcome, StepRunRow, TrackRow } from "../adapters/postgres/recordings-repo.ts";
import { describeIssues, receiveUpload, type ReceiveOptions, type TrackSink, type UploadPart } from "./upload/receive.ts";
import { sniffAudio, describeFormats } from "./upload/sniff.ts";
import { recordingPrefix } from "../adapters/storage/sweeper.ts";
import { loadCarried } from "../workers/conductor/carried.ts";
import { checkOffsets, uploadTooLarge, type UploadLimits } from "./upload/limits.ts";

/** How much of a key-referenced track the API reads: the format and any declared length. */
const HEAD_BYTES = 64 * 1024;
import { canSee, ownerOf, type Principal } from "./auth/plugin.ts";
import { clientFailure, formatFailure } from "../pipeline/failures.ts";
import { durationProblem } from "../pipeline/audio/errors.ts";
import type { AudioFormat } from "../pipeline/audio/sniff.ts";
import { taskCount } from "../pipeline/state/index.ts";
import { culpritOf, infraRescue, type RescueDecision } from "./infra-rescue.ts";

export interface RecordingServiceDeps {
  repo: RecordingsRepo;
  storage: Storage;
  /** how track bytes are stored (S3 multipart upload, or storage.put for a local directory) */
  trackSink: TrackSink;
  workflows: WorkflowGateway;
  results: ResultSink;
  log: Logger;
  limits: UploadLimits;
  /** tracks referenced by key must be under this prefix (a key's: under <prefix><key name>/) */
  incomingPrefix: string;
  /** called after a workflow started (shadow mode) */
  onStarted?: (recordingId: string, input: PipelineInput, workflowId: string) => void;
  /** called on DELETE once the workflow is terminated, before rows and objects go (shadow mode: stop its run) */
  beforeDelete?: (recordingId: string) => Promise<void>;
  /** counts uploads by outcome (metrics) */
  onUploadOutcome?: (outcome: string, bytes: number) => void;
  /** minimum time between two Conductor look-ups of one recording */
  reconcileEveryMs?: number;
  /** how often a running upload renews its Idempotency-Key's lease (default 5000 ms; the lease: KEY_LEASE_SECONDS) */
  keyLeaseRenewMs?: number;
  /** timed-out task attempts of one recording retried without failing it (server/infra-rescue.ts; default 6) */
  infraRetryBudget?: number;
  /** called when a failed workflow is retried because infrastructure, not the step, spent its retries */
  onInfraRescue?: (recordingId: string, why: string) => void;
  /** measures uploaded tracks while they stream (adapters/audio/probe.ts); without it only workers measure */
  durationTap?: NonNullable<ReceiveOptions["probe"]>["tap"];
  /** the duration a key-referenced track's first bytes declare (adapters/audio/probe.ts probeHead) */
  probeHead?: (head: Buffer, format: AudioFormat, size: number) => Promise<number | undefined>;
  /** workflows in flight per owner; more recordings wait queued for the reconciler (default: no cap) */
  maxWorkflowsPerOwner?: number;
  /** a queued recording without a workflow this long is started by the reconciler */
  startGraceSeconds?: number;
  /** … and failed when its workflow could not be started for this long */
  startGiveUpSeconds?: number;
  /**
   * Test hook (server/server.ts sets it only with NODE_ENV=test): called at named points of
   * creation (`after_row`, `after_workflow_start`) so a test can kill the process there.
   */
  crashPoint?: (point: "after_row" | "after_workflow_start") => void;
}

/** A manifest's identity for Idempotency-Key: the same JSON whatever the order of its object keys. */
export function manifestHash(value: unknown): string {
  const canonical = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(canonical)
      : v && typeof v === "object"
        ? Object.fromEntries(Object.keys(v as object).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]))
        : v;
  return createHash("sha256").update(JSON.stringify(canonical(value) ?? null)).digest("hex");
}

/** An earlier request with the same Idempotency-Key created this recording: answer with it. */
class Replay extends Error {
  constructor(readonly recording: RecordingRow) {
    super("idempotent replay");
  }
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
  /** why it failed, for a person (pipeline/failures.ts: never an internal address or an upstream body) */
  error: string | null;
  /** a stable code for `error` */
  error_code: string | null;
  failed_step: string | null;
  warnings: Warning[];
  tracks: { index: number; status: "ok" | "failed" | null; participant: string; offset_seconds: number; filename: string | null; size_bytes: number | null; format: string | null }[];
  progress: {
    completed_steps: number;
    total_steps: number;
    steps: { step: string; track_index: number | null; status: string; attempts: number; duration_ms: number | null; worker_id: string | null; message: string | null; code?: string }[];
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
   * later (adapters/storage/sweeper.ts).
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

  const inputOf = (rec: Pick<RecordingRow, "id" | "language">, tracks: TrackRow[]): PipelineInput =>
    PipelineInput.parse({
      recording_id: rec.id,
      language: rec.language,
      namespace: "conductor",
      tracks: tracks.map((t) => ({ track_index: t.track_index, participant: t.participant, offset_seconds: t.offset_seconds, source_key: t.source_key })),
    });

  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

  /** A workflow already started for the recording, asked a few times (Conductor may be slow to answer after a timeout). */
  async function findStarted(id: string, attempts: number): Promise<string | undefined> {
    for (let i = 0; i < attempts; i++) {
      try {
        return await workflows.findByCorrelation(id);
      } catch (err) {
        log.warn({ err, recording_id: id, attempt: i + 1 }, "could not ask Conductor for the recording's workflow");
        if (i + 1 < attempts) await sleep(250 * 2 ** i);
      }
    }
    throw new Error("Conductor did not answer the look-up by correlation id");
  }

  /**
   * Start a queued recording's workflow under its owner's cap (repo.startUnder holds the
   * owner's lock until the id is stored). `lookFirst`: a workflow may already exist (the
   * reconciler, after a crash between start and store): adopt it rather than start another.
   * A start that fails (a timeout) may have started all the same: look it up before giving up.
   */
  async function dispatch(id: string, opts: { lookFirst: boolean; deleteOnFailure: boolean }): Promise<StartOutcome> {
    let input: PipelineInput | undefined;
    let adopted = false;
    const outcome = await repo.startUnder(
      id,
      deps.maxWorkflowsPerOwner ?? Number.MAX_SAFE_INTEGER,
      async (rec, tracks) => {
        input = inputOf(rec, tracks);
        if (opts.lookFirst) {
          const found = await findStarted(id, 1);
          if (found) {
            adopted = true;
            return found;
          }
        }
        let workflowId: string;
        try {
          workflowId = await workflows.start(input);
        } catch (err) {
          const found = await findStarted(id, 3).catch(() => undefined);
          if (found) {
            log.warn({ err, recording_id: id, workflow_id: found }, "the workflow start failed but the workflow exists: adopted");
            adopted = true;
            return found;
          }
          throw new DependencyError("conductor", "the recording was not accepted: the workflow server did not start it; try again later", err);
        }
        deps.crashPoint?.("after_workflow_start");
        return workflowId;
      },
      { deleteOnFailure: opts.deleteOnFailure },
    );
    if (outcome.outcome === "started") {
      log.info({ recording_id: id, workflow_id: outcome.workflowId, adopted }, adopted ? "workflow found by correlation id" : "workflow started");
      if (input) deps.onStarted?.(id, input, outcome.workflowId);
    } else if (outcome.outcome === "gone" && outcome.workflowId) {
      // deleted while its workflow started: that workflow has nothing to work on
      await workflows.remove(outcome.workflowId, `recording ${id} deleted`).catch((err: unknown) => log.warn({ err, recording_id: id }, "could not remove the workflow of a deleted recording"));
    } else if (outcome.outcome === "waiting") {
      log.info({ recording_id: id, in_flight: outcome.inFlight }, "owner at MAX_WORKFLOWS_PER_OWNER: the recording waits queued");
    }
    return outcome;
  }

  /**
   * The row (and the idempotency key, in the same transaction), then the workflow. If
   * Conductor refuses (and has not started it after all), everything is removed again.
   */
  async function commit(
    id: string,
    language: string,
    source: "upload" | "bucket",
    tracks: TrackRow[],
    owner: string | null,
    idempotency: { owner: string; key: string } | undefined,
  ): Promise<RecordingRow> {
    inputOf({ id, language }, tracks); // the contract holds before anything is written
    const row = await repo.create({ id, language, source, tracks, owner_key_id: owner }, idempotency);
    deps.crashPoint?.("after_row");
    const outcome = await dispatch(id, { lookFirst: false, deleteOnFailure: true });
    const workflowId = outcome.outcome === "started" || outcome.outcome === "already" ? outcome.workflowId : null;
    return { ...row, workflow_id: workflowId };
  }

  /**
   * Idempotency-Key handling: `hash` identifies the request's manifest. Reserved → the
   * request goes on (its recording and the key's completion commit together); done →
   * the recording it created; another manifest → 422; still pending → 409.
   */
  async function reserve(key: string | undefined, owner: string | null, hash: string): Promise<{ owner: string; key: string } | undefined> {
    if (key === undefined) return undefined;
    // keys are scoped per owner: another owner's key of the same text is a different key
    const scope = owner ?? "";
    const r = await repo.reserveKey(scope, key, hash);
    if (r.state === "mismatch") {
      throw new ApiError(422, "idempotency_key_reused", "this Idempotency-Key was used for a request with a different manifest; use a new key for a new recording");
    }
    if (r.state === "done") {
      const existing = await repo.get(r.recordingId);
      if (existing) throw new Replay(existing);
      return reserve(key, owner, hash); // deleted meanwhile: the key went with it
    }
    if (r.state === "pending") throw conflict("upload_in_progress", "an upload with this Idempotency-Key is still in progress");
    return { owner: scope, key };
  }

  /** Runs one create: a replay answers with the earlier recording; a failure frees the key again. */
  async function withIdempotency(
    run: (reserveKey: (hash: string) => Promise<{ owner: string; key: string } | undefined>) => Promise<RecordingRow>,
    key: string | undefined,
    owner: string | null,
  ): Promise<{ recording: { id: string; status: RecordingStatus }; replayed: boolean }> {
    let held: { owner: string; key: string } | undefined;
    // while the upload runs, the key's lease is renewed; should this process die, the lease
    // lapses and the client's retry with the same key takes the key over
    let lease: NodeJS.Timeout | undefined;
    try {
      const rec = await run(async (hash) => {
        held = await reserve(key, owner, hash);
        const h = held;
        if (h && !lease) {
          lease = setInterval(() => void repo.touchKey(h.owner, h.key).catch((e: unknown) => log.warn({ err: e }, "could not renew an idempotency key's lease")), deps.keyLeaseRenewMs ?? 5000);
          lease.unref();
        }
        return held;
      });
      return { recording: rec, replayed: false };
    } catch (err) {
      if (err instanceof Replay) return { recording: err.recording, replayed: true };
      // the key is released unless its recording was stored (then it is 'done' and stays)
      if (held) await repo.releaseKey(held.owner, held.key).catch((e: unknown) => log.error({ err: e }, "could not release an idempotency key"));
      throw err;
    } finally {
      clearInterval(lease);
    }
  }

  async function acceptUpload(
    parts: AsyncIterable<UploadPart>,
    clientGone: () => boolean,
    owner: string | null,
    reserveKey: (hash: string) => Promise<{ owner: string; key: string } | undefined>,
  ): Promise<RecordingRow> {
    const id = randomUUID();
    let bytes = 0;
    let idempotency: { owner: string; key: string } | undefined;
    try {
      // before the first object: should this process stop mid-upload, the sweeper knows what to remove
      await repo.addUploadIntent(id);
      let replay: RecordingRow | undefined;
      const { manifest, tracks, skipped } = await receiveUpload(parts, {
        recordingId: id,
        ...deps.limits,
        sink: deps.trackSink,
        clientGone,
        // the key is bound to the manifest, so it is reserved once the manifest is read
        onManifest: async (m) => {
          try {
            idempotency = await reserveKey(manifestHash(m));
          } catch (err) {
            if (!(err instanceof Replay)) throw err;
            // answered once the client has sent its body (answering mid-body resets its connection)
            replay = err.recording;
            return "skip";
          }
        },
        ...(deps.durationTap
          ? { probe: { limits: { maxTrackSeconds: deps.limits.maxTrackSeconds, maxRecordingSeconds: deps.limits.maxRecordingSeconds, minTrackSeconds: deps.limits.minTrackSeconds }, tap: deps.durationTap } }
          : {}),
        onTrackStored: (t) => {
          bytes += t.size_bytes ?? 0;
        },
      });
      if (skipped && replay) throw new Replay(replay);
      if (clientGone()) throw new ClientGoneError("the client disconnected before the upload was accepted");
      const rec = await commit(id, manifest.language, "upload", tracks, owner, idempotency);
      deps.onUploadOutcome?.("accepted", bytes);
      return rec;
    } catch (err) {
      await discard(id, (err as Error).message);
      deps.onUploadOutcome?.(err instanceof Replay ? "replayed" : err instanceof ApiError ? err.code : err instanceof ClientGoneError ? "client_gone" : "error", bytes);
      throw err;
    }
  }

  /** Where `who` may reference tracks from: never another owner's objects, never a recording's. */
  const incomingScope = (who: Principal): string => (who.kind === "key" ? `${deps.incomingPrefix}${who.name}/` : deps.incomingPrefix);

  async function acceptKeys(body: unknown, who: Principal, reserveKey: (hash: string) => Promise<{ owner: string; key: string } | undefined>): Promise<RecordingRow> {
    const owner = ownerOf(who);
    const parsed = KeyManifest.safeParse(body);
    if (!parsed.success) {
      const noTracks = parsed.error.issues.some((i) => i.message === "the manifest has no tracks");
      throw badRequest(noTracks ? "no_tracks" : "invalid_manifest", `manifest is invalid: ${describeIssues(parsed.error)}`);
    }
    const m = parsed.data;
    if (m.tracks.length > deps.limits.maxTracks) {
      throw badRequest("too_many_tracks", `the manifest lists ${m.tracks.length} tracks; at most ${deps.limits.maxTracks} are accepted`);
    }
    checkOffsets(m.tracks, deps.limits);
    const scope = incomingScope(who);
    for (const [i, t] of m.tracks.entries()) {
      if (!t.key.startsWith(scope) || t.key.split("/").includes("..")) {
        throw new ApiError(403, "key_not_allowed", `track ${i} (${t.participant}): '${t.key.slice(0, 200)}' is not under ${scope}; tracks referenced by key must be there`);
      }
    }
    const idempotency = await reserveKey(manifestHash(m));
    const tracks: TrackRow[] = [];
    let total = 0;
    for (const [i, t] of m.tracks.entries()) {
      const label = `track ${i} (${t.participant})`;
      let size: number | undefined;
      let head: Buffer;
      try {
        size = await storage.size(t.key);
        if (size === undefined) throw badRequest("missing_object", `${label}: no object '${t.key}' in the bucket`);
        if (size > deps.limits.maxTrackBytes) throw new ApiError(413, "track_too_large", `${label} is ${size} bytes; the limit is ${deps.limits.maxTrackBytes}`);
        if (size === 0) throw badRequest("empty_track", `${label} is empty`);
        total += size;
        if (total > deps.limits.maxUploadBytes) throw uploadTooLarge(deps.limits.maxUploadBytes);
        const chunks: Buffer[] = [];
        // the first bytes: enough to judge the format and read a header's declared length
        for await (const c of await storage.stream(t.key, { start: 0, end: Math.min(size, HEAD_BYTES) - 1 })) chunks.push(c as Buffer);
        head = Buffer.concat(chunks);
      } catch (err) {
        if (err instanceof ApiError) throw err;
        throw new DependencyError("s3", `${label}: could not read '${t.key}' from storage; try again later`, err);
      }
      const format = sniffAudio(head);
      if (!format) throw new ApiError(415, "unsupported_media_type", `${label} ('${t.key}') is not audio (expected ${describeFormats}; judged from its first bytes)`);
      // a length its header declares is checked now; the rest (and a header that lies) the worker measures
      const declared = deps.probeHead ? await deps.probeHead(head, format, size) : undefined;
      const problem = declared === undefined ? undefined : durationProblem(label, declared, t.offset_seconds, deps.limits);
      if (problem) throw new ApiError(422, problem.code, problem.message);
      tracks.push({ track_index: i, participant: t.participant, offset_seconds: t.offset_seconds, source_key: t.key, owned: false, filename: null, size_bytes: size, format });
    }
    const id = randomUUID();
    try {
      return await commit(id, m.language, "bucket", tracks, owner, idempotency);
    } catch (err) {
      // the referenced objects are the client's: only our rows (and any derived objects) go
      await discard(id, (err as Error).message);
      throw err;
    }
  }

  async function rescueDecision(wf: WorkflowSnapshot): Promise<RescueDecision> {
    const culprit = culpritOf(wf);
    const retryCount = culprit && workflows.retryBudget ? await workflows.retryBudget(culprit.step).catch(() => undefined) : undefined;
    return infraRescue(wf, { budget: deps.infraRetryBudget ?? 6, ...(retryCount === undefined ? {} : { retryCount }) });
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
      const decision = await rescueDecision(wf);
      if (decision.action === "retry") {
        try {
          await workflows.retry(rec.workflow_id);
          log.warn({ recording_id: rec.id, workflow_id: rec.workflow_id, step: decision.step, why: decision.why, timeouts: decision.timeouts }, "infra rescue: workflow retried (timeouts, not the step, spent its retries)");
          deps.onInfraRescue?.(rec.id, decision.why);
        } catch (err) {
          log.warn({ err, recording_id: rec.id }, "infra rescue: the retry did not go through; the reconciler tries again");
        }
        return rec;
      }
      await repo.markFailed(rec.id, decision.reason ?? wf.reason ?? `workflow ${wf.status.toLowerCase()}`, wf.failed_step ?? null);
    } else if (wf.status === "COMPLETED") {
      if (!(await repo.result(rec.id))) {
        // finalize normally stores the Result itself; fall back to the workflow's output
        // (its words and topics travel as storage refs: workers/conductor/carried.ts)
        const output = (wf.output?.result as Record<string, unknown> | undefined) ?? wf.output ?? {};
        const candidate = Result.safeParse(await loadCarried(storage, output).catch(() => output));
        if (candidate.success) await deps.results.saveResult(rec.id, "conductor", candidate.data);
        else await repo.markFailed(rec.id, "the workflow completed without a Result", "finalize");
      }
    } else return rec;
    return (await repo.get(rec.id)) ?? rec;
  }

  function view(d: NonNullable<Awaited<ReturnType<RecordingsRepo["details"]>>>): RecordingView {
    const r = d.recording;
    const succeeded = d.steps.filter((s: StepRunRow) => s.status === "succeeded").length;
    const failure = clientFailure(r.error, "pipeline_failed");
    return {
      id: r.id,
      status: r.status,
      language: r.language,
      created_at: r.created_at.toISOString(),
      updated_at: r.updated_at.toISOString(),
      completed_at: r.completed_at ? r.completed_at.toISOString() : null,
      workflow_id: r.workflow_id,
      error: failure?.message ?? null,
      error_code: failure?.code ?? null,
      failed_step: r.failed_step,
      warnings: r.warnings ?? [],
      tracks: d.tracks.map((t) => ({
        index: t.track_index,
        status: r.status !== "completed" || !d.result ? null : (d.result.result.tracks?.find((s) => s.speaker === t.track_index)?.status ?? "ok"),
        participant: t.participant,
        offset_seconds: t.offset_seconds,
        filename: t.filename,
        size_bytes: t.size_bytes,
        format: t.format,
      })),
      progress: {
        completed_steps: r.status === "completed" ? totalSteps(d.tracks.length) : Math.min(succeeded, totalSteps(d.tracks.length)),
        total_steps: totalSteps(d.tracks.length),
        steps: d.steps.map((s) => {
          const f = s.status === "failed" || s.status === "retrying" ? clientFailure(s.message, `${s.step}_failed`) : null;
          return {
            step: s.step,
            track_index: s.track_index < 0 ? null : s.track_index,
            status: s.status,
            attempts: s.attempts,
            duration_ms: s.duration_ms,
            worker_id: s.worker_id,
            message: f ? f.message : s.message,
            ...(f ? { code: f.code } : {}),
          };
        }),
      },
      ...(r.status === "completed" && d.result ? { result: d.result.result } : {}),
    };
  }

  const checkId = (id: string): void => {
    if (!ID_PATTERN.test(id)) throw notFound(`no recording '${id.slice(0, 80)}'`);
  };
  /** Another owner's recording does not exist for `who` (404, never 403: its existence is not confirmed). */
  const visible = <T extends { owner_key_id: string | null }>(id: string, rec: T | undefined, who: Principal): T => {
    if (!rec || !canSee(who, rec.owner_key_id)) throw notFound(`no recording '${id}'`);
    return rec;
  };

  return {
    isValidId: (id: string): boolean => ID_PATTERN.test(id),

    async createFromUpload(parts: AsyncIterable<UploadPart>, opts: { idempotencyKey?: string; clientGone: () => boolean; principal: Principal }) {
      const owner = ownerOf(opts.principal);
      return withIdempotency((reserveKey) => acceptUpload(parts, opts.clientGone, owner, reserveKey), opts.idempotencyKey, owner);
    },

    async createFromKeys(body: unknown, opts: { idempotencyKey?: string; principal: Principal }) {
      return withIdempotency((reserveKey) => acceptKeys(body, opts.principal, reserveKey), opts.idempotencyKey, ownerOf(opts.principal));
    },

    async get(id: string, who: Principal): Promise<RecordingView> {
      checkId(id);
      const d = await repo.details(id);
      visible(id, d?.recording, who);
      if (!d) throw notFound(`no recording '${id}'`);
      if (d.recording.status === "queued" || d.recording.status === "processing") {
        // never make a status read wait for Conductor: the look-up (throttled per recording)
        // runs alongside and the next read shows what it found
        reconcileRow(d.recording).catch((err: unknown) => log.debug({ err, recording_id: id }, "reconcile failed"));
      }
      return view(d);
    },

    /** The stored row (404 when unknown or another owner's), reconciled when due. */
    async status(id: string, who: Principal): Promise<RecordingRow> {
      checkId(id);
      return reconcileRow(visible(id, await repo.get(id), who));
    },

    reconcile: reconcileRow,

    /** 404 unless `who` may see recording `id` (routes about a recording that the service does not serve, e.g. shadow). */
    async assertVisible(id: string, who: Principal): Promise<void> {
      checkId(id);
      visible(id, await repo.get(id), who);
    },

    async result(id: string, who: Principal): Promise<{ recording: RecordingRow; result: Result; audio_key: string | null; waveform: number[] | null }> {
      const rec = await this.status(id, who);
      if (rec.status !== "completed") throw conflict("not_completed", `recording ${id} is ${rec.status}; its transcript is available once it has completed`);
      const r = await repo.result(id);
      if (!r) throw conflict("not_completed", `recording ${id} has no result yet`);
      return { recording: rec, result: r.result, audio_key: r.audio_key, waveform: r.waveform ?? null };
    },

    async retry(id: string, who: Principal): Promise<RecordingRow> {
      const rec = await this.status(id, who);
      if (rec.status !== "failed") throw conflict("not_failed", `recording ${id} is ${rec.status}; only a failed recording can be retried`);
      if (!rec.workflow_id) {
        // its workflow never started (Conductor refused it for START_GIVE_UP_SECONDS): queue it again
        await repo.markRetrying(id, "queued");
        lastChecked.set(id, Date.now());
        try {
          await dispatch(id, { lookFirst: true, deleteOnFailure: false });
        } catch (err) {
          log.warn({ err, recording_id: id }, "retry: the workflow did not start; the reconciler tries again");
        }
        return (await repo.get(id)) ?? rec;
      }
      let wf: WorkflowSnapshot | undefined;
      try {
        wf = await workflows.get(rec.workflow_id);
        if (!wf) {
          // Conductor lost it: start the same input afresh
          await repo.setWorkflowId(id, await workflows.start(inputOf(rec, await repo.tracks(id))));
        } else if (wf.status !== "RUNNING") {
          // every track failed (partial results gave up on each): run the tracks again, not
          // only the step that found none left
          if (clientFailure(rec.error)?.code === "all_tracks_failed" && workflows.restart) await workflows.restart(rec.workflow_id);
          else await workflows.retry(rec.workflow_id);
        }
      } catch (err) {
        if (err instanceof ApiError) throw err;
        throw new DependencyError("conductor", "could not retry the workflow: the workflow server did not answer; try again later", err);
      }
      lastChecked.set(id, Date.now());
      await repo.markRetrying(id);
      log.info({ recording_id: id, workflow_id: rec.workflow_id }, "retry requested");
      return (await repo.get(id)) ?? rec;
    },

    async remove(id: string, who: Principal): Promise<void> {
      checkId(id);
      const rec = visible(id, await repo.get(id), who);
      if (rec.workflow_id) {
        try {
          await workflows.remove(rec.workflow_id, `recording ${id} deleted`);
        } catch (err) {
          throw new DependencyError("conductor", "could not stop the recording's workflow; nothing was deleted; try again later", err);
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
      // again on a schedule (adapters/storage/sweeper.ts)
      log.info({ recording_id: id, workflow_id: rec.workflow_id, removed_objects: removed }, "recording deleted");
    },

    /**
     * Start what is queued without a workflow past the grace period (the API stopped between
     * row and start, or the owner was at its cap), oldest first; a workflow that did start is
     * adopted by correlation id. One that cannot be started for START_GIVE_UP_SECONDS fails
     * with a reason. Returns how many were started or failed.
     */
    async startQueued(limit = 50): Promise<number> {
      let changed = 0;
      const giveUp = deps.startGiveUpSeconds ?? 3600;
      for (const rec of await repo.unstarted(deps.startGraceSeconds ?? 15, limit)) {
        try {
          const outcome = await dispatch(rec.id, { lookFirst: true, deleteOnFailure: false });
          if (outcome.outcome === "started") changed++;
        } catch (err) {
          if (rec.age_seconds < giveUp) {
            log.warn({ err, recording_id: rec.id }, "the reconciler could not start a queued recording; it tries again");
            continue;
          }
          const reason = formatFailure({ code: "workflow_not_started", message: `the workflow server did not start the recording's workflow within ${giveUp} s; retry it later` });
          if (await repo.markFailed(rec.id, reason, null)) changed++;
        }
      }
      return changed;
    },

    /** Look at every unfinished recording once (the background reconciler's tick). */
    async reconcileAll(limit = 50): Promise<number> {
      let changed = await this.startQueued(limit);
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
