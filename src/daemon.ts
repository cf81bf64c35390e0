/**
 * `cachish serve` without the command line: open the store, listen, stop gracefully.
 */
import type { Server } from "bun";
import { formatListen } from "./config/listen";
import type { Config, Listen } from "./config/types";
import { clearStaleSocket, listen } from "./http/server";
import { openResolver } from "./local";
import type { Logger } from "./log";
import { Metrics } from "./metrics";
import { type Clock, systemClock } from "./resolver";

/** The daemon cannot listen where it was told to. */
export class ListenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ListenError";
  }
}

export type Daemon = {
  /** Where it listens, with the real port when port 0 was asked for. */
  address: string;
  stop(): Promise<void>;
};

export async function startDaemon(config: Config, log: Logger, options: { listen?: Listen; clock?: Clock } = {}): Promise<Daemon> {
  const clock = options.clock ?? systemClock;
  const address = options.listen ?? config.listen;
  const metrics = config.metrics ? new Metrics() : undefined;
  const { resolver, store } = await openResolver(config, log, { clock, ...(metrics ? { metrics } : {}) });
  let ready = false;
  let server: Server<unknown>;
  try {
    if (address.kind === "unix") {
      const problem = await clearStaleSocket(address.path);
      if (problem) throw new ListenError(`cannot listen: ${problem}`);
    }
    server = listen(address, { resolver, clients: () => config.clients, log, clock, ready: () => ready, ...(metrics ? { metrics } : {}) });
  } catch (error) {
    await store.close();
    if (error instanceof ListenError) throw error;
    const code = (error as { code?: string }).code;
    const why = code === "EADDRINUSE" ? "the address is already in use" : code === "EACCES" ? "permission denied" : error instanceof Error ? error.message : String(error);
    throw new ListenError(`cannot listen on ${formatListen(address)}: ${why}`);
  }
  ready = true;
  resolver.startRefresh();
  const shown = address.kind === "unix" ? formatListen(address) : formatListen({ ...address, port: server.port ?? address.port });
  return {
    address: shown,
    async stop() {
      ready = false;
      // Stops accepting at once; the requests in flight finish (each bounded by its item's timeout).
      await server.stop(false);
      await resolver.stop();
      await store.close();
    },
  };
}
