/**
 * What a command's failure means to the shell. Commands throw these (or return an exit code);
 * only main.ts prints them and exits.
 */
export class CliError extends Error {
  constructor(message: string, readonly exitCode: number) {
    super(message);
    this.name = "CliError";
  }
}

/** The command line itself is wrong: exit 2, with a pointer to --help. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, 2);
    this.name = "UsageError";
  }
}
