/** `trackscribe inspect <workflowId>`: who ran each task, how long, which build, what looks wrong. */
import type { Command } from "commander";
import { loadConfig } from "../../pipeline/config.ts";
import { inspectWorkflow, formatTable } from "../../workers/conductor/audit.ts";
import { ConductorError, createConductorApi } from "../../adapters/conductor/client.ts";
import { buildInfo } from "../../workers/identity.ts";
import { CliError } from "../errors.ts";

export function register(program: Command): void {
  program
    .command("inspect <workflowId>")
    .description("per task: ref, status, worker, build, duration, retries; flags suspiciously fast tasks and other builds")
    .option("--json", "print JSON")
    .action(async (workflowId: string, opts: { json?: boolean }) => {
      const config = loadConfig(process.env);
      const api = createConductorApi(config.CONDUCTOR_SERVER_URL);
      let wf;
      try {
        wf = await api.getWorkflow(workflowId, true);
      } catch (err) {
        if (err instanceof ConductorError && err.status === 404) throw new CliError(`no workflow ${workflowId} on ${config.CONDUCTOR_SERVER_URL}`);
        throw err;
      }
      const rows = inspectWorkflow(wf, { currentBuild: buildInfo(config.BUILD_COMMIT ? { BUILD_COMMIT: config.BUILD_COMMIT } : {}).build, fastFloorsMs: config.suspiciousFastMs });
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ workflow_id: wf.workflowId, status: wf.status, tasks: rows }, null, 2)}\n`);
        return;
      }
      process.stdout.write(`workflow ${wf.workflowId}: ${wf.status}${wf.reasonForIncompletion ? ` (${wf.reasonForIncompletion})` : ""}\n`);
      process.stdout.write(`${formatTable(rows as never, ["ref", "status", "worker", "build", "duration_ms", "retries", "flags"])}\n`);
      const flagged = rows.filter((r) => r.flags.length).length;
      process.stdout.write(flagged ? `${flagged} task(s) flagged\n` : "no task flagged\n");
    });
}
