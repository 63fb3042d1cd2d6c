/**
 * `trackscribe compare <recordingId> [--json] [--mismatches] [--recompute]`: the shadow
 * comparison of a recording (Conductor vs BullMQ) as a readable table: every check per
 * step and per track with its classification, then each step's duration on both engines.
 * `--recompute` compares again from the BullMQ event log and the Conductor workflow, and
 * stores the new report.
 */
import type { Command } from "commander";
import { loadConfig } from "../../pipeline/config.ts";
import { createPool } from "../../adapters/postgres/pool.ts";
import { compareRuns, rulesFromConfig, type ShadowReport } from "../../server/shadow/compare.ts";
import { formatReport } from "../../server/shadow/format.ts";
import { conductorHttpLookup, shadowState } from "../../server/shadow/runner.ts";
import { bullmqSnapshot, conductorSnapshot } from "../../server/shadow/snapshots.ts";
import { createShadowStore } from "../../server/shadow/store.ts";
import { createPgEventLog } from "../../workers/bullmq/event-log.ts";
import { CliError } from "../errors.ts";

interface CompareOptions {
  json?: boolean;
  mismatches?: boolean;
  recompute?: boolean;
}

export function register(program: Command): void {
  program
    .command("compare")
    .description("show the shadow comparison (Conductor vs BullMQ) of a recording")
    .argument("<recordingId>")
    .option("--json", "print the full report as JSON")
    .option("--mismatches", "only the mismatched comparisons")
    .option("--recompute", "compare again from the BullMQ event log and the Conductor workflow, and store the result")
    .action(async (recordingId: string, opts: CompareOptions) => {
      process.exitCode = await compareCommand(recordingId, opts);
    });
}

export async function compareCommand(recordingId: string, opts: CompareOptions, out: (s: string) => void = (s) => void process.stdout.write(s)): Promise<number> {
  const config = loadConfig(process.env);
  if (!config.DATABASE_URL) throw new CliError("compare reads shadow comparisons in Postgres: set DATABASE_URL");
  const pool = createPool(config, { max: 2 });
  try {
    const store = createShadowStore(pool);
    const record = await store.get(recordingId);
    let report: ShadowReport | null = record?.report ?? null;
    if (opts.recompute) {
      const { state, runId } = await shadowState(createPgEventLog(pool), recordingId, record?.bullmq_run_id ?? undefined);
      const { createStorage } = await import("../../adapters/storage/index.ts");
      const storage = createStorage(config);
      let wf;
      try {
        wf = await conductorHttpLookup(config.CONDUCTOR_SERVER_URL, storage)(recordingId, record?.conductor_workflow_id ?? undefined);
      } finally {
        await storage.close();
      }
      if (!wf) throw new CliError(`no Conductor workflow found for recording ${recordingId}`);
      report = compareRuns(conductorSnapshot(wf), bullmqSnapshot(state, runId), rulesFromConfig(config));
      if (!record) await store.begin(recordingId);
      await store.saveReport(recordingId, report);
    }
    if (!record && !report) throw new CliError(`recording ${recordingId} has no shadow comparison (shadow mode off, not sampled, or unknown id)`);
    if (!report) {
      const msg = record!.status === "error" ? `the shadow comparison failed: ${record!.error}` : "the shadow run is still in progress";
      if (opts.json) out(`${JSON.stringify({ recording_id: recordingId, status: record!.status, error: record!.error }, null, 2)}\n`);
      else out(`${msg}\n`);
      return record!.status === "error" ? 1 : 0;
    }
    if (opts.json) out(`${JSON.stringify(report, null, 2)}\n`);
    else out(formatReport(report, { onlyMismatches: opts.mismatches ?? false }));
    return 0;
  } finally {
    await pool.end();
  }
}
