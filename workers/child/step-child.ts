/**
 * Entry of a step child (started by createChildStepRunner): builds its own config,
 * storage and engines from its environment (never inherited from its parent), then serves `run_step`, which
 * runs one pipeline step with `runStep`, the same function every engine uses.
 */
import os from "node:os";
import { pino } from "pino";
import { z } from "zod/v4";
import { loadConfig } from "../../pipeline/config.ts";
import { StepName } from "../../pipeline/contracts/index.ts";
import { runStep } from "../../pipeline/steps/index.ts";
import { createStepPorts } from "../step-ports.ts";
import { openStorage } from "./open-storage.ts";
import { RUN_STEP_METHOD, WARM_ASR_METHOD } from "./runner.ts";
import { serveChildChannel } from "./serve.ts";

export const RunStepParams = z.object({ step: StepName, input: z.unknown(), scratch_dir: z.string().min(1) });

const config = loadConfig(process.env);
const log = pino({ level: config.LOG_LEVEL, base: { pid: process.pid, role: "step-child" } }, pino.destination({ dest: 2, sync: true }));
const storage = await openStorage(config);
const stepDeps = createStepPorts(config, { storage, log });
// one engine for the process: every call's ports share its decoder pool
const warmDeps = stepDeps(os.tmpdir(), { log });

serveChildChannel(
  {
    [RUN_STEP_METHOD]: async (params, ctx) => {
      const p = RunStepParams.parse(params);
      const stepLog = log.child({ step: p.step, call_id: ctx.id });
      return await runStep(p.step, p.input, stepDeps(p.scratch_dir, { log: stepLog, signal: ctx.signal, progress: (x) => ctx.progress(x) }));
    },
    [WARM_ASR_METHOD]: async () => {
      warmDeps.asr.warm?.();
      return { warmed: typeof warmDeps.asr.warm === "function" };
    },
  },
  { maxPayloadBytes: config.CHILD_MAX_PAYLOAD_BYTES },
);
