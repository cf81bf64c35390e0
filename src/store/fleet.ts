/**
 * A fleet of hosts sharing one PostgreSQL tier (SPEC 5.7), wrapped around the host's own store
 * and its fetches, so that the resolver sees a store like any other. A value put goes to the
 * local store, then to the fleet in the background; a newer value the fleet announces goes to
 * the local store, then into the host's memory. Before a fetch the fleet is asked: a value
 * fresher than `ttl` saves it; a lease held by another host means waiting for that host's
 * value; else this host holds the lease until its value is in the database or its fetch failed.
 */
import { UpstreamFailure } from "../backends/failure";
import type { Item } from "../config/types";
import { messageOf } from "../error-text";
import { isJson } from "../json";
import type { Logger } from "../log";
import type { Metrics } from "../metrics";
import type { Clock } from "../resolver";
import { fresh } from "../policy";
import type { SharedTier } from "./shared";
import { type Held, sameBytes, type Store, type Stored } from "./store";

/** What the fleet asks of its PostgreSQL tier (shared.ts). */
export type Tier = Pick<SharedTier, "start" | "read" | "write" | "lease" | "release" | "close">;

/** The host's values in memory (the resolver); `item` says whether it is configured here. */
type Memory = { item(path: string): unknown; stored(path: string): Stored | undefined; take(path: string, stored: Stored): void };

export class Fleet implements Store {
  #memory: Memory | undefined;
  /** Fetches waiting for a value another host is fetching, woken by each value taken. */
  readonly #waiting = new Map<string, Set<() => void>>();

  constructor(
    private readonly local: Store,
    private readonly tier: Tier,
    private readonly context: { log: Logger; clock: Clock; metrics?: Metrics | undefined },
  ) {}

  get(path: string): Promise<Stored | undefined> {
    return this.local.get(path);
  }

  put(path: string, stored: Stored): Promise<void> {
    return this.#write(path, stored, () => this.local.put(path, stored));
  }

  /** A value the upstream said is unchanged: newer for the fleet too (each host's `ttl` counts from its fetch time). */
  renew(path: string, stored: Stored): Promise<void> {
    return this.#write(path, stored, () => this.local.renew(path, stored));
  }

  async #write(path: string, stored: Stored, local: () => Promise<void>): Promise<void> {
    try {
      await local();
    } finally {
      // The lease is given back once the fleet has the value, so that no other host fetches it meanwhile.
      void this.tier.write(path, stored).then(() => this.tier.release(path));
    }
  }

  async close(): Promise<void> {
    await this.tier.close();
    await this.local.close();
  }

  /** Connects in the background and keeps each newer value the fleet announces, into the store and `memory`. */
  follow(memory: Memory): void {
    this.#memory = memory;
    this.tier.start((path, stored) => void this.#take(path, stored));
  }

  async share<T>(item: Item, fetch: () => Promise<T>): Promise<T | Held> {
    const { path, policy } = item;
    const before = this.#memory?.stored(path)?.fetchedAt ?? -1;
    // Both questions at once, so that the database costs at most one `shared_store.timeout`.
    const [remote, lease] = await Promise.all([this.tier.read(path), this.tier.lease(path, policy.timeout)]);
    if (remote) await this.#take(path, remote);
    const held = this.#memory?.stored(path);
    if (held && fresh(policy, held.fetchedAt, this.context.clock.now())) {
      if (lease === "mine") void this.tier.release(path);
      return this.#saved(path, held);
    }
    if (lease === "held") {
      const wait = policy.stale_after ?? policy.timeout;
      const arrived = await this.#arrival(path, Math.max(before, remote?.fetchedAt ?? -1), wait);
      if (arrived) return this.#saved(path, arrived);
      throw new UpstreamFailure("lease", `another host is fetching it; its value did not arrive within ${wait} ms`);
    }
    try {
      return await fetch();
    } catch (error) {
      void this.tier.release(path);
      throw error;
    }
  }

  #saved(path: string, stored: Stored): Held {
    this.context.metrics?.saved(path);
    return { kind: "held", stored };
  }

  /** A value of the fleet, when newer than the host's: into the local store, then memory. */
  async #take(path: string, stored: Stored): Promise<void> {
    const memory = this.#memory;
    if (!memory?.item(path) || (memory.stored(path)?.fetchedAt ?? -1) >= stored.fetchedAt) return;
    if (!isJson(stored.value)) {
      this.context.log.error("a value of the shared store is not JSON; it is ignored", { item: path });
      return;
    }
    // Another host's renewal of the value held here changes its row, not its bytes.
    const renewal = sameBytes(stored, memory.stored(path));
    try {
      await (renewal ? this.local.renew(path, stored) : this.local.put(path, stored));
    } catch (error) {
      this.context.log.error("could not write a value of the fleet to the store", { item: path, cause: messageOf(error) });
    }
    memory.take(path, stored);
    for (const wake of this.#waiting.get(path) ?? []) wake();
  }

  /** The host's value of `path` once it is newer than `after`, waiting up to `ms` for it; else undefined. */
  async #arrival(path: string, after: number, ms: number): Promise<Stored | undefined> {
    const newer = () => {
      const stored = this.#memory?.stored(path);
      return stored && stored.fetchedAt > after ? stored : undefined;
    };
    if (!newer()) {
      const waiters = this.#waiting.get(path) ?? new Set();
      this.#waiting.set(path, waiters);
      let wake = () => {};
      const arrived = new Promise<void>((resolve) => (wake = resolve));
      waiters.add(wake);
      const timer = this.context.clock.timer(ms);
      try {
        await Promise.race([arrived, timer.done]);
      } finally {
        timer.cancel();
        waiters.delete(wake);
        if (waiters.size === 0) this.#waiting.delete(path);
      }
    }
    return newer();
  }
}
