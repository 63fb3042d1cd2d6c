/**
 * `trackscribe replay <recordingId> [--namespace ns] [--run id] [--json]`: rebuild a
 * BullMQ run's state from its event log in Postgres by feeding every logged event through
 * the pure state machine, print the state and the instructions the events produced, and
 * check that the rebuilt state equals the final state the run stored (exit 1 if not).
 */
import { isDeepStrictEqual } from "node:util";
import type { Command } from "commander";
import { loadConfig } from "../../pipeline/config.ts";
import { createPool } from "../../adapters/postgres/pool.ts";
import { replay } from "../../pipeline/state/index.ts";
import { formatInstruction, formatState, formatTable } from "../../server/shadow/format.ts";
import { createPgEventLog } from "../../workers/bullmq/event-log.ts";
import { CliError } from "../errors.ts";

interface ReplayOptions {
  namespace?: string;
  run?: string;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command("replay")
    .description("rebuild a BullMQ pipeline run's state from its event log and print it with its instructions")
    .argument("<recordingId>", "recording whose newest run is replayed")
    .option("--namespace <ns>", "only runs in this namespace (e.g. bullmq)")
    .option("--run <runId>", "a specific run id instead of the newest")
    .option("--json", "print one JSON document {run, state, instructions, matches_final_state}")
    .action(async (recordingId: string, opts: ReplayOptions) => {
      process.exitCode = await replayCommand(recordingId, opts);
    });
}

export async function replayCommand(recordingId: string, opts: ReplayOptions, out: (s: string) => void = (s) => void process.stdout.write(s)): Promise<number> {
  const config = loadConfig(process.env);
  if (!config.DATABASE_URL) throw new CliError("replay reads the event log in Postgres: set DATABASE_URL");
  const pool = createPool(config, { max: 2 });
  try {
    const log = createPgEventLog(pool);
    const run = opts.run ? await log.run(opts.run) : await log.latestRun(recordingId, opts.namespace);
    if (!run || run.recording_id !== recordingId) {
      throw new CliError(`no logged pipeline run for recording ${recordingId}${opts.namespace ? ` in namespace ${opts.namespace}` : ""}${opts.run ? ` with run id ${opts.run}` : ""}`);
    }
    const logged = await log.events(run.run_id);
    const rebuilt = replay(logged.map((e) => e.event));
    const matches = run.final_state === null ? null : isDeepStrictEqual(JSON.parse(JSON.stringify(rebuilt.state)), run.final_state);
    if (opts.json) {
      const { final_state: _omit, ...runInfo } = run;
      void _omit;
      out(`${JSON.stringify({ run: runInfo, state: rebuilt.state, instructions: rebuilt.instructions, matches_final_state: matches }, null, 2)}\n`);
    } else {
      out(`Run ${run.run_id} (${run.engine}, stored status ${run.status}${run.error ? `: ${run.error}` : ""})\n\n`);
      out(formatState(rebuilt.state));
      out(`\nEvents (${logged.length})\n`);
      out(
        formatTable(
          ["SEQ", "TYPE", "EVENT ID", "OUTCOME", "INSTRUCTIONS", "NOTE"],
          logged.map((e, i) => [String(e.seq), e.event.type, e.event.id, rebuilt.steps[i]!.outcome, String(rebuilt.steps[i]!.instructions.length), rebuilt.steps[i]!.note ?? ""]),
          90,
        ),
      );
      out(`\nInstructions (${rebuilt.instructions.length})\n`);
      for (const i of rebuilt.instructions) out(`  ${formatInstruction(i)}\n`);
      out(
        matches === null
          ? "\nThe run has not stored a final state yet (still running?).\n"
          : matches
            ? "\nReplayed state equals the run's stored final state.\n"
            : "\nReplayed state DIFFERS from the run's stored final state.\n",
      );
    }
    return matches === false ? 1 : 0;
  } finally {
    await pool.end();
  }
}
