/** Drives the pure state machine in tests: sends events, remembers RunSteps, answers them. */
import assert from "node:assert/strict";
import {
  handle,
  initialState,
  taskKey,
  type HandleResult,
  type Instruction,
  type PipelineEventInput,
  type PipelineState,
  type RetryPolicy,
  type RunStep,
} from "../../pipeline/state/index.ts";
import { outputFor, pipelineInput } from "./outputs.ts";

/** One line per instruction, so whole lists compare exactly and read well on failure. */
export function line(i: Instruction): string {
  const key = "step" in i && i.step ? taskKey(i.step as never, i.track_index) : "";
  switch (i.type) {
    case "RunStep":
      return `run ${key} #${i.attempt} job=${i.job_id}`;
    case "ScheduleRetry":
      return `retry ${key} #${i.attempt} in ${i.delay_ms}ms`;
    case "EmitProgress":
      return `progress ${key} ${i.status}${i.attempt ? ` #${i.attempt}` : ""}${i.message ? `: ${i.message}` : ""}`;
    case "Finish":
      return `finish "${i.result.title}" words=${i.result.words.length}`;
    case "Fail":
      return `fail ${i.reason}`;
  }
}

export class Driver {
  state: PipelineState = initialState();
  readonly events: PipelineEventInput[] = [];
  readonly runs = new Map<string, RunStep>();
  constructor(readonly policy?: Partial<RetryPolicy>) {}

  send(event: PipelineEventInput): HandleResult & { lines: string[] } {
    const r = handle(this.state, event);
    this.state = r.state;
    this.events.push(event);
    for (const i of r.instructions) if (i.type === "RunStep") this.runs.set(taskKey(i.step, i.track_index), i);
    return { ...r, lines: r.instructions.map(line) };
  }
  accept(tracks = 2, id = "accept") {
    return this.send({ type: "RecordingAccepted", id, input: pipelineInput(tracks), ...(this.policy ? { policy: this.policy } : {}) });
  }
  run(key: string): RunStep {
    const r = this.runs.get(key);
    assert.ok(r, `no RunStep issued for ${key}`);
    return r;
  }
  ok(key: string, over: { id?: string; attempt?: number; output?: unknown } = {}) {
    const r = this.run(key);
    return this.send({
      type: "StepSucceeded",
      id: over.id ?? `ok:${r.job_id}`,
      step: r.step,
      ...(r.track_index === undefined ? {} : { track_index: r.track_index }),
      attempt: over.attempt ?? r.attempt,
      output: over.output ?? outputFor(r),
      duration_ms: 7,
      worker_id: "host/0/1",
    });
  }
  fail(key: string, error: string, retryable: boolean) {
    const r = this.run(key);
    return this.send({
      type: "StepFailed",
      id: `fail:${r.job_id}`,
      step: r.step,
      ...(r.track_index === undefined ? {} : { track_index: r.track_index }),
      attempt: r.attempt,
      error,
      retryable,
    });
  }
  timer(key: string, attempt: number, id = `timer:${key}:${attempt}`) {
    const r = this.run(key);
    return this.send({ type: "RetryTimerFired", id, step: r.step, ...(r.track_index === undefined ? {} : { track_index: r.track_index }), attempt });
  }
  /** run every step after plan_speech to the end, in a fixed order */
  finishFromTranscribe(tracks: number) {
    for (let i = 0; i < tracks; i++) this.ok(`transcribe_track[${i}]`);
    for (const k of ["merge_transcripts", "suppress_bleed", "detect_topics", "generate_title", "generate_summary", "extract_action_items", "mixdown"]) this.ok(k);
    return this.ok("finalize");
  }
}

