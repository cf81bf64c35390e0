/**
 * The store and the resolver of a configuration, opened the one way the daemon and
 * `cachish get --config` both use: the store opened (or created), 1.x cache files imported,
 * every stored value read into memory.
 */
import type { Config } from "./config/types";
import type { Logger } from "./log";
import type { Metrics } from "./metrics";
import { type Clock, Resolver, systemClock } from "./resolver";
import { importLegacyFiles } from "./store/legacy";
import type { SharedTier } from "./store/shared";
import { SqliteStore } from "./store/sqlite";

export async function openResolver(config: Config, log: Logger, options: { clock?: Clock; metrics?: Metrics; shared?: SharedTier } = {}): Promise<{ resolver: Resolver; store: SqliteStore }> {
  const store = SqliteStore.open(config.cache_dir, log);
  try {
    const stored = await store.all();
    const imported = await importLegacyFiles(store, config.cache_dir, config.items.keys(), stored, log);
    const resolver = new Resolver({ items: config.items, store, log, clock: options.clock ?? systemClock, ...(options.metrics ? { metrics: options.metrics } : {}), ...(options.shared ? { shared: options.shared } : {}) });
    resolver.load(new Map([...stored, ...imported]));
    return { resolver, store };
  } catch (error) {
    await store.close();
    throw error;
  }
}
