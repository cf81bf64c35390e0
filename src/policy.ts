/**
 * What to do with a request for an item (SPEC 5.3), decided from the item's policy, its state
 * and the time alone: no I/O, no clock, so that every rule is read here once and tested as a
 * table (test/unit/policy.test.ts). The resolver carries the decision out.
 */
import type { Policy } from "./config/types";
import { covers } from "./stale-on";

/** What is known of an item when a request for it comes. */
export type State = {
  /** When the stored value was fetched (ms since the epoch); undefined when nothing is stored. */
  storedAt: number | undefined;
  /** Consecutive failed fetches; 0 after a success. */
  failures: number;
  /** The end of the backoff window (ms since the epoch): until then the upstream is left alone. */
  retryAt: number;
  /** The last failure's kind as `Cache-Status` names it (`connect`, `status-503`), while failing. */
  lastFailure: string | undefined;
  /**
   * The last failure the upstream itself gave since its last success (not one that
   * `saysNothing`), as `lastFailure` names it: what `stale_on` judges the stored value by.
   */
  upstreamFailure: string | undefined;
  /** A fetch of the item is in flight. */
  fetching: boolean;
};

/** The failure of the fetch a request waited for. */
export type Failure = { detail: string; status?: number };

export type Decision =
  /** Younger than `ttl`: answered from memory, the upstream not asked. */
  | { answer: "hit" }
  /**
   * The stored value now, and why (`detail`: `backoff`, a failure's kind, `stale-after`).
   * `fetch`: "start" one in the background; "join" the one in flight, which this request would
   * have started (the answer is `collapsed`); absent, leave the upstream alone.
   */
  | { answer: "stale"; detail: string; fetch?: "start" | "join" }
  /** Nothing servable: 503, with `retryAfter` (whole seconds) while a backoff window is open. */
  | { answer: "unavailable"; detail: string; status?: number; retryAfter?: number }
  /** Start the fetch, or join the one in flight, and wait for it; after `staleAfter` ms, the stored value. */
  | { answer: "wait"; fetch: "start" | "join"; staleAfter: number | null };

/** A decision that needs no waiting. */
export type Answer = Exclude<Decision, { answer: "wait" }>;

/**
 * The decision for a request that comes `now`; with `failed`, for a request whose fetch has
 * just failed (it waits no more: the stored value, or 503).
 */
export function decide(policy: Policy, state: State, now: number): Decision;
export function decide(policy: Policy, state: State, now: number, failed: Failure): Answer;
export function decide(policy: Policy, state: State, now: number, failed?: Failure): Decision {
  const { storedAt } = state;
  // stale_on: after a failure outside the list the stored value is kept, but not answered in
  // the upstream's place until a success or a failure inside the list; nor as a hit within
  // ttl: the upstream has since said the credential or the secret is gone (a refresh's 403),
  // and revocation beats freshness. (A failure has been counted in `state` before a request
  // that waited for it is decided.)
  const refused = refusedBy(policy, state.upstreamFailure);
  const servable = storedAt !== undefined && withinMaxStale(policy, storedAt, now) && refused === undefined;
  // A failed fetch: the stored value, else 503.
  if (failed) return servable ? { answer: "stale", detail: failed.detail } : unavailable(failed.detail, state, now, failed.status);
  // ttl: a younger value is answered without asking the upstream.
  if (storedAt !== undefined && refused === undefined && fresh(policy, storedAt, now)) return HIT;
  // max_backoff: in the window nobody asks the upstream, everybody is answered now.
  if (leftAlone(policy, state, now)) return servable ? { answer: "stale", detail: "backoff" } : unavailable(refused ?? "backoff", state, now);
  // After the window, the retry runs in the background while the stored value is answered.
  if (policy.max_backoff > 0 && state.failures > 0 && servable) return { answer: "stale", detail: state.lastFailure ?? "backoff", ...(state.fetching ? {} : { fetch: "start" }) };
  // One fetch per item: a request joins the one in flight.
  const fetch = state.fetching ? "join" : "start";
  // stale_after 0 (stale-while-revalidate): the stored value now, the fetch in the background.
  if (policy.stale_after === 0 && servable) return { answer: "stale", detail: "stale-after", fetch };
  // Else the request waits for the fetch; with stale_after, for that long at most if a value is servable.
  return { answer: "wait", fetch, staleAfter: servable ? policy.stale_after : null };
}

const HIT: Answer = { answer: "hit" };

/**
 * Failures that come from us, not from the upstream, and so say nothing of whether the value
 * was revoked: another host of the fleet is fetching (`lease`), a bug of ours (`internal`).
 * `stale_on` does not judge them: they leave the upstream's last verdict as it was.
 */
export const saysNothing = (detail: string): boolean => detail === "lease" || detail === "internal";

/** The upstream's failure that `stale_on` refuses to answer stale, if `failure` is one. */
function refusedBy(policy: Policy, failure: string | undefined): string | undefined {
  return failure !== undefined && !covers(policy.stale_on, failure) ? failure : undefined;
}

/** A value fetched at `storedAt` may stand in for the upstream's answer now (after a failure, or as a long poll's 304). */
export function mayStandIn(policy: Policy, state: Pick<State, "upstreamFailure">, storedAt: number, now: number): boolean {
  return withinMaxStale(policy, storedAt, now) && refusedBy(policy, state.upstreamFailure) === undefined;
}

function unavailable(detail: string, state: State, now: number, status?: number): Answer {
  const retryAfter = state.retryAt > now ? Math.max(1, Math.ceil((state.retryAt - now) / 1000)) : undefined;
  return { answer: "unavailable", detail, ...(status !== undefined ? { status } : {}), ...(retryAfter !== undefined ? { retryAfter } : {}) };
}

/** max_stale: a value fetched at `storedAt` may stand in for the upstream's answer (after a failure, or as a long poll's 304). */
export function withinMaxStale(policy: Policy, storedAt: number, now: number): boolean {
  return policy.max_stale === null || now - storedAt <= policy.max_stale;
}

/** A value fetched at `storedAt` is younger than `ttl`: served without asking the upstream. */
export function fresh(policy: Policy, storedAt: number, now: number): boolean {
  return policy.ttl > 0 && now - storedAt < policy.ttl;
}

/** A backoff window is open: the upstream is not asked, by a request or a refresh. */
export function leftAlone(policy: Policy, state: Pick<State, "failures" | "retryAt">, now: number): boolean {
  return policy.max_backoff > 0 && state.failures > 0 && now < state.retryAt;
}

/** The end of the backoff window after the `failures`-th failure in a row: 1 s, doubling up to `max_backoff`. */
export function backoffEnd(policy: Policy, failures: number, now: number): number {
  return policy.max_backoff > 0 ? now + Math.min(1000 * 2 ** Math.min(failures - 1, 30), policy.max_backoff) : 0;
}
