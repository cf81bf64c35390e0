/**
 * The one path a value takes, for the daemon and for `cachish get --config` alike: from
 * memory within `ttl`, else from a fetch (shared by every request that arrives while it is
 * in flight), written to the store before it is answered, else, when the fetch fails, the
 * stored value unless it is older than `max_stale`. It returns an Outcome and knows nothing
 * of HTTP; time comes from an injected clock, so that policies are tested without sleeping.
 *
 * Memory serves, SQLite keeps: every stored value is read into memory at start, so a hit
 * never touches the disk.
 */
import { fetchItem } from "./backends";
import { asFailure, type UpstreamFailure } from "./backends/failure";
import type { Item } from "./config/types";
import { parseJson } from "./json";
import type { Logger } from "./log";
import type { Store, Stored } from "./store/store";

export type Clock = { now(): number };
export const systemClock: Clock = { now: () => Date.now() };

export type Outcome =
  /** Fetched for this request, or for one it joined (`collapsed`). `replaced`: a value was stored before. */
  | { kind: "fresh"; value: Uint8Array; fetchedAt: number; collapsed: boolean; replaced: boolean; upstreamMs: number }
  /** From memory, younger than `ttl`: the upstream was not asked. */
  | { kind: "hit"; value: Uint8Array; fetchedAt: number; ttl: number }
  /** From the store because the fetch failed. */
  | { kind: "stale"; value: Uint8Array; fetchedAt: number; failure: UpstreamFailure; collapsed: boolean; ttl: number; upstreamMs: number }
  /** The fetch failed and nothing usable is stored. */
  | { kind: "unavailable"; failure: UpstreamFailure; collapsed: boolean; upstreamMs: number };

type FetchResult = { ok: true; stored: Stored; replaced: boolean; ms: number } | { ok: false; failure: UpstreamFailure; ms: number };

export type Fetcher = (item: Item, now: number) => Promise<Uint8Array>;

export class Resolver {
  readonly #memory = new Map<string, Stored>();
  readonly #inflight = new Map<string, Promise<FetchResult>>();
  #items: ReadonlyMap<string, Item>;

  constructor(
    items: ReadonlyMap<string, Item>,
    private readonly store: Store,
    private readonly log: Logger,
    private readonly clock: Clock = systemClock,
    private readonly fetcher: Fetcher = fetchItem,
  ) {
    this.#items = items;
  }

  /** Reads every stored value of a configured item into memory; a corrupt one is logged and left out. */
  async load(stored: ReadonlyMap<string, Stored>): Promise<void> {
    for (const [path, value] of stored) {
      if (!this.#items.has(path)) continue;
      try {
        parseJson(new TextDecoder("utf-8", { fatal: true }).decode(value.value));
        this.#memory.set(path, value);
      } catch {
        this.log.error("a stored value is corrupt; it is ignored until the next good fetch", { item: path });
      }
    }
  }

  item(path: string): Item | undefined {
    return this.#items.get(path);
  }

  /** What is in memory for `path`, for `/metrics` and for answering without a fetch. */
  stored(path: string): Stored | undefined {
    return this.#memory.get(path);
  }

  /**
   * A hit within `ttl`, answered without a promise: the hot path of the daemon. Undefined
   * when the value must be resolved.
   */
  peek(path: string): Outcome | undefined {
    const item = this.#items.get(path);
    const stored = this.#memory.get(path);
    if (!item || !stored || item.policy.ttl === 0) return undefined;
    if (this.clock.now() - stored.fetchedAt >= item.policy.ttl) return undefined;
    return { kind: "hit", value: stored.value, fetchedAt: stored.fetchedAt, ttl: item.policy.ttl };
  }

  async resolve(path: string): Promise<Outcome> {
    const item = this.#items.get(path);
    if (!item) throw new Error(`resolve() of an unconfigured path ${path}`);
    const hit = this.peek(path);
    if (hit) return hit;
    let pending = this.#inflight.get(path);
    const collapsed = pending !== undefined;
    if (!pending) {
      pending = this.#fetch(item).finally(() => this.#inflight.delete(path));
      this.#inflight.set(path, pending);
    }
    const result = await pending;
    if (result.ok) {
      return { kind: "fresh", value: result.stored.value, fetchedAt: result.stored.fetchedAt, collapsed, replaced: result.replaced, upstreamMs: result.ms };
    }
    const stored = this.#memory.get(path);
    const age = stored ? this.clock.now() - stored.fetchedAt : 0;
    if (stored && (item.policy.max_stale === null || age <= item.policy.max_stale)) {
      return { kind: "stale", value: stored.value, fetchedAt: stored.fetchedAt, failure: result.failure, collapsed, ttl: item.policy.ttl, upstreamMs: result.ms };
    }
    return { kind: "unavailable", failure: result.failure, collapsed, upstreamMs: result.ms };
  }

  async #fetch(item: Item): Promise<FetchResult> {
    const started = this.clock.now();
    let value: Uint8Array;
    try {
      value = await this.fetcher(item, started);
    } catch (error) {
      const failure = asFailure(error);
      const ms = this.clock.now() - started;
      // Once per fetch, however many requests shared it; never the body or a secret.
      this.log.warn("upstream failure", { item: item.path, failure: failure.kind, status: failure.status, upstream_ms: ms, reason: failure.message });
      return { ok: false, failure, ms };
    }
    const stored = { value, fetchedAt: this.clock.now() };
    const replaced = this.#memory.has(item.path);
    try {
      await this.store.put(item.path, stored);
    } catch (error) {
      // The value is good and is served; the store keeps the previous one until a write works.
      this.log.error("could not write a fetched value to the store", { item: item.path, cause: error instanceof Error ? error.message : String(error) });
    }
    this.#memory.set(item.path, stored);
    return { ok: true, stored, replaced, ms: stored.fetchedAt - started };
  }
}
