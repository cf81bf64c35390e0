/**
 * `cachish serve` without the command line: open the store, listen, stop gracefully.
 */
import { formatListen } from "./config/listen";
import type { Config, Listen } from "./config/types";
import { clearStaleSocket, type Listener, listen, type Routes } from "./http/server";
import { Watch } from "./http/watch";
import type { Logger } from "./log";
import { systemProblem } from "./error-text";
import { Metrics } from "./metrics";
import { openResolver } from "./open";
import { startRefresh } from "./refresh";
import { type Clock, systemClock } from "./resolver";
import { SharedTier } from "./store/shared";

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
  /**
   * Takes a new, valid configuration without dropping a connection or a stored value. Returns
   * what it could not apply (a changed `listen` or `cache_dir` needs a restart).
   */
  reload(config: Config): Promise<string[]>;
  stop(): Promise<void>;
};

export async function startDaemon(config: Config, log: Logger, options: { listen?: Listen; clock?: Clock } = {}): Promise<Daemon> {
  const clock = options.clock ?? systemClock;
  const address = options.listen ?? config.listen;
  // Kept even when off: a reload that turns them on again finds the counts so far.
  const metrics = new Metrics();
  metrics.logLinesDropped = () => log.dropped();
  // The fleet's tier, when configured: cachish starts without it and connects when it can.
  const shared = config.shared_store ? new SharedTier(config.shared_store, log) : undefined;
  if (shared) metrics.sharedUp = () => shared.up;
  const { resolver, store } = await openResolver(config, log, { clock, metrics, ...(shared ? { shared } : {}) });
  let ready = false;
  let current = config;
  const watch = new Watch(resolver, clock);
  metrics.waitingClients = (path) => watch.waiting(path);
  // The handler reads these at each request, so a reload changes them in place.
  const routes: Routes = { resolver, clients: () => current.clients, log, clock, ready: () => ready, watch, ...(config.metrics ? { metrics } : {}) };
  let listener: Listener;
  try {
    if (address.kind === "unix") {
      const problem = await clearStaleSocket(address.path);
      if (problem) throw new ListenError(`cannot listen: ${problem}`);
    }
    listener = listen(address, routes);
  } catch (error) {
    await store.close();
    if (error instanceof ListenError) throw error;
    throw new ListenError(`cannot listen on ${formatListen(address)}: ${systemProblem(error)}`);
  }
  ready = true;
  let stopRefresh = startRefresh(resolver, clock);
  const shown = address.kind === "unix" ? formatListen(address) : formatListen({ ...address, port: listener.server.port ?? address.port });
  return {
    address: shown,
    async reload(next) {
      const notes: string[] = [];
      if (formatListen(next.listen) !== formatListen(current.listen) && !options.listen) notes.push("`listen` changed: it takes effect at the next restart");
      if (next.cache_dir !== current.cache_dir) notes.push("`cache_dir` changed: it takes effect at the next restart");
      const sharedOf = (c: Config) => (c.shared_store ? `${c.shared_store.url.reveal()}\n${c.shared_store.key.reveal()}\n${c.shared_store.timeout}` : "");
      if (sharedOf(next) !== sharedOf(current)) notes.push("`shared_store` changed: it takes effect at the next restart");
      stopRefresh();
      try {
        await resolver.reconfigure(next.items);
      } finally {
        // A reload that failed (the store unreadable) keeps serving the old items: refreshed too.
        stopRefresh = startRefresh(resolver, clock);
      }
      if (next.metrics) routes.metrics = metrics;
      else delete routes.metrics;
      current = next;
      // Clients waiting for a change were let in by the old configuration: each is answered 304
      // and asks again under the new one (a token the reload revoked gets no later value).
      watch.release();
      return notes;
    },
    async stop() {
      ready = false;
      // Long polls end now with 304, rather than after their N seconds.
      watch.close();
      // Stops accepting at once; the requests in flight finish (each bounded by its item's timeout).
      await listener.server.stop(false);
      stopRefresh();
      await resolver.stop();
      await store.close();
    },
  };
}
