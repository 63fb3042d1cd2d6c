/** `trackscribe workflows check|register`. */
import type { Command } from "commander";
import { loadConfig } from "../../pipeline/config.ts";
import { checkWorkflow } from "../../workflows/check.ts";
import { createConductorApi, waitForConductor } from "../../adapters/conductor/client.ts";
import { CONDUCTOR_TASKS, loadTaskDefs, loadWorkflowDef, registerDefinitions } from "../../workers/conductor/definitions.ts";
import { CliError } from "../errors.ts";

export function register(program: Command): void {
  const wf = program.command("workflows").description("Conductor workflow and task definitions");
  wf.command("check")
    .description("static wiring check: expressions vs zod schemas, task definitions, workers, required inputs")
    .action(() => {
      const problems = checkWorkflow(loadWorkflowDef() as never, loadTaskDefs(), CONDUCTOR_TASKS);
      if (problems.length) throw new CliError(`workflow wiring check failed:\n  ${problems.join("\n  ")}`, 1);
      process.stdout.write("workflow wiring check: OK\n");
    });
  wf.command("register")
    .description("upsert task definitions and the workflow on CONDUCTOR_SERVER_URL (idempotent)")
    .action(async () => {
      const config = loadConfig(process.env);
      const api = createConductorApi(config.CONDUCTOR_SERVER_URL);
      await waitForConductor(api, { timeoutMs: config.CONDUCTOR_WAIT_SECONDS * 1000, log: (m) => process.stderr.write(`${m}\n`) });
      const r = await registerDefinitions(api);
      process.stdout.write(`registered ${r.tasks.length} task definitions and ${r.workflow}\n`);
    });
}
