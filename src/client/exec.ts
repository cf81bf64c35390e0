/**
 * `--exec`: the command run after each change of the value, as argv (no shell), with
 * cachish's standard output and error, to its end before anything else happens: it never runs
 * twice at once, and a change during it is seen afterwards.
 */
import { accessSync, constants } from "node:fs";
import { systemProblem } from "../error-text";

/** Why `program` cannot be run as it is named now, or undefined when it can: said at start, not at the first change weeks later. */
export function cannotRun(program: string): string | undefined {
  if (!program.includes("/")) return Bun.which(program) ? undefined : `\`${program}\` is not found on $PATH`;
  try {
    accessSync(program, constants.X_OK);
    return undefined;
  } catch (error) {
    return `\`${program}\` cannot be run: ${systemProblem(error)}`;
  }
}

/**
 * Runs `argv` to its end; undefined when it exited 0, else what went wrong (naming the program,
 * never its arguments, which may hold anything). A stop (`signal` aborted, its reason a signal's
 * name) is passed on to the command, and waited for.
 */
export async function runToEnd(argv: string[], signal: AbortSignal): Promise<string | undefined> {
  const program = argv[0]!;
  // The command is not this unit's main process: a notification of its own would be refused by
  // systemd (NotifyAccess=main) and logged as such.
  const { NOTIFY_SOCKET: _, ...env } = process.env;
  let child;
  try {
    child = Bun.spawn(argv, { env, stdin: "ignore", stdout: "inherit", stderr: "inherit" });
  } catch (error) {
    return `\`${program}\` cannot be run: ${(error as { code?: string }).code === "ENOENT" ? "not found" : systemProblem(error)}`;
  }
  const stop = () => child.kill(signal.reason as NodeJS.Signals);
  signal.addEventListener("abort", stop);
  try {
    await child.exited;
  } finally {
    signal.removeEventListener("abort", stop);
  }
  if (child.signalCode) return `\`${program}\` was killed by ${child.signalCode}`;
  return child.exitCode === 0 ? undefined : `\`${program}\` exited with status ${child.exitCode}`;
}
