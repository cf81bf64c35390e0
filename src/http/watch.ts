/**
 * Clients waiting for a value to change (SPEC 5.8, the long poll): each waits until the item's
 * value no longer matches its `If-None-Match`, its own wait ends, or the daemon releases it (a
 * reload, a stop). While anyone waits for an item, a scheduler refreshes it through the
 * resolver, which fetches once whatever the number of waiters and never in a backoff window.
 *
 * Waiters hear of a change from `Resolver.onChange`, the moment the new value is stored: one
 * description of it for all of them, then one answer each.
 */
import type { ValueOutcome } from "./answer";
import { etagOf } from "./answer";
import type { Clock, Resolver, Timer } from "../resolver";

/** How often a watched item with neither `refresh` nor `ttl` is refreshed (SPEC 5.8). */
export const WATCH_INTERVAL = 30_000;

/**
 * How a wait ended: `changed`, the client gets the new value (200); `unchanged` (its wait
 * ended, or the daemon released it), a 304 described by `outcome`; `gone`, the client left.
 */
export type Ended = { kind: "changed" | "unchanged"; outcome: ValueOutcome } | { kind: "gone" };

/** A waiting client: what it holds (`outcome`, the value it matches now) and how its wait ends. */
type Waiter = { matches: (etag: string) => boolean; outcome: ValueOutcome; end: (ended: Ended) => void };
/** An item somebody waits for: its waiters, and the refresh scheduler's next timer. */
type Watched = { waiters: Set<Waiter>; timer?: Timer };

/** What the waiters need of the resolver: to hear of changes, to read a value without waiting, and to refresh it. */
export type WatchedResolver = Pick<Resolver, "item" | "inMemory" | "stored" | "refresh" | "onChange">;

export class Watch {
  readonly #items = new Map<string, Watched>();
  readonly #resolver: WatchedResolver;
  readonly #clock: Pick<Clock, "now" | "timer">;
  #closed = false;
  #releases = 0;

  /** Takes the resolver's onChange: there is one listener of changes, this one. */
  constructor(resolver: WatchedResolver, clock: Pick<Clock, "now" | "timer">) {
    this.#resolver = resolver;
    this.#clock = clock;
    resolver.onChange = (path) => this.#changed(path);
  }

  /**
   * How many times the waiters were released so far: a request let in before a release (under
   * the configuration a reload replaced) does not wait after it.
   */
  get releases(): number {
    return this.#releases;
  }

  /** How many clients wait for `path` now (`cachish_waiting_clients`). */
  waiting(path: string): number {
    return this.#items.get(path)?.waiters.size ?? 0;
  }

  /**
   * Waits `ms` at most for `path`'s value to stop matching `matches`; `outcome` is the value it
   * matches now, `since` the count of releases when the request was let in. `signal` aborts
   * when the client goes: its waiter and timer go with it. Once the daemon stops, nobody
   * waits: the answer is at once.
   */
  wait(path: string, outcome: ValueOutcome, matches: (etag: string) => boolean, ms: number, since: number, signal: AbortSignal): Promise<Ended> {
    if (signal.aborted) return Promise.resolve({ kind: "gone" });
    if (this.#closed || since !== this.#releases) return Promise.resolve({ kind: "unchanged", outcome });
    let watched = this.#items.get(path);
    if (!watched) {
      watched = { waiters: new Set() };
      this.#items.set(path, watched);
      this.#schedule(path, watched);
    }
    const { waiters } = watched;
    return new Promise<Ended>((resolve) => {
      const timer = this.#clock.timer(ms);
      const gone = () => waiter.end({ kind: "gone" });
      const waiter: Waiter = {
        matches,
        outcome,
        // Once: a timer and a release may both come for it.
        end: (ended) => {
          if (!waiters.delete(waiter)) return;
          timer.cancel();
          signal.removeEventListener("abort", gone);
          if (waiters.size === 0) this.#unwatch(path, watched);
          resolve(ended);
        },
      };
      waiters.add(waiter);
      signal.addEventListener("abort", gone, { once: true });
      void timer.done.then(() => waiter.end({ kind: "unchanged", outcome: this.current(path) ?? waiter.outcome }));
    });
  }

  /** Every waiter answered 304 now (a reload: each asks again under the new configuration). */
  release(): void {
    this.#releases++;
    for (const [path, { waiters }] of this.#items) {
      for (const waiter of [...waiters]) waiter.end({ kind: "unchanged", outcome: this.current(path) ?? waiter.outcome });
    }
  }

  /** Release, and wait no more (the daemon stops: it must not wait for anyone's N seconds). */
  close(): void {
    this.#closed = true;
    this.release();
  }

  /** A new value of other bytes, just stored: answered at once to the waiters it no longer matches. */
  #changed(path: string): void {
    const watched = this.#items.get(path);
    if (!watched) return;
    const outcome = this.current(path);
    if (!outcome) return;
    const etag = etagOf(outcome.sha256);
    for (const waiter of [...watched.waiters]) {
      if (waiter.matches(etag)) waiter.outcome = outcome;
      else waiter.end({ kind: "changed", outcome });
    }
  }

  /** The value as the resolver answers it from memory now, starting no fetch; undefined when none is servable. */
  current(path: string): ValueOutcome | undefined {
    const held = this.#resolver.inMemory(path);
    return held?.kind === "unavailable" ? undefined : held;
  }

  /**
   * While `path` is watched, it is refreshed at its `refresh` interval (the refresh scheduler
   * does that already), else its `ttl`, else every 30 s, counted from the stored value's fetch:
   * a value another request fetched meanwhile puts the next refresh off.
   */
  #schedule(path: string, watched: Watched): void {
    const policy = this.#resolver.item(path)?.policy;
    if (!policy || policy.refresh !== null) return;
    const interval = policy.ttl > 0 ? policy.ttl : WATCH_INTERVAL;
    const tick = () => {
      if (this.#items.get(path) !== watched) return;
      const stored = this.#resolver.stored(path);
      let due = stored ? stored.fetchedAt + interval - this.#clock.now() : 0;
      if (due <= 0) {
        this.#resolver.refresh(path);
        due = interval;
      }
      const timer = this.#clock.timer(due);
      watched.timer = timer;
      void timer.done.then(tick);
    };
    tick();
  }

  #unwatch(path: string, watched: Watched): void {
    watched.timer?.cancel();
    if (this.#items.get(path) === watched) this.#items.delete(path);
  }
}
