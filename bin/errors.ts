/** An error the CLI prints as one clear line, exiting with `exitCode`. */
export class CliError extends Error {
  override readonly name = "CliError";
  constructor(message: string, readonly exitCode = 2) {
    super(message);
  }
}
