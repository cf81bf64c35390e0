import { readFileSync } from "node:fs";
import { defineCommand } from "citty";
import { formatDuration, parseDuration } from "../config/units";
import { systemProblem } from "../error-text";
import { createLogger } from "../log";
import { systemdNotifier } from "../systemd";
import type { Answer } from "../client/answer";
import { splitArgv } from "../client/argv";
import { askDaemon, askLocal, DEFAULT_SERVER, type Poll } from "../client/ask";
import { writeAtomically } from "../client/atomic-write";
import { cannotRun, runToEnd } from "../client/exec";
import { type Format, render } from "../client/output";
import { Backoff, sleep } from "../client/pause";
import { type Checked, WAIT_SECONDS, watch } from "../client/watch";
import { CliError, UsageError } from "./errors";
import type { Command, Output } from "./run";

/** The exit codes of SPEC 6, which scripts test for. */
export const EXIT = { ok: 0, error: 1, usage: 2, unavailable: 69, refused: 77 } as const;

/** Each attempt waits at most this long for the daemon (which answers within its items' timeout). */
const ATTEMPT_TIMEOUT = 60_000;

function duration(option: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = parseDuration(text);
  if (ms === undefined) throw new UsageError(`${option}: \`${text}\` is not a duration; write e.g. \`30s\`, \`5m\`, \`1h\``);
  return ms;
}

/** The command `--exec` names, checked now: a typo in a unit file is told at start, not at the first change. */
function execArgv(text: string): string[] {
  const split = splitArgv(text);
  if (!split.ok) throw new UsageError(`--exec: ${split.why}`);
  const program = split.argv[0];
  if (program === undefined) throw new UsageError("--exec: no command given");
  const why = cannotRun(program);
  if (why) throw new UsageError(`--exec: ${why}`);
  return split.argv;
}

function readToken(file: string): string {
  try {
    return readFileSync(file, "utf8").replace(/\r?\n$/, "");
  } catch (error) {
    throw new CliError(`cachish get: cannot read the token file ${file}: ${systemProblem(error)}`, EXIT.error);
  }
}

export function getCommand(io: Output): Command {
  return {
    ...defineCommand({
      meta: { name: "get", description: "Print an item's value, asked of a running daemon (or, with --config, resolved here)." },
      args: {
        path: { type: "positional", required: true, description: "The item's path, e.g. /database-url" },
        server: { type: "string", valueHint: "URL", description: `The daemon: http://HOST:PORT or unix:/path (default: $CACHISH_URL, else ${DEFAULT_SERVER})` },
        token: { type: "string", valueHint: "TOKEN", description: "The client's token (default: $CACHISH_TOKEN, else --token-file)" },
        "token-file": { type: "string", valueHint: "FILE", description: "A file holding the token" },
        field: { type: "string", valueHint: "KEY", description: "Print only this top-level key: a string as it is, anything else as JSON" },
        format: { type: "enum", options: ["json", "sh", "env"], default: "json", description: "`sh`: export KEY='value' lines for eval; `env`: KEY=\"value\" lines for systemd's EnvironmentFile=; one per top-level key" },
        quiet: { type: "boolean", description: "No warning on stderr when the value is stale" },
        "max-age": { type: "string", valueHint: "DURATION", description: "Refuse a value older than this (exit 69)" },
        wait: { type: "string", valueHint: "DURATION", description: "Keep trying this long while the daemon cannot be reached or answers 503" },
        config: { type: "string", valueHint: "FILE", description: "Resolve the item in this process from this configuration and its store: no daemon, no token" },
        output: { type: "string", valueHint: "FILE", description: "Write the value to FILE instead of printing it: whole or not at all (a new file, mode 0600, renamed over FILE)" },
        watch: { type: "boolean", description: "After the value, wait for each change and print (or --output) it again; a lost daemon is waited for; runs until stopped" },
        exec: { type: "string", valueHint: "'CMD ARGS'", description: "With --watch: run this command (split as argv; no shell) after each change, not for the first value, instead of printing" },
      },
      async run({ args }) {
        const path = String(args.path);
        if (!path.startsWith("/")) throw new UsageError(`PATH must start with \`/\`, e.g. /database-url (got \`${path}\`)`);
        const format = (args.format ?? "json") as string as Format;
        if (args.field !== undefined && format !== "json") throw new UsageError(`--field and --format ${format} do not go together`);
        const maxAge = duration("--max-age", args["max-age"]);
        // Every value's Age is at least 0: a bound of 0 would refuse them all.
        if (maxAge === 0) throw new UsageError("--max-age must be more than 0");
        const wait = duration("--wait", args.wait) ?? 0;
        if (args.config !== undefined && (args.server !== undefined || args.token !== undefined || args["token-file"] !== undefined)) {
          throw new UsageError("--config resolves the item here, without a daemon or a token: leave out --server, --token and --token-file");
        }
        // An empty variable counts as unset, as shells and unit files produce them.
        const server = args.server ?? (process.env.CACHISH_URL || DEFAULT_SERVER);
        if (!server.startsWith("unix:") && !/^https?:\/\/[^/]+/.test(server)) throw new UsageError(`--server: \`${server}\` is not http://HOST:PORT or unix:/path`);
        const token = args.token ?? (process.env.CACHISH_TOKEN || (args["token-file"] !== undefined ? readToken(args["token-file"]) : undefined));

        const output = args.output;
        if (output === "") throw new UsageError("--output needs a file name");
        const watching = Boolean(args.watch);
        if (watching && args.config !== undefined) throw new UsageError("--watch follows a running daemon's value, --config resolves it once here: leave out one of them");
        if (args.exec !== undefined && !watching) throw new UsageError("--exec runs a command after each change of the value: it needs --watch");
        const exec = args.exec === undefined ? undefined : execArgv(args.exec);

        // A stopped watcher ends at once with 0, as systemd expects of a clean stop; a single get
        // keeps the default (the process ends by the signal).
        const stop = new AbortController();
        const stopBy = (signal: NodeJS.Signals) => () => stop.abort(signal);
        const handlers = { SIGTERM: stopBy("SIGTERM"), SIGINT: stopBy("SIGINT") };
        if (watching) for (const [signal, handler] of Object.entries(handlers)) process.on(signal, handler);
        try {
          const started = Date.now();
          const ask = (poll?: Poll): Promise<Answer> => {
            if (args.config !== undefined) return askLocal(args.config, path, (text) => io.err(text));
            if (poll) return askDaemon(server, path, token, (poll.waitSeconds ?? 0) * 1000 + ATTEMPT_TIMEOUT, poll, stop.signal);
            const left = started + wait - Date.now();
            return askDaemon(server, path, token, Math.max(ATTEMPT_TIMEOUT, left), undefined, stop.signal);
          };
          let answer = await ask();
          // A daemon that is still starting, or an upstream not yet answered: try again, a little
          // later each time, until --wait runs out.
          const backoff = new Backoff(100, 2000);
          while (answer.kind === "unavailable" && Date.now() < started + wait && !stop.signal.aborted) {
            await sleep(Math.min(backoff.next(), started + wait - Date.now()), stop.signal);
            answer = await ask();
          }
          if (stop.signal.aborted) return EXIT.ok;
          const waited = wait > 0 ? ` (gave up after waiting ${formatDuration(wait)})` : "";
          switch (answer.kind) {
            case "unavailable":
              throw new CliError(`cachish get: ${path}: ${answer.why}${waited}`, EXIT.unavailable);
            case "refused":
              throw new CliError(`cachish get: ${path}: ${answer.why}`, EXIT.refused);
            case "error":
            case "unchanged": // never the answer to a question without a validator
              throw new CliError(`cachish get: ${path}: ${answer.kind === "error" ? answer.why : "the daemon answered 304 to a request without If-None-Match"}`, EXIT.error);
          }
          /** What a value gives: every value a watcher delivers is held to the rules of the first. */
          const check = (value: Extract<Answer, { kind: "value" }>): Checked & { exitCode?: number } => {
            // Fresh while its age is below the bound (RFC 9111 4.2): `Age: 1` has reached `--max-age 1s`.
            if (maxAge !== undefined && value.ageSeconds * 1000 >= maxAge) {
              return { ok: false, exitCode: EXIT.unavailable, why: `${path}: the value is ${value.ageSeconds} s old, not younger than --max-age ${formatDuration(maxAge)}${value.stale ? ` (the upstream failed: ${value.stale})` : ""}` };
            }
            const rendered = render(value.body, path, { format, ...(args.field !== undefined ? { field: args.field } : {}) });
            if (!rendered.ok) return { ok: false, exitCode: EXIT.error, why: rendered.why };
            const warning = value.stale && !args.quiet ? `warning: ${path} is a stale value, ${value.ageSeconds} s old: the upstream failed (${value.stale}) and the stored value was served` : undefined;
            return { ok: true, text: rendered.text, ...(warning ? { warning } : {}) };
          };
          /**
           * Prints the text, or writes it to --output; then, for a change, runs --exec (whose
           * failure is told, not retried: once per change). Why the text is not out, if it is not.
           */
          const deliver = async (text: string, change: boolean): Promise<string | undefined> => {
            if (output !== undefined) {
              const failed = writeAtomically(output, text);
              if (failed) return failed;
            } else if (!exec) io.out(text);
            const failed = exec && change && (await runToEnd(exec, stop.signal));
            // A command that a stop ended has not failed.
            if (failed && !stop.signal.aborted) io.err(`cachish get: ${path}: --exec: ${failed}\n`);
            return undefined;
          };
          const first = check(answer);
          if (!first.ok) throw new CliError(`cachish get: ${first.why}`, first.exitCode!);
          if (first.warning) io.err(`cachish get: ${first.warning}\n`);
          // The first value is no change: it is written (a service's EnvironmentFile= needs it) but
          // runs nothing, since the service started alongside reads this value itself.
          const failed = await deliver(first.text, false);
          if (failed) throw new CliError(`cachish get: ${failed}`, EXIT.error);
          if (!watching) return EXIT.ok;

          // Type=notify: the unit is started once the first value is out, so a service ordered
          // after it finds FILE written.
          const notifier = systemdNotifier(process.env, createLogger({ format: "logfmt", level: "warn" }, (line) => io.err(line)));
          notifier.ready(`watching ${path}`);
          const ended = await watch(
            { ...(answer.etag ? { etag: answer.etag } : {}), text: first.text },
            {
              path,
              ask: (etag, wait) => ask(etag === undefined ? undefined : { etag, ...(wait ? { waitSeconds: WAIT_SECONDS } : {}) }),
              check,
              deliver: (text) => deliver(text, true),
              report: (text) => io.err(`cachish get: ${text}\n`),
              stop: stop.signal,
            },
          );
          notifier.close();
          if (ended) throw new CliError(`cachish get: ${path}: ${ended.why}`, ended.kind === "refused" ? EXIT.refused : EXIT.error);
          return EXIT.ok;
        } finally {
          for (const [signal, handler] of Object.entries(handlers)) process.off(signal, handler);
        }
      },
    }),
    footer: [
      "EXAMPLES",
      "",
      '  export DATABASE_URL="$(cachish get /database-url --field DATABASE_URL)"',
      '  vars="$(cachish get /database-url --format sh)" && eval "$vars"   # stops when get fails',
      "  umask 077 && cachish get /database-url --format env > /run/myapp/cachish.env   # for EnvironmentFile=",
      "  cachish get /database-url --format env --output /run/myapp/cachish.env --watch --exec 'systemctl try-restart myapp'",
      "",
      "EXIT CODES",
      "",
      "  0   a value was printed (a stale one too, with a warning on stderr); --watch: stopped by SIGTERM or SIGINT",
      "  1   anything else: no such item, no such field, a key that is no variable name, bad JSON",
      "  2   usage error",
      "  69  unavailable: the daemon answered 503 or cannot be reached, or the value is older than --max-age",
      "  77  refused: the daemon answered 401 or 403 (no token, or a token that may not read PATH), also while watching",
    ].join("\n"),
  };
}
