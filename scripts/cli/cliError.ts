/** A failure the CLI reports as one line. `usage` errors (bad flags) exit 2, others 1. */
export class CliError extends Error {
  readonly kind: "usage" | "failure";
  constructor(message: string, kind: "usage" | "failure" = "failure") {
    super(message);
    this.name = "CliError";
    this.kind = kind;
  }
}

export const usageError = (message: string): CliError => new CliError(message, "usage");

/** The exit code of a command that failed with `error`: 2 for bad arguments, else 1 (din and the services alike). */
export const exitCodeOf = (error: unknown): number => (error instanceof CliError && error.kind === "usage" ? 2 : 1);

/** node:util parseArgs' complaint in one sentence ("Unknown option '--bogus'"), without its advice on positionals. */
export function parseArgsProblem(error: unknown): string {
  const message = (error as Error).message;
  // A flag followed by another flag or by nothing: its value is missing, in words a user reads so.
  const flag = /^Option '(-[^' ]+)(?: <value>)?' argument (?:is ambiguous|missing)/.exec(message)?.[1];
  if (flag !== undefined) return `${flag} needs a value (one that starts with a dash is written ${flag}=-…)`;
  return message.split(/\.(\s|$)/)[0];
}
