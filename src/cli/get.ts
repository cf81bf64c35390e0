import { readFileSync } from "node:fs";
import { defineCommand } from "citty";
import { formatDuration, parseDuration } from "../config/units";
import { systemProblem } from "../error-text";
import type { Answer } from "../client/answer";
import { askDaemon, askLocal, DEFAULT_SERVER } from "../client/ask";
import { type Format, render } from "../client/output";
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

        const started = Date.now();
        const ask = (): Promise<Answer> => {
          if (args.config !== undefined) return askLocal(args.config, path, (text) => io.err(text));
          const left = started + wait - Date.now();
          return askDaemon(server, path, token, Math.max(ATTEMPT_TIMEOUT, left));
        };
        let answer = await ask();
        // A daemon that is still starting, or an upstream not yet answered: try again, a little
        // later each time, until --wait runs out.
        for (let pause = 100; answer.kind === "unavailable" && Date.now() < started + wait; pause = Math.min(pause * 2, 2000)) {
          await Bun.sleep(Math.min(pause, started + wait - Date.now()));
          answer = await ask();
        }
        const waited = wait > 0 ? ` (gave up after waiting ${formatDuration(wait)})` : "";
        switch (answer.kind) {
          case "unavailable":
            throw new CliError(`cachish get: ${path}: ${answer.why}${waited}`, EXIT.unavailable);
          case "refused":
            throw new CliError(`cachish get: ${path}: ${answer.why}`, EXIT.refused);
          case "error":
            throw new CliError(`cachish get: ${path}: ${answer.why}`, EXIT.error);
        }
        // Fresh while its age is below the bound (RFC 9111 4.2): `Age: 1` has reached `--max-age 1s`.
        if (maxAge !== undefined && answer.ageSeconds * 1000 >= maxAge) {
          throw new CliError(`cachish get: ${path}: the value is ${answer.ageSeconds} s old, not younger than --max-age ${formatDuration(maxAge)}${answer.stale ? ` (the upstream failed: ${answer.stale})` : ""}`, EXIT.unavailable);
        }
        const rendered = render(answer.body, path, { format, ...(args.field !== undefined ? { field: args.field } : {}) });
        if (!rendered.ok) throw new CliError(`cachish get: ${rendered.why}`, EXIT.error);
        if (answer.stale && !args.quiet) {
          io.err(`cachish get: warning: ${path} is a stale value, ${answer.ageSeconds} s old: the upstream failed (${answer.stale}) and the stored value was served\n`);
        }
        io.out(rendered.text);
        return EXIT.ok;
      },
    }),
    footer: [
      "EXAMPLES",
      "",
      '  export DATABASE_URL="$(cachish get /database-url --field DATABASE_URL)"',
      '  vars="$(cachish get /database-url --format sh)" && eval "$vars"   # stops when get fails',
      "  umask 077 && cachish get /database-url --format env > /run/myapp/cachish.env   # for EnvironmentFile=",
      "",
      "EXIT CODES",
      "",
      "  0   a value was printed (a stale one too, with a warning on stderr)",
      "  1   anything else: no such item, no such field, a key that is no variable name, bad JSON",
      "  2   usage error",
      "  69  unavailable: the daemon answered 503 or cannot be reached, or the value is older than --max-age",
      "  77  refused: the daemon answered 401 or 403 (no token, or a token that may not read PATH)",
    ].join("\n"),
  };
}
