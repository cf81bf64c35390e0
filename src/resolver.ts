/**
 * Carries out what policy.ts decides for each request, for the daemon and for
 * `cachish get --config` alike (SPEC 5.3): one fetch per item in flight, shared by every
 * request that comes meanwhile (`collapsed`); its deadline; the store write before the answer;
 * the backoff bookkeeping, the metrics and the one log line of a failed fetch.
 *
 * It returns an Outcome and knows nothing of HTTP. Time comes from an injected clock, so that
 * every policy is tested without sleeping. Memory serves, the store keeps: stored values are
 * read into memory at start, so a hit never touches the disk.
 */
import { fetchItem, type Upstream } from "./backends";
import { asFailure, UpstreamFailure } from "./backends/failure";
import type { Item } from "./config/types";
import { messageOf } from "./error-text";
import type { Logger } from "./log";
import type { ItemState, Metrics } from "./metrics";
import { type Answer, backoffEnd, decide, leftAlone, mayStandIn, saysNothing, type State } from "./policy";
import { type Held, type KeptValidators, sameBytes, type Store, type Stored, storedOf } from "./store/store";

export type Timer = { done: Promise<void>; cancel(): void };
export type Clock = { now(): number; timer(ms: number): Timer };

export const systemClock: Clock = {
  now: () => Date.now(),
  timer(ms) {
    let handle: ReturnType<typeof setTimeout> | undefined;
    const done = new Promise<void>((resolve) => (handle = setTimeout(resolve, ms)));
    return { done, cancel: () => clearTimeout(handle) };
  },
};

/** What every answer with a value carries: its bytes, when they were fetched, and their SHA-256 (the ETag of SPEC 5.8). */
type Value = { value: Uint8Array; fetchedAt: number; sha256: Uint8Array };

export type Outcome =
  /**
   * Fetched for this request, or for one it joined (`collapsed`). `replaced`: a value was
   * stored before; `stored`: this one was written to the store (false when the write failed);
   * `revalidated`: the upstream answered 304, the stored value is still its value.
   */
  | ({ kind: "fresh"; collapsed: boolean; replaced: boolean; stored: boolean; upstreamMs: number; revalidated?: boolean } & Value)
  /** From memory, younger than `ttl` (or just given by another host of the fleet): the upstream was not asked. */
  | ({ kind: "hit"; ttl: number } & Value)
  /**
   * The stored value, because the upstream failed (`detail` is the failure's kind), is in its
   * backoff window (`backoff`), or had not answered after `stale_after` (`stale-after`).
   */
  | ({ kind: "stale"; detail: string; collapsed: boolean; ttl: number; upstreamMs?: number } & Value)
  /** No usable value: the upstream failed, or is in its backoff window, and nothing servable is stored. */
  | { kind: "unavailable"; detail: string; status?: number; collapsed: boolean; upstreamMs?: number; retryAfter?: number };

const valueOf = ({ value, fetchedAt, sha256 }: Stored): Value => ({ value, fetchedAt, sha256 });

/** One upstream fetch of an item, conditional on `validators` (those of the value held) where they apply. */
export type Fetcher = (item: Item, now: number, validators?: KeptValidators) => Promise<Upstream>;

type Fresh = { kind: "fresh"; stored: Stored; replaced: boolean; written: boolean; ms: number; revalidated: boolean };
type Result = Fresh | Held | { kind: "failed"; failure: UpstreamFailure; ms: number };

/** What the resolver holds of an item: its value, its fetch in flight, and what policy.ts reads of its failures. */
type Entry = Pick<State, "failures" | "retryAt" | "lastFailure" | "upstreamFailure"> & { stored?: Stored; inflight?: Promise<Result> };
const newEntry = (): Entry => ({ failures: 0, retryAt: 0, lastFailure: undefined, upstreamFailure: undefined });

/** A fetch that does not settle (a bug, a stuck socket) gives up this long after its timeout. */
const DEADLINE_GRACE = 1000;

export type ResolverOptions = {
  items: ReadonlyMap<string, Item>;
  store: Store;
  log: Logger;
  clock?: Clock;
  fetcher?: Fetcher;
  metrics?: Metrics;
};

export class Resolver {
  #entries = new Map<string, Entry>();
  /**
   * Entries of items a reload removed while their fetch was in flight, until it settles: stop()
   * waits for it before the store closes, and a reload that brings the item back joins it
   * rather than starting a second fetch of the same path.
   */
  #leaving = new Map<string, Entry>();
  #items: ReadonlyMap<string, Item>;
  readonly #store: Store;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #fetcher: Fetcher;
  readonly #metrics: Metrics | undefined;
  /** Told when an item's value changes to other bytes (fetched, or from the fleet): clients waiting for a change (SPEC 5.8). */
  onChange: ((path: string, stored: Stored) => void) | undefined;

  constructor(options: ResolverOptions) {
    this.#items = options.items;
    this.#store = options.store;
    this.#log = options.log;
    this.#clock = options.clock ?? systemClock;
    this.#fetcher = options.fetcher ?? fetchItem;
    this.#metrics = options.metrics;
    for (const path of this.#items.keys()) this.#entries.set(path, newEntry());
  }

  /**
   * A stored value, at start or from the fleet (already in the store): served from now on if
   * newer than the one held; one of an item not configured here is left out.
   */
  take(path: string, stored: Stored): void {
    const entry = this.#entries.get(path);
    if (entry && (!entry.stored || entry.stored.fetchedAt < stored.fetchedAt)) this.#keep(path, entry, stored);
  }

  /** The configured item paths. */
  paths(): IterableIterator<string> {
    return this.#items.keys();
  }

  item(path: string): Item | undefined {
    return this.#items.get(path);
  }

  stored(path: string): Stored | undefined {
    return this.#entries.get(path)?.stored;
  }

  /** The state of every item for /metrics. */
  states(): ItemState[] {
    const now = this.#clock.now();
    return [...this.#entries].map(([path, e]) => ({ path, ageSeconds: e.stored ? Math.max(0, (now - e.stored.fetchedAt) / 1000) : null, failing: e.failures > 0 }));
  }

  /**
   * The answer when it needs no waiting, without a promise: the hot path of the daemon (a hit,
   * a stale value, a 503 in a backoff window). Undefined when the request must wait for a fetch.
   */
  peek(path: string): Outcome | undefined {
    const item = this.#items.get(path);
    const entry = this.#entries.get(path);
    if (!item || !entry) return undefined;
    const decision = decide(item.policy, this.#state(entry), this.#clock.now());
    return decision.answer === "wait" ? undefined : this.#answer(item, entry, decision);
  }

  /**
   * The answer from memory now, asking nothing of the upstream, for clients waiting for a
   * change (SPEC 5.8), whose refreshes are the watch's: where a GET would wait for a fetch, the
   * held value as a hit; undefined when nothing is held, or only a value older than `max_stale`
   * or one a failure outside `stale_on` withholds (a 304 would tell the client to keep it: a GET
   * must resolve it).
   */
  inMemory(path: string): Outcome | undefined {
    const item = this.#items.get(path);
    const entry = this.#entries.get(path);
    if (!item || !entry?.stored) return undefined;
    const now = this.#clock.now();
    const decision = decide(item.policy, this.#state(entry), now);
    if (decision.answer === "wait") return mayStandIn(item.policy, entry, entry.stored.fetchedAt, now) ? this.#hit(item, entry.stored) : undefined;
    return this.#answer(item, entry, decision.answer === "stale" ? { answer: "stale", detail: decision.detail } : decision);
  }

  async resolve(path: string): Promise<Outcome> {
    const item = this.#items.get(path);
    const entry = this.#entries.get(path);
    if (!item || !entry) throw new Error(`resolve() of an unconfigured path ${path}`);
    const decision = decide(item.policy, this.#state(entry), this.#clock.now());
    if (decision.answer !== "wait") return this.#answer(item, entry, decision);
    const collapsed = decision.fetch === "join";
    const early = entry.stored;
    const pending = entry.inflight ?? this.#start(item, entry);
    const result = decision.staleAfter === null ? await pending : await this.#within(pending, decision.staleAfter);
    // Not settled yet: the stored value now; the fetch goes on and stores what it gets.
    if (!result) return this.#stale(item, early!, "stale-after", collapsed);
    if (result.kind === "held") return this.#hit(item, result.stored);
    if (result.kind === "fresh") {
      const { stored, replaced, written, ms, revalidated } = result;
      return { kind: "fresh", ...valueOf(stored), collapsed, replaced, stored: written, upstreamMs: ms, revalidated };
    }
    return this.#answer(item, entry, decide(item.policy, this.#state(entry), this.#clock.now(), result.failure), { collapsed, ms: result.ms });
  }

  /** A refresh of the item: a fetch now, unless one is in flight or a backoff window is open. */
  refresh(path: string): void {
    const item = this.#items.get(path);
    const entry = this.#entries.get(path);
    if (item && entry && !entry.inflight && !leftAlone(item.policy, entry, this.#clock.now())) void this.#start(item, entry);
  }

  /**
   * Takes a new set of items (a reload): an item that stays keeps its value in memory and its
   * backoff; a new one gets its stored value from the store; fetches in flight finish under
   * the configuration they started with.
   */
  async reconfigure(items: ReadonlyMap<string, Item>): Promise<void> {
    const entries = new Map<string, Entry>();
    for (const path of items.keys()) {
      let entry = this.#entries.get(path) ?? this.#leaving.get(path);
      this.#leaving.delete(path);
      if (!entry) {
        entry = newEntry();
        const stored = await this.#store.get(path);
        if (stored) entry.stored = stored;
      }
      entries.set(path, entry);
    }
    for (const [path, entry] of this.#entries) {
      if (entries.has(path) || !entry.inflight) continue;
      this.#leaving.set(path, entry);
      void entry.inflight.finally(() => {
        if (this.#leaving.get(path) === entry) this.#leaving.delete(path);
      });
    }
    this.#items = items;
    this.#entries = entries;
  }

  /** Waits for the fetches in flight (each bounded by its deadline), so the store can close. */
  async stop(): Promise<void> {
    await Promise.allSettled([...this.#entries.values(), ...this.#leaving.values()].map((e) => e.inflight));
  }

  #state(entry: Entry): State {
    const { failures, retryAt, lastFailure, upstreamFailure } = entry;
    return { storedAt: entry.stored?.fetchedAt, failures, retryAt, lastFailure, upstreamFailure, fetching: entry.inflight !== undefined };
  }

  /**
   * The Outcome of a decision that needs no waiting; a fetch it asks for starts in the
   * background. `waited`: the request waited for the fetch that failed (`collapsed` when it joined it).
   */
  #answer(item: Item, entry: Entry, decision: Answer, waited?: { collapsed: boolean; ms: number }): Outcome {
    if (decision.answer === "hit") return this.#hit(item, entry.stored!);
    const upstream = waited ? { upstreamMs: waited.ms } : {};
    if (decision.answer === "unavailable") {
      const { answer, ...why } = decision;
      return { kind: "unavailable", ...why, collapsed: waited?.collapsed ?? false, ...upstream };
    }
    if (decision.fetch === "start") void this.#start(item, entry, true);
    return { ...this.#stale(item, entry.stored!, decision.detail, waited?.collapsed ?? decision.fetch === "join"), ...upstream };
  }

  /** The value the item is answered with from now on. */
  #keep(path: string, entry: Entry, stored: Stored): void {
    const before = entry.stored;
    entry.stored = stored;
    if (!sameBytes(before, stored)) this.onChange?.(path, stored);
  }

  #hit(item: Item, stored: Stored): Outcome {
    return { kind: "hit", ...valueOf(stored), ttl: item.policy.ttl };
  }

  #stale(item: Item, stored: Stored, detail: string, collapsed: boolean): Outcome {
    return { kind: "stale", ...valueOf(stored), detail, collapsed, ttl: item.policy.ttl };
  }

  /** What `pending` settles to within `ms`, else undefined. */
  async #within<T>(pending: Promise<T>, ms: number): Promise<T | undefined> {
    const timer = this.#clock.timer(ms);
    try {
      return await Promise.race([pending, timer.done.then(() => undefined)]);
    } finally {
      timer.cancel();
    }
  }

  /**
   * Starts the one fetch of an item. `inBackground`: for a request that is answered without
   * it, the fetch begins on the next turn of the event loop, after the answer is written (a
   * first fetch sets up Bun's HTTP client, which takes milliseconds); it counts as in flight
   * at once, so no second one starts meanwhile.
   */
  #start(item: Item, entry: Entry, inBackground = false): Promise<Result> {
    const begun = inBackground ? new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.#fetch(item, entry)) : this.#fetch(item, entry);
    const pending = begun.finally(() => {
      if (entry.inflight === pending) entry.inflight = undefined;
    });
    entry.inflight = pending;
    return pending;
  }

  /** One fetch, through the store when it takes part in fetches (a fleet), else from the upstream alone. */
  async #fetch(item: Item, entry: Entry): Promise<Result> {
    const started = this.#clock.now();
    const upstream = () => this.#fromUpstream(item, entry, started);
    try {
      return await (this.#store.share ? this.#store.share(item, upstream) : upstream());
    } catch (error) {
      return { kind: "failed", failure: asFailure(error), ms: this.#clock.now() - started };
    }
  }

  /**
   * Asks the upstream within the deadline, and stores what it gives before returning it: a
   * value, or the value held (the one whose validators were sent) with a new fetch time when the
   * upstream answered 304. A failure is counted, logged and thrown.
   */
  async #fromUpstream(item: Item, entry: Entry, started: number): Promise<Fresh> {
    const held = entry.stored;
    let upstream: Upstream;
    try {
      const got = await this.#within(this.#fetcher(item, started, held?.validators), item.policy.timeout + DEADLINE_GRACE);
      if (got === undefined) throw new UpstreamFailure("timeout", `the fetch did not settle within ${item.policy.timeout} ms`);
      upstream = got;
      // Only a fetch that sent validators is answered so: the value held is what they validate.
      if (upstream.kind === "not-modified" && !held) throw new UpstreamFailure("status", "the upstream answered 304 to an unconditional request", 304);
    } catch (error) {
      throw this.#failed(item, entry, asFailure(error), started);
    }
    const now = this.#clock.now();
    const revalidated = upstream.kind === "not-modified";
    const stored = upstream.kind === "not-modified" ? { ...held!, fetchedAt: now, validators: upstream.validators } : storedOf(upstream.value, now, upstream.validators);
    const replaced = entry.stored !== undefined;
    let written = true;
    try {
      await (revalidated ? this.#store.renew(item.path, stored) : this.#store.put(item.path, stored));
    } catch (error) {
      written = false;
      // The value is good and is served; the store keeps the previous one until a write works.
      this.#log.error("could not write a fetched value to the store", { item: item.path, cause: messageOf(error) });
    }
    if (entry.failures > 0) this.#log.info("upstream recovered", { item: item.path, after_failures: entry.failures });
    Object.assign(entry, { failures: 0, retryAt: 0, lastFailure: undefined, upstreamFailure: undefined });
    this.#keep(item.path, entry, stored);
    if (revalidated) this.#metrics?.notModified(item.path);
    this.#metrics?.fetched(item.path, "ok", (now - started) / 1000);
    return { kind: "fresh", stored, replaced, written, ms: now - started, revalidated };
  }

  /** The bookkeeping of a failed fetch: the backoff window, the metrics and the one log line. */
  #failed(item: Item, entry: Entry, failure: UpstreamFailure, started: number): UpstreamFailure {
    const now = this.#clock.now();
    entry.failures++;
    entry.lastFailure = failure.detail;
    if (!saysNothing(failure.detail)) entry.upstreamFailure = failure.detail;
    entry.retryAt = backoffEnd(item.policy, entry.failures, now);
    this.#metrics?.fetched(item.path, failure.detail, (now - started) / 1000);
    // Once per fetch, however many requests shared it; never the body or a secret.
    this.#log.warn("upstream failure", {
      item: item.path,
      failure: failure.kind,
      status: failure.status,
      upstream_ms: now - started,
      failures: entry.failures,
      retry_in_ms: entry.retryAt > now ? entry.retryAt - now : undefined,
      reason: failure.message,
    });
    return failure;
  }
}
