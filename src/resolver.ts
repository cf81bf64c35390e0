/**
 * The one path a value takes, for the daemon and for `cachish get --config` alike (SPEC 5.3):
 *
 * - within `ttl`, the value in memory, without asking the upstream;
 * - after a failure, the upstream is left alone for a backoff window (1 s, doubling up to
 *   `max_backoff`): requests get the stored value at once, and when the window has passed the
 *   retry runs in the background while they still do. No client waits on a failing upstream
 *   more than once per outage;
 * - otherwise one fetch per item at a time, shared by every request that arrives meanwhile
 *   (`collapsed`), written to the store before it is answered; with `stale_after`, a request
 *   that has waited that long gets the stored value and the fetch goes on;
 * - a failed fetch answers with the stored value unless it is older than `max_stale`.
 *
 * It returns an Outcome and knows nothing of HTTP. Time comes from an injected clock, so that
 * every policy is tested without sleeping. Memory serves, SQLite keeps: stored values are read
 * into memory at start, so a hit never touches the disk.
 */
import { fetchItem } from "./backends";
import { asFailure, UpstreamFailure } from "./backends/failure";
import type { Item } from "./config/types";
import { messageOf } from "./error-text";
import { isJson } from "./json";
import type { Logger } from "./log";
import type { ItemState, Metrics } from "./metrics";
import type { SharedTier } from "./store/shared";
import type { Store, Stored } from "./store/store";

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

export type Outcome =
  /**
   * Fetched for this request, or for one it joined (`collapsed`). `replaced`: a value was
   * stored before; `stored`: this one was written to the store (false when the write failed).
   */
  | { kind: "fresh"; value: Uint8Array; fetchedAt: number; collapsed: boolean; replaced: boolean; stored: boolean; upstreamMs: number }
  /** From memory, younger than `ttl`: the upstream was not asked. */
  | { kind: "hit"; value: Uint8Array; fetchedAt: number; ttl: number }
  /**
   * The stored value, because the upstream failed (`detail` is the failure's kind), is in its
   * backoff window (`backoff`), or had not answered after `stale_after` (`stale-after`).
   */
  | { kind: "stale"; value: Uint8Array; fetchedAt: number; detail: string; collapsed: boolean; ttl: number; upstreamMs?: number }
  /** No usable value: the upstream failed, or is in its backoff window, and nothing servable is stored. */
  | { kind: "unavailable"; detail: string; status?: number; collapsed: boolean; upstreamMs?: number; retryAfter?: number };

type StaleOutcome = Extract<Outcome, { kind: "stale" }>;

/** `fromFleet`: the value came from the shared tier, not from the upstream. */
type FetchResult = { ok: true; stored: Stored; replaced: boolean; written: boolean; ms: number; fromFleet?: boolean } | { ok: false; failure: UpstreamFailure; ms: number };

export type Fetcher = (item: Item, now: number) => Promise<Uint8Array>;

type State = {
  stored?: Stored;
  inflight?: Promise<FetchResult>;
  /** Consecutive failed fetches; 0 when the last one succeeded. */
  failures: number;
  /** Until then (ms since the epoch), the upstream is left alone. */
  retryAt: number;
  lastFailure?: UpstreamFailure;
};

/** A fetch that does not settle (a bug, a stuck socket) gives up this long after its timeout. */
const DEADLINE_GRACE = 1000;

export function backoffDelay(failures: number, maxBackoff: number): number {
  return Math.min(1000 * 2 ** Math.min(failures - 1, 30), maxBackoff);
}

export type ResolverOptions = {
  items: ReadonlyMap<string, Item>;
  store: Store;
  log: Logger;
  clock?: Clock;
  fetcher?: Fetcher;
  metrics?: Metrics;
  /** The fleet's tier, when `shared_store` is configured. */
  shared?: SharedTier;
};

export class Resolver {
  #states = new Map<string, State>();
  #items: ReadonlyMap<string, Item>;
  readonly #store: Store;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #fetcher: Fetcher;
  readonly #metrics: Metrics | undefined;
  readonly #shared: SharedTier | undefined;
  /** Requests waiting for a value another host of the fleet is fetching. */
  readonly #fleetWaiters = new Map<string, Set<() => void>>();
  readonly #refreshTimers = new Set<Timer>();
  #stopped = false;
  #refreshing = false;
  /** Bumped when refreshing stops, so that a timer of an older set of items starts nothing. */
  #generation = 0;

  constructor(options: ResolverOptions) {
    this.#items = options.items;
    this.#store = options.store;
    this.#log = options.log;
    this.#clock = options.clock ?? systemClock;
    this.#fetcher = options.fetcher ?? fetchItem;
    this.#metrics = options.metrics;
    this.#shared = options.shared;
    for (const path of this.#items.keys()) this.#states.set(path, { failures: 0, retryAt: 0 });
  }

  /**
   * Takes the stored value of each configured item into memory. The store has already left
   * out what is corrupt (its digests), and 1.x files were parsed when imported: nothing here is
   * parsed again, which cost seconds at each start for a few MB.
   */
  load(stored: ReadonlyMap<string, Stored>): void {
    for (const [path, value] of stored) {
      const state = this.#states.get(path);
      if (state) state.stored = value;
    }
  }

  /** Whether a value from outside (the fleet) is JSON; one that is not is logged. */
  #sound(path: string, stored: Stored): boolean {
    if (isJson(stored.value)) return true;
    this.#log.error("a value of the shared store is not JSON; it is ignored", { item: path });
    return false;
  }

  /** The configured item paths. */
  paths(): IterableIterator<string> {
    return this.#items.keys();
  }

  item(path: string): Item | undefined {
    return this.#items.get(path);
  }

  stored(path: string): Stored | undefined {
    return this.#states.get(path)?.stored;
  }

  /** The state of every item for /metrics. */
  states(): ItemState[] {
    const now = this.#clock.now();
    return [...this.#states].map(([path, s]) => ({ path, ageSeconds: s.stored ? Math.max(0, (now - s.stored.fetchedAt) / 1000) : null, failing: s.failures > 0 }));
  }

  /**
   * The answer when it needs no waiting, without a promise: the hot path of the daemon. A hit
   * within `ttl`; while the upstream is failing, the stored value (or a 503) at once, the retry
   * running in the background when the window has passed; with `stale_after: 0s`, the stored
   * value at once while a fetch runs. Undefined when the upstream must be asked and waited for.
   */
  peek(path: string): Outcome | undefined {
    const item = this.#items.get(path);
    const state = this.#states.get(path);
    if (!item || !state) return undefined;
    const { policy } = item;
    const now = this.#clock.now();
    const stored = state.stored;
    if (stored && this.#fresh(item, stored, now)) return this.#hit(item, stored);
    const failing = policy.max_backoff > 0 && state.failures > 0;
    if (!failing && policy.stale_after !== 0) return undefined;
    const servable = this.#servable(item, state, now);
    if (failing) {
      if (now < state.retryAt) {
        // The window is open: nobody asks the upstream, everybody gets an answer now.
        if (servable) return this.#stale(item, servable, "backoff", false);
        return { kind: "unavailable", detail: "backoff", collapsed: false, retryAfter: this.#retryAfter(state, now) };
      }
      if (servable) {
        // The window has passed: the retry runs in the background, the client does not wait on it.
        if (!state.inflight) void this.#start(item, state, true);
        return this.#stale(item, servable, state.lastFailure?.detail ?? "backoff", false);
      }
    }
    if (policy.stale_after === 0 && servable) {
      const collapsed = state.inflight !== undefined;
      if (!collapsed) void this.#start(item, state, true);
      return this.#stale(item, servable, "stale-after", collapsed);
    }
    return undefined;
  }

  async resolve(path: string): Promise<Outcome> {
    const item = this.#items.get(path);
    const state = this.#states.get(path);
    if (!item || !state) throw new Error(`resolve() of an unconfigured path ${path}`);
    const now = this.peek(path);
    if (now) return now;
    const { policy } = item;

    const collapsed = state.inflight !== undefined;
    const pending = state.inflight ?? this.#start(item, state);
    let result: FetchResult | undefined;
    const early = policy.stale_after !== null ? this.#servable(item, state) : undefined;
    if (early && policy.stale_after !== null) {
      const timer = this.#clock.timer(policy.stale_after);
      result = await Promise.race([pending, timer.done.then(() => undefined)]);
      timer.cancel();
      // Not answered yet: the stored value now; the fetch goes on and stores what it gets.
      if (!result) return this.#stale(item, early, "stale-after", collapsed);
    } else {
      result = await pending;
    }
    if (result.ok && result.fromFleet) {
      return this.#hit(item, result.stored);
    }
    if (result.ok) {
      return { kind: "fresh", value: result.stored.value, fetchedAt: result.stored.fetchedAt, collapsed, replaced: result.replaced, stored: result.written, upstreamMs: result.ms };
    }
    const servable = this.#servable(item, state);
    if (servable) return { ...this.#stale(item, servable, result.failure.detail, collapsed), upstreamMs: result.ms };
    const retryAfter = policy.max_backoff > 0 ? this.#retryAfter(state, this.#clock.now()) : undefined;
    return {
      kind: "unavailable",
      detail: result.failure.detail,
      collapsed,
      upstreamMs: result.ms,
      ...(result.failure.status !== undefined ? { status: result.failure.status } : {}),
      ...(retryAfter ? { retryAfter } : {}),
    };
  }

  /**
   * Takes a new set of items (a reload): an item that stays keeps its value in memory and its
   * backoff; a new one gets its stored value from the store; fetches in flight finish under
   * the configuration they started with. `refresh` restarts with the new intervals.
   */
  async reconfigure(items: ReadonlyMap<string, Item>): Promise<void> {
    const refreshing = this.#refreshing;
    this.#stopRefresh();
    const states = new Map<string, State>();
    for (const path of items.keys()) {
      const kept = this.#states.get(path);
      if (kept) {
        states.set(path, kept);
        continue;
      }
      const state: State = { failures: 0, retryAt: 0 };
      const stored = await this.#store.get(path);
      if (stored) state.stored = stored;
      states.set(path, state);
    }
    this.#items = items;
    this.#states = states;
    if (refreshing) this.startRefresh();
  }

  /** Starts `refresh`: a fetch of each item that has one now, then at its interval (never two at once, never in a backoff window). */
  startRefresh(): void {
    this.#refreshing = true;
    const generation = ++this.#generation;
    for (const [path, item] of this.#items) {
      const interval = item.policy.refresh;
      const state = this.#states.get(path)!;
      if (interval === null) continue;
      const tick = () => {
        if (this.#stopped || generation !== this.#generation) return;
        if (!state.inflight && this.#clock.now() >= state.retryAt) void this.#start(item, state);
        const timer = this.#clock.timer(interval);
        this.#refreshTimers.add(timer);
        void timer.done.then(() => {
          this.#refreshTimers.delete(timer);
          tick();
        });
      };
      tick();
    }
  }

  /** Stops refreshing and waits for the fetches in flight (each bounded by its timeout), so the store can close. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#stopRefresh();
    await Promise.allSettled([...this.#states.values()].map((s) => s.inflight));
  }

  #stopRefresh(): void {
    this.#refreshing = false;
    this.#generation++;
    for (const timer of this.#refreshTimers) timer.cancel();
    this.#refreshTimers.clear();
  }

  #servable(item: Item, state: State, now = this.#clock.now()): Stored | undefined {
    const stored = state.stored;
    if (!stored) return undefined;
    const maxStale = item.policy.max_stale;
    return maxStale === null || now - stored.fetchedAt <= maxStale ? stored : undefined;
  }

  /** Younger than the item's `ttl`: served without asking the upstream. */
  #fresh(item: Item, stored: Stored, now: number): boolean {
    return item.policy.ttl > 0 && now - stored.fetchedAt < item.policy.ttl;
  }

  #hit(item: Item, stored: Stored): Outcome {
    return { kind: "hit", value: stored.value, fetchedAt: stored.fetchedAt, ttl: item.policy.ttl };
  }

  #stale(item: Item, stored: Stored, detail: string, collapsed: boolean): StaleOutcome {
    return { kind: "stale", value: stored.value, fetchedAt: stored.fetchedAt, detail, collapsed, ttl: item.policy.ttl };
  }

  #retryAfter(state: State, now: number): number {
    return Math.max(1, Math.ceil((state.retryAt - now) / 1000));
  }

  /**
   * Starts the one fetch of an item. `inBackground`: for a request that is answered without
   * it, the fetch begins on the next turn of the event loop, after the answer is written (a
   * first fetch sets up Bun's HTTP client, which takes milliseconds); it counts as in flight
   * at once, so no second one starts meanwhile.
   */
  #start(item: Item, state: State, inBackground = false): Promise<FetchResult> {
    const begun = inBackground ? new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.#fetch(item, state)) : this.#fetch(item, state);
    const pending = begun.finally(() => {
      if (state.inflight === pending) state.inflight = undefined;
    });
    state.inflight = pending;
    return pending;
  }

  /** Listens to the fleet: each new value it announces is kept here and locally, if newer. */
  startShared(): void {
    this.#shared?.start((path, stored) => void this.#adopt(path, stored));
  }

  /** Takes a value of the fleet when it is newer than ours: into the local store, then memory. */
  async #adopt(path: string, stored: Stored): Promise<boolean> {
    const state = this.#states.get(path);
    if (!state || (state.stored && state.stored.fetchedAt >= stored.fetchedAt) || !this.#sound(path, stored)) return false;
    try {
      await this.#store.put(path, stored);
    } catch (error) {
      this.#log.error("could not write a value of the fleet to the store", { item: path, cause: messageOf(error) });
    }
    if (!state.stored || state.stored.fetchedAt < stored.fetchedAt) state.stored = stored;
    for (const wake of this.#fleetWaiters.get(path) ?? []) wake();
    return true;
  }

  /** Waits up to `ms` for the fleet to announce a value of `path` newer than `after`. */
  async #awaitFleet(path: string, state: State, after: number, ms: number): Promise<boolean> {
    if ((state.stored?.fetchedAt ?? -1) > after) return true;
    let wake: () => void = () => {};
    const arrived = new Promise<void>((resolve) => (wake = resolve));
    let waiters = this.#fleetWaiters.get(path);
    if (!waiters) this.#fleetWaiters.set(path, (waiters = new Set()));
    waiters.add(wake);
    const timer = this.#clock.timer(ms);
    try {
      await Promise.race([arrived, timer.done]);
    } finally {
      timer.cancel();
      waiters.delete(wake);
    }
    return (state.stored?.fetchedAt ?? -1) > after;
  }

  /**
   * Before asking the upstream, asks the fleet (SPEC 5.7): a value fresher than `ttl` from the
   * database saves the fetch; a lease held by another host means waiting for its value. Both
   * questions go at once, so the database costs at most one `shared_store.timeout`.
   */
  async #askFleet(item: Item, state: State, started: number): Promise<FetchResult | "fetch"> {
    const shared = this.#shared!;
    const before = state.stored?.fetchedAt ?? -1;
    const [remote, lease] = await Promise.all([shared.read(item.path), shared.lease(item.path, item.policy.timeout)]);
    if (remote) await this.#adopt(item.path, remote);
    const fresh = state.stored && this.#fresh(item, state.stored, this.#clock.now());
    const saved = (): FetchResult => {
      this.#metrics?.saved(item.path);
      return { ok: true, stored: state.stored!, replaced: true, written: true, ms: this.#clock.now() - started, fromFleet: true };
    };
    if (fresh) {
      if (lease === "mine") void shared.release(item.path);
      return saved();
    }
    if (lease !== "held") return "fetch";
    const wait = item.policy.stale_after ?? item.policy.timeout;
    if (await this.#awaitFleet(item.path, state, Math.max(before, remote?.fetchedAt ?? -1), wait)) return saved();
    return { ok: false, failure: new UpstreamFailure("lease", `another host is fetching it; its value did not arrive within ${wait} ms`), ms: this.#clock.now() - started };
  }

  async #fetch(item: Item, state: State): Promise<FetchResult> {
    const started = this.#clock.now();
    if (this.#shared) {
      const asked = await this.#askFleet(item, state, started);
      if (asked !== "fetch") return asked;
    }
    let value: Uint8Array;
    const deadline = this.#clock.timer(item.policy.timeout + DEADLINE_GRACE);
    try {
      value = await Promise.race([
        this.#fetcher(item, started),
        deadline.done.then((): never => {
          throw new UpstreamFailure("timeout", `the fetch did not settle within ${item.policy.timeout} ms`);
        }),
      ]);
    } catch (error) {
      const failure = asFailure(error);
      const ms = this.#clock.now() - started;
      state.failures++;
      state.lastFailure = failure;
      if (item.policy.max_backoff > 0) state.retryAt = this.#clock.now() + backoffDelay(state.failures, item.policy.max_backoff);
      this.#metrics?.fetched(item.path, failure.detail, ms / 1000);
      if (this.#shared) void this.#shared.release(item.path);
      // Once per fetch, however many requests shared it; never the body or a secret.
      this.#log.warn("upstream failure", {
        item: item.path,
        failure: failure.kind,
        status: failure.status,
        upstream_ms: ms,
        failures: state.failures,
        retry_in_ms: state.retryAt > this.#clock.now() ? state.retryAt - this.#clock.now() : undefined,
        reason: failure.message,
      });
      return { ok: false, failure, ms };
    } finally {
      deadline.cancel();
    }
    const stored = { value, fetchedAt: this.#clock.now() };
    const replaced = state.stored !== undefined;
    let written = true;
    try {
      await this.#store.put(item.path, stored);
    } catch (error) {
      written = false;
      // The value is good and is served; the store keeps the previous one until a write works.
      this.#log.error("could not write a fetched value to the store", { item: item.path, cause: messageOf(error) });
    }
    state.stored = stored;
    if (state.failures > 0) this.#log.info("upstream recovered", { item: item.path, after_failures: state.failures });
    state.failures = 0;
    state.retryAt = 0;
    state.lastFailure = undefined;
    this.#metrics?.fetched(item.path, "ok", (stored.fetchedAt - started) / 1000);
    // Then the fleet, in the background: the answer does not wait on the database.
    if (this.#shared) void this.#shared.write(item.path, stored).then(() => this.#shared!.release(item.path));
    return { ok: true, stored, replaced, written, ms: stored.fetchedAt - started };
  }
}
