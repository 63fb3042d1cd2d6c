/** `trackscribe workflows build|check|register`. */
import { readFileSync, writeFileSync } from "node:fs";
import type { Command } from "commander";
import { loadConfig } from "../../pipeline/config.ts";
import { buildWorkflow, formatWorkflowJson, WORKFLOW_JSON_PATH } from "../../workflows/build.ts";
import { checkWorkflow } from "../../workflows/check.ts";
import { createConductorApi, waitForConductor } from "../../adapters/conductor/client.ts";
import { CONDUCTOR_TASKS, loadTaskDefs, loadWorkflowDef, registerDefinitions } from "../../workers/conductor/definitions.ts";
import { CliError } from "../errors.ts";

export function register(program: Command): void {
  const wf = program.command("workflows").description("Conductor workflow and task definitions");
  wf.command("build")
    .description("generate the workflow JSON from the pipeline graph (pipeline/state/graph.ts) into workflows/")
    .option("--check", "write nothing; fail when the committed file differs from what would be generated")
    .action((opts: { check?: boolean }) => {
      const built = formatWorkflowJson(buildWorkflow());
      let committed = "";
      try {
        committed = readFileSync(WORKFLOW_JSON_PATH, "utf8");
      } catch {
        // no file yet: written below
      }
      if (opts.check) {
        if (committed !== built) throw new CliError(`${WORKFLOW_JSON_PATH} is not what the graph generates: run \`trackscribe workflows build\``, 1);
        process.stdout.write(`${WORKFLOW_JSON_PATH}: up to date\n`);
        return;
      }
      if (committed === built) return void process.stdout.write(`${WORKFLOW_JSON_PATH}: up to date\n`);
      const problems = checkWorkflow(JSON.parse(built) as never, loadTaskDefs(), CONDUCTOR_TASKS);
      if (problems.length) throw new CliError(`the generated workflow fails the wiring check (nothing written):\n  ${problems.join("\n  ")}`, 1);
      writeFileSync(WORKFLOW_JSON_PATH, built);
      process.stdout.write(`wrote ${WORKFLOW_JSON_PATH}\n`);
    });
  wf.command("check")
    .description("static wiring check: expressions vs zod schemas, task definitions, workers, required inputs; the JSON is what the graph generates")
    .action(() => {
      const problems = checkWorkflow(loadWorkflowDef() as never, loadTaskDefs(), CONDUCTOR_TASKS);
      if (readFileSync(WORKFLOW_JSON_PATH, "utf8") !== formatWorkflowJson(buildWorkflow())) {
        problems.push(`${WORKFLOW_JSON_PATH} is not what the pipeline graph generates: run \`trackscribe workflows build\``);
      }
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
