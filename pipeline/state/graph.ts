/**
 * THE pipeline graph, defined once: which steps exist, which run once per track, in which
 * stage each runs, and where every field of each step's input comes from. Everything else
 * is derived from it:
 *
 *   - the task list of a run, each task's dependencies and input (`taskSpecs`, read by the
 *     pure state machine that the in-process and BullMQ shells drive),
 *   - the Conductor workflow JSON (`workflows/build.ts`, `trackscribe workflows build`),
 *   - which task builds which dynamic fork list (`forkSources`),
 *   - progress totals (`taskCount`).
 *
 * Stages run one after the other; a stage is one step, one step per track (a dynamic
 * fork), or a named group of steps that run in parallel (a fork). Each task waits for
 * every task of the stage before it and for every task its input reads. Per-track outputs
 * reach the next step as an array ordered by track index (`bind.joined`).
 *
 * Adding a step: its contract (pipeline/contracts/steps.ts `stepContracts`), its step file,
 * one entry in NODES and a place in STAGES, its comparator (server/shadow/compare.ts), its
 * Conductor hooks entry (workers/conductor/host.ts) and `trackscribe workflows build`.
 */
import type { z } from "zod/v4";
import * as C from "../contracts/index.ts";
import { speechTracks } from "../steps/transcribe_track.ts";

// ---- bindings: where an input field comes from ------------------------------------

type PipelineField = "recording_id" | "namespace" | "language" | "tracks";

export type Binding =
  /** a field of the pipeline input (the workflow input); tracks ordered by index */
  | { from: "input"; field: PipelineField }
  /** a field of a step's output (a step run once, not per track) */
  | { from: "output"; step: C.StepName; field: string }
  /** every output of a per-track step, as an array ordered by track index (Conductor: its JOIN's output) */
  | { from: "joined"; step: C.StepName }
  /** the track indexes of the recording, ascending */
  | { from: "expected_tracks" }
  /** the element a per-track task works on (see NodeDef.forEachTrack) */
  | { from: "item" }
  /** a value computed from a step's output (only in per-track inputs: Conductor builds those in the worker) */
  | { from: "computed"; step: C.StepName; name: string; compute(output: unknown): unknown };

/** Names of a step's output fields (for a compile-time check of `bind.output`). */
type OutputField<S extends C.StepName> = Extract<keyof C.StepOutputOf<S>, string>;

export const bind = {
  input: (field: PipelineField): Binding => ({ from: "input", field }),
  output: <S extends C.StepName>(step: S, field: OutputField<S>): Binding => ({ from: "output", step, field }),
  joined: (step: C.StepName): Binding => ({ from: "joined", step }),
  expectedTracks: (): Binding => ({ from: "expected_tracks" }),
  item: (): Binding => ({ from: "item" }),
  computed: <S extends C.StepName>(step: S, name: string, compute: (output: C.StepOutputOf<S>) => unknown): Binding => ({
    from: "computed",
    step,
    name,
    compute: compute as (output: unknown) => unknown,
  }),
};

type RequiredKeys<T> = { [F in keyof T]-?: undefined extends T[F] ? never : F }[keyof T];
/** One binding per input field: required fields must be bound (a compile error otherwise). */
export type InputBindings<K extends C.StepName> = { [F in RequiredKeys<C.StepInputOf<K>>]: Binding } & {
  [F in Exclude<keyof C.StepInputOf<K>, RequiredKeys<C.StepInputOf<K>>>]?: Binding;
};

export interface NodeDef<K extends C.StepName> {
  /**
   * One task per track of the recording. `item` is the element of this list whose
   * track_index is the task's track (Conductor: the task named here builds the fork list,
   * or `plan_tracks` for the pipeline input).
   */
  forEachTrack?: { from: "input"; field: "tracks" } | { from: "output"; step: C.StepName; field: "tracks" };
  input: InputBindings<K>;
  /** checks of an output beyond its schema; a message means the output is unusable */
  check?(output: C.StepOutputOf<K>, expectedTracks: readonly number[]): string | null;
}

// ---- the graph --------------------------------------------------------------------

export const NODES: { readonly [K in C.StepName]: NodeDef<K> } = {
  prepare_track: {
    forEachTrack: { from: "input", field: "tracks" },
    input: { recording_id: bind.input("recording_id"), namespace: bind.input("namespace"), track: bind.item() },
  },
  plan_speech: {
    input: {
      recording_id: bind.input("recording_id"),
      namespace: bind.input("namespace"),
      language: bind.input("language"),
      expected_tracks: bind.expectedTracks(),
      prepared: bind.joined("prepare_track"),
      // not read by the plan: the transcribe_track fork it builds takes the participants' names from it
      tracks: bind.input("tracks"),
    },
    check: (plan, expected) => {
      // every track is planned or given up on, once
      const got = [...plan.tracks, ...(plan.failed_tracks ?? [])].map((t) => t.track_index).sort((a, b) => a - b);
      return got.join(",") === expected.join(",") ? null : `plan covers tracks [${got.join(", ")}], expected [${expected.join(", ")}]`;
    },
  },
  transcribe_track: {
    forEachTrack: { from: "output", step: "plan_speech", field: "tracks" },
    input: {
      recording_id: bind.input("recording_id"),
      namespace: bind.input("namespace"),
      language: bind.input("language"),
      track: bind.item(),
      speech_tracks: bind.computed("plan_speech", "speech_tracks", speechTracks),
      participants: bind.input("tracks"),
    },
  },
  merge_transcripts: {
    input: {
      expected_tracks: bind.expectedTracks(),
      transcripts: bind.joined("transcribe_track"),
      failed_tracks: bind.output("plan_speech", "failed_tracks"),
      recording_id: bind.input("recording_id"),
      namespace: bind.input("namespace"),
    },
  },
  suppress_bleed: {
    input: {
      words: bind.output("merge_transcripts", "words"),
      tracks: bind.output("plan_speech", "tracks"),
      recording_id: bind.input("recording_id"),
      namespace: bind.input("namespace"),
    },
  },
  detect_topics: {
    input: { language: bind.input("language"), words: bind.output("suppress_bleed", "words"), recording_id: bind.input("recording_id"), namespace: bind.input("namespace") },
  },
  generate_title: {
    input: { language: bind.input("language"), topics: bind.output("detect_topics", "topics") },
  },
  generate_summary: {
    input: { language: bind.input("language"), topics: bind.output("detect_topics", "topics") },
  },
  extract_action_items: {
    input: { language: bind.input("language"), words: bind.output("suppress_bleed", "words") },
  },
  mixdown: {
    input: { recording_id: bind.input("recording_id"), namespace: bind.input("namespace"), tracks: bind.output("plan_speech", "tracks") },
  },
  finalize: {
    input: {
      recording_id: bind.input("recording_id"),
      namespace: bind.input("namespace"),
      tracks: bind.input("tracks"),
      duration: bind.output("plan_speech", "duration"),
      words: bind.output("suppress_bleed", "words"),
      topics: bind.output("detect_topics", "topics"),
      title: bind.output("generate_title", "title"),
      short_summary: bind.output("generate_summary", "short_summary"),
      long_summary: bind.output("generate_summary", "long_summary"),
      action_items: bind.output("extract_action_items", "action_items"),
      audio_key: bind.output("mixdown", "audio_key"),
      waveform: bind.output("mixdown", "waveform"),
      track_status: bind.output("merge_transcripts", "track_status"),
    },
  },
};

/** A stage: one step (per track when its node says so), or steps run in parallel under a name. */
export type Stage = C.StepName | { readonly parallel: string; readonly steps: readonly C.StepName[] };

export const STAGES: readonly Stage[] = [
  "prepare_track",
  "plan_speech",
  "transcribe_track",
  "merge_transcripts",
  "suppress_bleed",
  "detect_topics",
  { parallel: "summaries", steps: ["generate_title", "generate_summary", "extract_action_items", "mixdown"] },
  "finalize",
];

/** The last step: its output is the pipeline's Result. */
export const FINAL_STEP: C.StepName = "finalize";

// ---- derived facts ----------------------------------------------------------------

export const stageSteps = (stage: Stage): readonly C.StepName[] => (typeof stage === "string" ? [stage] : stage.steps);

/** Every step in stage order (the order of instructions, comparisons and reports). */
export const orderedSteps = (): C.StepName[] => STAGES.flatMap(stageSteps);

/** Output contract of every step (the same schemas the step table validates with). */
export const stepOutputSchemas: { [K in C.StepName]: z.ZodType } = Object.fromEntries(
  C.StepName.options.map((s) => [s, C.stepContracts[s].output]),
) as unknown as { [K in C.StepName]: z.ZodType };

/** Steps that run once per track. */
export const perTrackSteps: ReadonlySet<C.StepName> = new Set(C.StepName.options.filter((s) => NODES[s].forEachTrack !== undefined));

/** Tasks of a run with this many tracks (progress totals). */
export function taskCount(tracks: number): number {
  return orderedSteps().reduce((n, s) => n + (perTrackSteps.has(s) ? tracks : 1), 0);
}

/** Steps named by a binding (what a task reading it must wait for). */
export function bindingSteps(b: Binding): C.StepName[] {
  return b.from === "output" || b.from === "joined" || b.from === "computed" ? [b.step] : [];
}

/**
 * Per-track steps whose task list is built from another step's output (Conductor: that
 * step's worker returns the fork list), by the producing step: `{plan_speech: "transcribe_track"}`.
 * Per-track steps over the pipeline input are forked by `plan_tracks` (Conductor only).
 */
export function forkSources(): { source: C.StepName | null; step: C.StepName }[] {
  return orderedSteps()
    .filter((s) => perTrackSteps.has(s))
    .map((s) => {
      const over = NODES[s].forEachTrack!;
      return { source: over.from === "output" ? over.step : null, step: s };
    });
}

/** Problems with the graph's shape (every step once, inputs read only from earlier stages). Empty = sound. */
export function graphProblems(nodes: { readonly [K in C.StepName]: NodeDef<K> } = NODES, stages: readonly Stage[] = STAGES): string[] {
  const problems: string[] = [];
  const seen = new Map<C.StepName, number>();
  const perTrack = (s: C.StepName): boolean => nodes[s].forEachTrack !== undefined;
  stages.forEach((stage, i) => {
    for (const s of stageSteps(stage)) {
      if (seen.has(s)) problems.push(`step ${s} is in more than one stage`);
      seen.set(s, i);
    }
  });
  for (const s of C.StepName.options) {
    const at = seen.get(s);
    if (at === undefined) {
      problems.push(`step ${s} is in no stage`);
      continue;
    }
    const node = nodes[s] as NodeDef<C.StepName>;
    const reads: C.StepName[] = Object.values(node.input as Record<string, Binding>).flatMap(bindingSteps);
    if (node.forEachTrack?.from === "output") reads.push(node.forEachTrack.step);
    for (const r of reads) {
      const rAt = seen.get(r);
      if (rAt === undefined || rAt >= at) problems.push(`step ${s} reads ${r}, which does not run in an earlier stage`);
    }
    for (const [field, b] of Object.entries(node.input as Record<string, Binding>)) {
      if (b.from === "output" && perTrack(b.step)) problems.push(`step ${s}.${field} reads one output of per-track step ${b.step}: use bind.joined`);
      if (b.from === "joined" && !perTrack(b.step)) problems.push(`step ${s}.${field} joins ${b.step}, which does not run per track`);
      if ((b.from === "item" || b.from === "computed") && !node.forEachTrack) problems.push(`step ${s}.${field}: item and computed bindings are for per-track steps only`);
    }
    if (typeof stages[at] !== "string" && perTrack(s)) problems.push(`per-track step ${s} cannot run inside a parallel stage`);
    if (node.forEachTrack?.from === "output" && perTrack(node.forEachTrack.step)) problems.push(`per-track step ${s} cannot fork over the outputs of per-track step ${node.forEachTrack.step}`);
  }
  // Conductor: a task's output carries one fork list (fork_tasks, fork_inputs)
  const sources = C.StepName.options.map((s) => nodes[s].forEachTrack).map((o) => (o?.from === "output" ? o.step : o ? "(input)" : null)).filter((x) => x !== null);
  for (const dup of new Set(sources.filter((x, i) => sources.indexOf(x) !== i))) problems.push(`more than one per-track step forks over ${dup}`);
  const last = stages[stages.length - 1];
  if (last === undefined || stageSteps(last).join() !== FINAL_STEP) problems.push(`the last stage must be ${FINAL_STEP} alone`);
  return problems;
}

// ---- resolving inputs -------------------------------------------------------------

/** Where bindings read their values (the machine's task outputs, or a Conductor worker's task). */
export interface BindingEnv {
  input(field: PipelineField): unknown;
  output(step: C.StepName): unknown;
  joined(step: C.StepName): unknown;
  expectedTracks(): number[];
  item(): unknown;
}

export function resolveBinding(b: Binding, env: BindingEnv): unknown {
  switch (b.from) {
    case "input":
      return env.input(b.field);
    case "output":
      return (env.output(b.step) as Record<string, unknown>)[b.field];
    case "joined":
      return env.joined(b.step);
    case "expected_tracks":
      return env.expectedTracks();
    case "item":
      return env.item();
    case "computed":
      return b.compute(env.output(b.step));
  }
}

/** A step's input from its bindings (fields whose value is undefined are left out). */
export function resolveInput(step: C.StepName, env: BindingEnv): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [field, b] of Object.entries(NODES[step].input as Record<string, Binding>)) {
    const v = resolveBinding(b, env);
    if (v !== undefined) out[field] = v;
  }
  return out;
}

/** The element of a per-track step's list for one track. */
export function trackItem(step: C.StepName, env: Pick<BindingEnv, "input" | "output">, trackIndex: number): unknown {
  const over = NODES[step].forEachTrack;
  if (!over) throw new Error(`step ${step} does not run per track`);
  const list = (over.from === "input" ? env.input("tracks") : (env.output(over.step) as Record<string, unknown>)[over.field]) as { track_index: number }[];
  const item = list.find((t) => t.track_index === trackIndex);
  if (!item) throw new Error(`${step}: no element for track ${trackIndex}`);
  return item;
}

// ---- the tasks of one run ---------------------------------------------------------

export function taskKey(step: C.StepName, trackIndex?: number | null): string {
  return trackIndex === undefined || trackIndex === null ? step : `${step}[${trackIndex}]`;
}

/**
 * Deterministic BullMQ job id `recording/namespace/step/track/attempt` (`-` for steps not
 * per track). BullMQ refuses ':' in custom ids, hence '/', and the recording id is
 * URI-encoded so it cannot add separators of its own.
 */
export function jobId(recordingId: string, namespace: string, step: C.StepName, trackIndex: number | null | undefined, attempt: number): string {
  const track = trackIndex === undefined || trackIndex === null ? "-" : String(trackIndex);
  return [encodeURIComponent(recordingId), namespace, step, track, String(attempt)].join("/");
}

/** Reads the (already validated) output of a finished task. */
export type OutputOf = <T>(key: string) => T;

export interface TaskSpec {
  key: string;
  step: C.StepName;
  track_index: number | null;
  deps: string[];
  buildInput(out: OutputOf): unknown;
  /** extra checks of an output beyond its schema; a message means the output is unusable */
  checkOutput?(output: unknown): string | null;
}

const byTrack = <T extends { track_index: number }>(items: T[]): T[] => [...items].sort((a, b) => a.track_index - b.track_index);

/** Every task of a run, in scheduling order (instructions come out in this order). */
export function taskSpecs(input: C.PipelineInput): TaskSpec[] {
  const tracks = byTrack(input.tracks);
  const indexes = tracks.map((t) => t.track_index);
  const keysOf = (step: C.StepName): string[] => (perTrackSteps.has(step) ? indexes.map((i) => taskKey(step, i)) : [step]);
  const envFor = (out: OutputOf, step: C.StepName, trackIndex: number | null): BindingEnv => {
    const env: BindingEnv = {
      input: (field) => (field === "tracks" ? tracks : input[field]),
      output: (s) => out(s),
      // a task skipped because its track was given up on earlier has no output: not in the join (as under Conductor)
      joined: (s) => indexes.map((i) => out(taskKey(s, i))).filter((v) => v !== null && v !== undefined),
      expectedTracks: () => indexes,
      item: () => {
        if (trackIndex === null) throw new Error(`${step}: item binding outside a per-track step`);
        return trackItem(step, env, trackIndex);
      },
    };
    return env;
  };

  const specs: TaskSpec[] = [];
  let previous: string[] = [];
  for (const stage of STAGES) {
    const stageKeys: string[] = [];
    for (const step of stageSteps(stage)) {
      const node = NODES[step] as NodeDef<C.StepName>;
      const reads = Object.values(node.input as Record<string, Binding>).flatMap(bindingSteps);
      if (node.forEachTrack?.from === "output") reads.push(node.forEachTrack.step);
      const deps = [...new Set([...previous, ...reads.flatMap(keysOf)])];
      const build = (trackIndex: number | null) => (out: OutputOf) => resolveInput(step, envFor(out, step, trackIndex));
      const check = node.check;
      for (const trackIndex of node.forEachTrack ? indexes : [null]) {
        const key = taskKey(step, trackIndex);
        stageKeys.push(key);
        specs.push({
          key,
          step,
          track_index: trackIndex,
          deps,
          buildInput: build(trackIndex),
          ...(trackIndex !== null || check
            ? {
                checkOutput: (o: unknown) =>
                  (trackIndex === null ? null : sameTrack(o, trackIndex)) ?? check?.(o as never, indexes) ?? null,
              }
            : {}),
        });
      }
    }
    previous = stageKeys;
  }
  return specs;
}

function sameTrack(output: unknown, expected: number): string | null {
  const got = (output as { track_index: number }).track_index;
  return got === expected ? null : `output is for track ${got}, expected track ${expected}`;
}
