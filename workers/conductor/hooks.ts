/**
 * What a Conductor worker does around a step, per task type: the Conductor-only
 * `plan_tracks` task, and a before/after hook table keyed by step. Conductor carries
 * some outputs differently from the other engines (transcripts through storage,
 * transcripts.ts) and builds the dynamic fork lists from data: these are the only places
 * where a step is treated specially, and every step has an entry (TypeScript demands one).
 */
import { PipelineInput, type StepName, type TranscribeTrackInput, type TranscribeTrackOutput } from "../../pipeline/contracts/index.ts";
import type { Storage } from "../../pipeline/ports.ts";
import { forkSources, resolveInput, trackItem, type BindingEnv } from "../../pipeline/state/index.ts";
import { StepInputError } from "../../pipeline/steps/index.ts";
import { PLAN_TRACKS, PlanTracksOutput, type ForkPlan } from "./contracts.ts";
import { buildForkPlan } from "./fork.ts";
import { loadTranscripts, storeTranscript } from "./transcripts.ts";
import { carryOut, loadCarried } from "./carried.ts";

export interface HookDeps {
  storage: Storage;
  /** this task attempt (Conductor's task id): keys what it writes apart from other attempts' */
  attempt?: string;
}

export interface TaskHooks {
  /** turns the task's input (as Conductor hands it over) into the step's input */
  before?(input: Record<string, unknown>, deps: HookDeps): Promise<Record<string, unknown>>;
  /** turns the step's output into what Conductor carries */
  after?(output: Record<string, unknown>, input: Record<string, unknown>, deps: HookDeps): Promise<Record<string, unknown>>;
}

export const STEP_HOOKS: { readonly [K in StepName]: TaskHooks } = {
  prepare_track: {},
  // its fork list for transcribe_track is added by the host for every step that feeds a per-track step
  plan_speech: {},
  // the words go to storage; Conductor carries their key and count
  transcribe_track: {
    after: async (out, input, { storage, attempt }) => storeTranscript(storage, input as TranscribeTrackInput, out as unknown as TranscribeTrackOutput, attempt),
  },
  // ...and merge_transcripts reads them back before the step
  merge_transcripts: {
    before: async (input, { storage }) => ({ ...input, transcripts: await loadTranscripts(storage, input.transcripts) }),
  },
  suppress_bleed: {},
  detect_topics: {},
  generate_title: {},
  generate_summary: {},
  extract_action_items: {},
  mixdown: {},
  finalize: {},
};

/**
 * A step's input as the step needs it: every field Conductor carries as a storage ref
 * (./carried.ts) read back, then the step's own `before` hook.
 */
export async function beforeStep(step: StepName, input: Record<string, unknown>, deps: HookDeps): Promise<Record<string, unknown>> {
  const loaded = await loadCarried(deps.storage, input);
  const hooks: TaskHooks = STEP_HOOKS[step];
  return hooks.before ? hooks.before(loaded, deps) : loaded;
}

/** A step's output as Conductor carries it: the step's own `after` hook, then its words and topics to storage (./carried.ts). */
export async function afterStep(step: StepName, output: Record<string, unknown>, input: Record<string, unknown>, deps: HookDeps): Promise<Record<string, unknown>> {
  const hooks: TaskHooks = STEP_HOOKS[step];
  const out = hooks.after ? await hooks.after(output, input, deps) : output;
  return carryOut(deps.storage, step, out, input, deps.attempt);
}

export class UnknownStorageKeyError extends Error {
  override readonly name = "UnknownStorageKeyError";
  readonly retryable = false;
}

/**
 * The fork list of a per-track step: one task per element of its items (the pipeline
 * input's tracks, or a field of the forking step's output), each with the input the
 * graph binds for that track. `input` holds the forking task's input (it carries the
 * pipeline fields the forked inputs copy), `outputs` the forking step's output.
 */
export function forkPlanFor(step: StepName, input: Record<string, unknown>, outputs: Partial<Record<StepName, unknown>>): ForkPlan {
  const env = (trackIndex: number | null): BindingEnv => {
    const e: BindingEnv = {
      input: (field) => {
        if (!(field in input)) throw new Error(`fork of ${step}: the forking task's input has no '${field}'`);
        return input[field];
      },
      output: (s) => {
        if (!(s in outputs)) throw new Error(`fork of ${step}: the output of ${s} is not available to the forking task`);
        return outputs[s];
      },
      joined: (s) => {
        throw new Error(`fork of ${step}: joined outputs of ${s} are not available to the forking task`);
      },
      expectedTracks: () => (e.input("tracks") as { track_index: number }[]).map((t) => t.track_index).sort((a, b) => a - b),
      item: () => trackItem(step, e, trackIndex!),
    };
    return e;
  };
  const over = (forkItems(step, env(null)) as { track_index: number }[]).map((t) => t.track_index);
  return buildForkPlan(step, over.map((i) => ({ track_index: i, input: resolveInput(step, env(i)) })));
}

function forkItems(step: StepName, env: BindingEnv): unknown[] {
  const source = forkSources().find((f) => f.step === step);
  if (!source) throw new Error(`${step} does not run per track`);
  return (source.source === null ? env.input("tracks") : (env.output(source.source) as { tracks: unknown[] }).tracks) as unknown[];
}

/** plan_tracks: the workflow input checked (schema, every source key in storage), the fork lists over its tracks. */
export async function planTracks(input: Record<string, unknown>, storage: Storage): Promise<PlanTracksOutput> {
  const parsed = PipelineInput.safeParse(input);
  if (!parsed.success) throw new StepInputError(PLAN_TRACKS, parsed.error);
  const wf = parsed.data;
  const missing: string[] = [];
  for (const t of wf.tracks) if (!(await storage.exists(t.source_key))) missing.push(t.source_key);
  if (missing.length) throw new UnknownStorageKeyError(`unknown storage key(s): ${missing.join(", ")} (in ${storage.describe})`);
  const forked = forkSources().filter((f) => f.source === null);
  if (forked.length !== 1) throw new Error(`${PLAN_TRACKS} forks exactly one per-track step over the input's tracks, the graph has ${forked.length}`);
  const plan = forkPlanFor(forked[0]!.step, wf as unknown as Record<string, unknown>, {});
  return PlanTracksOutput.parse({ ...plan, expected_tracks: wf.tracks.map((t) => t.track_index).sort((a, b) => a - b) });
}
