/**
 * The `cachish` executable. The one place that prints and exits: every command below returns
 * an exit code or throws a CliError.
 */
import { defineCommand } from "citty";
import { ignoreProxyEnvironment, leakyVariables } from "../environment";
import { stdoutSettled, writeStdoutText } from "../stdout";
import { VERSION } from "../version";
import { checkConfigCommand } from "./check-config";
import { getCommand } from "./get";
import { type Command, type Output, runCli } from "./run";
import { serveCommand } from "./serve";
import { versionCommand } from "./version";

const io: Output = {
  out: writeStdoutText,
  err: (text) => process.stderr.write(text),
  // Asked only when usage is printed: process.stdout costs a daemon's start ~25 ms and 6 MB.
  get color() {
    return Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
  },
};

const main: Command = defineCommand({
  meta: {
    name: "cachish",
    version: VERSION,
    description: "Fetches configured values for local services, hands each only what its token allows, and serves the last good value when the upstream fails.",
  },
  subCommands: {
    serve: serveCommand(io),
    get: getCommand(io),
    "check-config": checkConfigCommand(io),
    version: versionCommand(io),
  },
});

ignoreProxyEnvironment();
try {
  const leaky = leakyVariables();
  if (leaky.length > 0) {
    process.stderr.write(`cachish: ${leaky.join(", ")} is set: Bun would print every request with its token; unset it and start again\n`);
    process.exitCode = 1;
  } else {
    process.exitCode = await runCli(main, process.argv.slice(2), io);
  }
} catch (error) {
  // A bug of ours: say so plainly, with the stack for the bug report, and fail.
  process.stderr.write(`cachish: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 70;
}
// A stopped daemon gives its last log lines a second to reach a reader that has stalled, then
// ends without them (SPEC 5: SIGTERM ends in exit 0, not in systemd's SIGKILL at its timeout).
if (!(await stdoutSettled(1000))) process.exit();
