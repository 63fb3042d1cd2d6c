/** The `trackscribe` command. Each subcommand lives in bin/commands/<name>.ts. */
import { Command, CommanderError } from "commander";
import { ConfigError } from "../pipeline/config.ts";
import { CliError } from "./errors.ts";
import { registerCommands } from "./commands/index.ts";
import { buildInfo } from "../workers/identity.ts";

export async function main(argv: string[]): Promise<number> {
  // stdout belongs to command output (`--json` prints exactly one document); libraries that
  // print diagnostics with console.log (the Conductor SDK does when CI is set) go to stderr
  console.log = (...args: unknown[]) => console.error(...args);
  const program = new Command("trackscribe")
    .description("multitrack meeting recordings → speaker-attributed transcripts, topics, titles and summaries")
    .version(buildInfo().build)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  registerCommands(program);
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof CliError) {
      process.stderr.write(`trackscribe: ${err.message}\n`);
      return err.exitCode;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`trackscribe: ${err.message}\n`);
      return 78; // EX_CONFIG
    }
    process.stderr.write(`trackscribe: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  }
}
