/**
 * A child for the channel tests: serves `run_step` like the real step child, but its
 * "steps" misbehave on purpose (crash, hang, block the event loop, stall, answer too much).
 */
import { serveChildChannel } from "../../workers/child/serve.ts";

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(t);
      reject(signal.reason instanceof Error ? signal.reason : new Error("aborted"));
    });
  });

type P = { step: string; input: Record<string, unknown>; scratch_dir: string };
let warmed = 0;

process.stderr.write(`fixture child ${process.pid} starting\n`);
serveChildChannel({
  warm_asr: async () => {
    warmed += 1;
    return { warmed: true };
  },
  run_step: async (params, ctx) => {
    const { step, input } = params as P;
    switch (step) {
      case "echo":
        return { input, pid: process.pid, execArgv: process.execArgv };
      case "warmed":
        return { warmed, pid: process.pid };
      case "sleep":
        await sleep(Number(input.ms), ctx.signal);
        return { slept: input.ms, pid: process.pid };
      case "crash":
        for (let i = 1; i <= 50; i++) process.stderr.write(`crash step log line ${i}\n`);
        process.stderr.write(`fatal: simulated failure in ${process.pid}\n`);
        setTimeout(() => process.exit(Number(input.code ?? 3)), 20);
        return await new Promise(() => {});
      case "hang":
        process.stderr.write("hang step: waiting forever\n");
        return await new Promise(() => {});
      case "block": {
        process.stderr.write("block step: busy loop on the event loop\n");
        const until = Date.now() + Number(input.ms);
        while (Date.now() < until) {
          /* the event loop cannot answer pings */
        }
        return { blocked: true };
      }
      case "progress": {
        const n = Number(input.count);
        for (let i = 0; i < n; i++) {
          ctx.progress({ step: "progress", fraction: (i + 1) / n });
          await sleep(Number(input.every), ctx.signal);
        }
        if (input.then === "stall") return await new Promise(() => {});
        return { reported: n };
      }
      case "big":
        return { data: "x".repeat(Number(input.bytes)) };
      case "fail": {
        const e = new Error("bad input for fail") as Error & { retryable: boolean };
        e.name = "StepInputError";
        e.retryable = false;
        throw e;
      }
      default:
        throw new Error(`fixture child has no step ${step}`);
    }
  },
});
