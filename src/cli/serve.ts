import { defineCommand } from "citty";
import { parseListen } from "../config/listen";
import { loadConfig } from "../config/load";
import { locateConfig } from "../config/locate";
import { ListenError, startDaemon } from "../daemon";
import { createLogger } from "../log";
import { StoreError } from "../store/store";
import { VERSION } from "../version";
import { formatProblem } from "./check-config";
import { CliError, UsageError } from "./errors";
import type { Command, Output } from "./run";

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
        const config = loaded.config;
        if (!config) {
          for (const problem of loaded.problems) io.err(`${formatProblem(file, problem)}\n`);
          throw new CliError(`cachish serve: ${file} is invalid; nothing was started (\`cachish check-config ${file}\` explains it)`, 1);
        }
        let address = config.listen;
        if (args.listen) {
          const parsed = parseListen(args.listen, process.cwd());
          if (typeof parsed === "string") throw new UsageError(`--listen: ${parsed}`);
          address = parsed;
        }
        const log = createLogger(config.log, (text) => io.out(text));
        for (const problem of loaded.problems) {
          log.warn("configuration warning", { file, line: problem.at?.line, column: problem.at?.column, problem: problem.message });
        }
        // Signal handlers go in before anything starts: a SIGTERM that arrives while the
        // store opens must still stop the daemon gracefully, and Bun installs them lazily.
        let signalled: ((signal: string) => void) | undefined;
        const signal = new Promise<string>((resolve) => (signalled = resolve));
        process.on("SIGTERM", () => signalled?.("SIGTERM"));
        process.on("SIGINT", () => signalled?.("SIGINT"));
        // Until reloading lands, a SIGHUP must not kill the daemon (its default action would).
        process.on("SIGHUP", () => log.warn("SIGHUP received: reloading is not supported by this version; restart to apply a new configuration"));
        let daemon;
        try {
          daemon = await startDaemon(config, log, { listen: address });
        } catch (error) {
          log.flush();
          if (error instanceof StoreError || error instanceof ListenError) throw new CliError(`cachish serve: ${error.message}`, 1);
          throw error;
        }
        log.info("ready", { version: VERSION, listen: daemon.address, items: config.items.size, clients: config.clients.length, store: config.cache_dir, config: file });
        log.info("stopping", { signal: await signal });
        try {
          await daemon.stop();
        } catch (error) {
          log.error("could not stop cleanly", { cause: error instanceof Error ? error.message : String(error) });
          log.flush();
          return 1;
        }
        log.info("stopped");
        log.flush();
        return 0;
      },
    }),
    footer: [
      "Logs go to standard output, one line per request and per event (logfmt or JSON, as `log` says).",
      "SIGTERM or SIGINT: stop accepting, finish the requests in flight, close the store, exit 0.",
      "",
      "EXIT CODES",
      "",
      "  0  stopped by SIGTERM or SIGINT",
      "  1  the configuration is invalid, or the store or the listen address cannot be used",
      "  2  usage error",
    ].join("\n"),
  };
}
