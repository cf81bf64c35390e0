import { defineCommand } from "citty";
import { parseListen } from "../config/listen";
import { loadConfig } from "../config/load";
import { locateConfig } from "../config/locate";
import type { Config, Listen } from "../config/types";
import { type Daemon, ListenError, startDaemon } from "../daemon";
import { messageOf } from "../error-text";
import { systemdNotifier } from "../systemd";
import { createLogger, type Logger } from "../log";
import { StoreError } from "../store/store";
import { VERSION } from "../version";
import { formatProblem, type Problem } from "../config/problems";
import { CliError, UsageError } from "./errors";
import type { Command, Output } from "./run";

/** A refused reload logs this many problems at most, in its one line. */
const MAX_LOGGED_PROBLEMS = 20;

/** A configuration problem as log fields: where it is and what it says. */
const problemFields = (file: string, problem: Problem) => ({ file, line: problem.at?.line, column: problem.at?.column, problem: problem.message });

/** Runs `task` for each call, one at a time: a SIGHUP during a reload reloads once more after it. */
function serialized(task: () => Promise<void>, log: Logger): () => void {
  let running = false;
  let again = false;
  const run = async () => {
    running = true;
    try {
      await task();
    } catch (error) {
      log.error("reload failed; still serving the previous configuration", { cause: messageOf(error) });
    }
    running = false;
    if (again) {
      again = false;
      void run();
    }
  };
  return () => {
    if (running) again = true;
    else void run();
  };
}

export function serveCommand(io: Output): Command {
  return {
    ...defineCommand({
      meta: { name: "serve", description: "Run the daemon: answer the configured items over HTTP, from the upstream or the store." },
      args: {
        config: { type: "string", valueHint: "FILE", description: "The configuration (default: $CACHISH_CONFIG_FILE, else /etc/cachish.yml)" },
        listen: { type: "string", valueHint: "ADDR", description: "Listen here instead of the configuration's `listen`: HOST:PORT or unix:/path" },
      },
      async run({ args }) {
        const file = locateConfig(args.config);
        const loaded = loadConfig(file);
        if (!loaded.config) {
          for (const problem of loaded.problems) io.err(`${formatProblem(file, problem)}\n`);
          throw new CliError(`cachish serve: ${file} is invalid; nothing was started (\`cachish check-config ${file}\` explains it)`, 1);
        }
        let config: Config = loaded.config;
        let address: Listen | undefined;
        if (args.listen) {
          const parsed = parseListen(args.listen, process.cwd());
          if (typeof parsed === "string") throw new UsageError(`--listen: ${parsed}`);
          address = parsed;
        }
        // Standard output, as bytes: the log's own writer, not io.out's text.
        const log = createLogger(config.log);
        // A loaded configuration's warnings, at start and at each reload.
        const warnAbout = (problems: Problem[]) => {
          for (const problem of problems) log.warn("configuration warning", problemFields(file, problem));
        };
        warnAbout(loaded.problems);
        // Signal handlers go in before anything starts: a SIGTERM that arrives while the
        // store opens must still stop the daemon gracefully, and Bun installs them lazily.
        let signalled: ((signal: string) => void) | undefined;
        const signal = new Promise<string>((resolve) => (signalled = resolve));
        process.on("SIGTERM", () => signalled?.("SIGTERM"));
        process.on("SIGINT", () => signalled?.("SIGINT"));
        let reload: () => void = () => log.warn("SIGHUP received while starting; not reloaded");
        process.on("SIGHUP", () => reload());
        const notifier = systemdNotifier(process.env, log);
        let daemon: Daemon;
        try {
          daemon = await startDaemon(config, log, address ? { listen: address } : {});
        } catch (error) {
          log.flush();
          if (error instanceof StoreError || error instanceof ListenError) throw new CliError(`cachish serve: ${error.message}`, 1);
          throw error;
        }
        const status = (c: Config) => `serving ${c.items.size} item${c.items.size === 1 ? "" : "s"} to ${c.clients.length} client${c.clients.length === 1 ? "" : "s"} on ${daemon.address}`;
        log.info("ready", { version: VERSION, listen: daemon.address, items: config.items.size, clients: config.clients.length, store: config.cache_dir, config: file });
        notifier.ready(status(config));
        notifier.watchdog();
        // The binary starts with a reluctant JIT (scripts/build.ts): from here on, what runs
        // again and again is the answering of requests, which must be compiled.
        Bun.unsafe.setJITPolicy(1);
        reload = serialized(async () => {
          notifier.reloading();
          const next = loadConfig(file);
          if (!next.config) {
            // One line for one refusal, however broken the file: its problems as check-config lists them.
            const errors = next.problems.filter((p) => p.severity === "error").length;
            const shown = next.problems.slice(0, MAX_LOGGED_PROBLEMS).map((p) => formatProblem(file, p));
            if (next.problems.length > MAX_LOGGED_PROBLEMS) shown.push(`(${next.problems.length - MAX_LOGGED_PROBLEMS} more: run cachish check-config ${file})`);
            log.error("reload refused: the configuration is invalid; still serving the previous one", { file, errors, problems: shown.join(" | ") });
            notifier.ready(status(config));
            return;
          }
          warnAbout(next.problems);
          const notes = await daemon.reload(next.config);
          for (const note of notes) log.warn("reloaded, except", { note });
          config = next.config;
          log.info("reloaded", { items: config.items.size, clients: config.clients.length, config: file });
          log.configure(config.log);
          notifier.ready(status(config));
        }, log);
        const stopSignal = await signal;
        notifier.stopping();
        log.info("stopping", { signal: stopSignal });
        try {
          await daemon.stop();
        } catch (error) {
          log.error("could not stop cleanly", { cause: messageOf(error) });
          log.flush();
          return 1;
        } finally {
          notifier.close();
        }
        log.info("stopped");
        log.flush();
        return 0;
      },
    }),
    footer: [
      "Logs go to standard output, one line per request and per event (logfmt or JSON, as `log` says).",
      "SIGTERM or SIGINT: stop accepting, finish the requests in flight, close the store, exit 0.",
      "SIGHUP: reload the configuration; an invalid one is refused and logged, the old one keeps serving.",
      "Under systemd (Type=notify), readiness, reloads and stops are reported on $NOTIFY_SOCKET.",
      "",
      "EXIT CODES",
      "",
      "  0  stopped by SIGTERM or SIGINT",
      "  1  the configuration is invalid, or the store or the listen address cannot be used",
      "  2  usage error",
    ].join("\n"),
  };
}
