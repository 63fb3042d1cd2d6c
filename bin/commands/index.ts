/** Every subcommand registers itself here: one import and one call per command module. */
import type { Command } from "commander";

export function registerCommands(program: Command): void {
  void program;
}
