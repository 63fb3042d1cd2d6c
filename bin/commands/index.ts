/** Every subcommand registers itself here: one import and one call per command module. */
import type { Command } from "commander";
import * as processCmd from "./process.ts";
import * as replayCmd from "./replay.ts";
import * as compareCmd from "./compare.ts";
import * as serveCmd from "./serve.ts";
import * as migrateCmd from "./migrate.ts";
import * as workflowsCmd from "./workflows.ts";
import * as workersCmd from "./workers.ts";
import * as inspectCmd from "./inspect.ts";
import * as keysCmd from "./keys.ts";

export function registerCommands(program: Command): void {
  processCmd.register(program);
  replayCmd.register(program);
  compareCmd.register(program);
  serveCmd.register(program);
  migrateCmd.register(program);
  workflowsCmd.register(program);
  workersCmd.register(program);
  inspectCmd.register(program);
  keysCmd.register(program);
  void program;
}
