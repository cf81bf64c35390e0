/**
 * The store and the resolver of a configuration, opened the one way the daemon and
 * `cachish get --config` both use: the store opened (or created), 1.x cache files imported,
 * every stored value read into memory; with the fleet's tier, the store is the fleet's.
 */
import type { Config } from "./config/types";
import type { Logger } from "./log";
import type { Metrics } from "./metrics";
import { type Clock, Resolver, systemClock } from "./resolver";
import { Fleet } from "./store/fleet";
import { importLegacyFiles } from "./store/legacy";
import type { SharedTier } from "./store/shared";
import { SqliteStore } from "./store/sqlite";
import type { Store } from "./store/store";

export async function openResolver(config: Config, log: Logger, options: { clock?: Clock; metrics?: Metrics; shared?: SharedTier } = {}): Promise<{ resolver: Resolver; store: Store }> {
  const { clock = systemClock, metrics, shared } = options;
  const local = SqliteStore.open(config.cache_dir, log);
  try {
    const stored = await local.all();
    const imported = await importLegacyFiles(local, config.cache_dir, config.items.keys(), stored, log);
    const fleet = shared && new Fleet(local, shared, { log, clock, metrics });
    const store = fleet ?? local;
    const resolver = new Resolver({ items: config.items, store, log, clock, ...(metrics ? { metrics } : {}) });
    // Taken as they are: the store left out what is corrupt (its digests) and 1.x files were
    // parsed when imported; parsing every value again cost seconds at each start for a few MB.
    for (const [path, value] of [...stored, ...imported]) resolver.take(path, value);
    fleet?.follow(resolver);
    return { resolver, store };
  } catch (error) {
    await local.close();
    throw error;
  }
}
