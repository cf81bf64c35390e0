/**
 * The decision of SPEC 5.3 as a table: an item's policy (SPEC's defaults unless the row says
 * otherwise), its state and the time -> what to do. Each rule has a row at its boundaries.
 */
import { describe, expect, test } from "bun:test";
import type { Policy } from "../../src/config/types";
import { backoffEnd, type Decision, decide, type Failure, fresh, leftAlone, type State } from "../../src/policy";

const NOW = 1_700_000_000_000;
/** A time `ms` before now. */
const ago = (ms: number) => NOW - ms;
const DEFAULTS: Policy = { timeout: 5000, ttl: 0, max_stale: null, stale_after: null, max_backoff: 30_000, refresh: null, max_body: 16 * 1024 * 1024, proxy: null };
const NOTHING: State = { storedAt: undefined, failures: 0, retryAt: 0, lastFailure: undefined, fetching: false };
/** A failing upstream: `failures` in a row, the last one `connect`, its window ending `retryAt`. */
const failing = (retryAt: number, failures = 1): Partial<State> => ({ failures, retryAt, lastFailure: "connect" });

type Row = { rule: string; policy?: Partial<Policy>; state?: Partial<State>; failed?: Failure; then: Decision };

const wait = (fetch: "start" | "join", staleAfter: number | null = null): Decision => ({ answer: "wait", fetch, staleAfter });

const rows: Row[] = [
  // ttl
  { rule: "ttl: a value younger than ttl is a hit", policy: { ttl: 10_000 }, state: { storedAt: ago(9_999) }, then: { answer: "hit" } },
  { rule: "ttl: a value exactly ttl old is fetched", policy: { ttl: 10_000 }, state: { storedAt: ago(10_000) }, then: wait("start") },
  { rule: "ttl 0: even a value fetched this millisecond is fetched again", state: { storedAt: NOW }, then: wait("start") },
  { rule: "ttl: a hit even while failing, the window open", policy: { ttl: 10_000 }, state: { storedAt: ago(1), ...failing(NOW + 1000) }, then: { answer: "hit" } },
  { rule: "ttl: a hit even while a fetch is in flight", policy: { ttl: 10_000 }, state: { storedAt: ago(1), fetching: true }, then: { answer: "hit" } },
  { rule: "ttl: a hit even older than max_stale (max_stale only limits what a failure serves)", policy: { ttl: 10_000, max_stale: 1000 }, state: { storedAt: ago(5000) }, then: { answer: "hit" } },

  // one fetch per item
  { rule: "nothing stored: the request starts the fetch and waits", then: wait("start") },
  { rule: "a fetch in flight: the request joins it", state: { fetching: true }, then: wait("join") },

  // stale_after
  { rule: "stale_after: the stored value after that long", policy: { stale_after: 500 }, state: { storedAt: ago(60_000) }, then: wait("start", 500) },
  { rule: "stale_after: joining a fetch in flight, the same", policy: { stale_after: 500 }, state: { storedAt: ago(60_000), fetching: true }, then: wait("join", 500) },
  { rule: "stale_after without a stored value: wait for the fetch", policy: { stale_after: 500 }, then: wait("start") },
  { rule: "stale_after with a value exactly max_stale old: it may be answered", policy: { stale_after: 500, max_stale: 10_000 }, state: { storedAt: ago(10_000) }, then: wait("start", 500) },
  { rule: "stale_after with a value older than max_stale: wait for the fetch", policy: { stale_after: 500, max_stale: 10_000 }, state: { storedAt: ago(10_001) }, then: wait("start") },
  { rule: "no stale_after: wait for the fetch, a value stored or not", state: { storedAt: ago(60_000) }, then: wait("start") },
  { rule: "stale_after 0: the stored value at once, a fetch in the background", policy: { stale_after: 0 }, state: { storedAt: ago(60_000) }, then: { answer: "stale", detail: "stale-after", fetch: "start" } },
  { rule: "stale_after 0: with a fetch in flight, the answer shares it", policy: { stale_after: 0 }, state: { storedAt: ago(60_000), fetching: true }, then: { answer: "stale", detail: "stale-after", fetch: "join" } },
  { rule: "stale_after 0 within ttl: a hit", policy: { stale_after: 0, ttl: 1000 }, state: { storedAt: ago(999) }, then: { answer: "hit" } },
  { rule: "stale_after 0 without a stored value: wait for the fetch", policy: { stale_after: 0 }, then: wait("start") },
  { rule: "stale_after 0 with a value older than max_stale: wait for the fetch", policy: { stale_after: 0, max_stale: 10_000 }, state: { storedAt: ago(10_001) }, then: wait("start") },

  // a failed fetch: the stored value unless older than max_stale
  { rule: "failed: the stored value, with the failure's kind", state: { storedAt: ago(5000) }, failed: { detail: "status-500", status: 500 }, then: { answer: "stale", detail: "status-500" } },
  { rule: "failed: a value exactly max_stale old is served", policy: { max_stale: 3_600_000 }, state: { storedAt: ago(3_600_000) }, failed: { detail: "timeout" }, then: { answer: "stale", detail: "timeout" } },
  { rule: "failed: a value older than max_stale is not", policy: { max_stale: 3_600_000, max_backoff: 0 }, state: { storedAt: ago(3_600_001) }, failed: { detail: "timeout" }, then: { answer: "unavailable", detail: "timeout" } },
  { rule: "failed: no max_stale, any age is served", state: { storedAt: ago(365 * 86_400_000) }, failed: { detail: "connect" }, then: { answer: "stale", detail: "connect" } },
  { rule: "failed, nothing stored: 503 with the status, Retry-After for the window", state: failing(NOW + 1000), failed: { detail: "status-503", status: 503 }, then: { answer: "unavailable", detail: "status-503", status: 503, retryAfter: 1 } },
  { rule: "failed, nothing stored, max_backoff 0: 503 without Retry-After", policy: { max_backoff: 0 }, state: { failures: 1 }, failed: { detail: "connect" }, then: { answer: "unavailable", detail: "connect" } },
  { rule: "failed without a window (another host's lease): 503 without Retry-After", failed: { detail: "lease" }, then: { answer: "unavailable", detail: "lease" } },

  // backoff
  { rule: "backoff: in the window, the stored value at once and no fetch", state: { storedAt: ago(5000), ...failing(NOW + 1) }, then: { answer: "stale", detail: "backoff" } },
  { rule: "backoff: in the window, nothing stored: 503, Retry-After at least 1", state: failing(NOW + 1), then: { answer: "unavailable", detail: "backoff", retryAfter: 1 } },
  { rule: "backoff: Retry-After rounds up to whole seconds", state: failing(NOW + 1500, 2), then: { answer: "unavailable", detail: "backoff", retryAfter: 2 } },
  { rule: "backoff: in the window, a value older than max_stale is not served", policy: { max_stale: 10_000 }, state: { storedAt: ago(10_001), ...failing(NOW + 1000) }, then: { answer: "unavailable", detail: "backoff", retryAfter: 1 } },
  { rule: "backoff: in the window even with stale_after 0", policy: { stale_after: 0 }, state: { storedAt: ago(5000), ...failing(NOW + 1000) }, then: { answer: "stale", detail: "backoff" } },
  { rule: "backoff: the window ends at retryAt: the retry in the background, the failure's kind", state: { storedAt: ago(5000), ...failing(NOW) }, then: { answer: "stale", detail: "connect", fetch: "start" } },
  { rule: "backoff: window passed, the retry in flight: no second one", state: { storedAt: ago(5000), ...failing(ago(1)), fetching: true }, then: { answer: "stale", detail: "connect" } },
  { rule: "backoff: window passed, with stale_after 0: still the failure's kind", policy: { stale_after: 0 }, state: { storedAt: ago(5000), ...failing(ago(1)) }, then: { answer: "stale", detail: "connect", fetch: "start" } },
  { rule: "backoff: window passed, nothing stored: wait for the retry", state: failing(ago(1)), then: wait("start") },
  { rule: "backoff: window passed, a value older than max_stale: wait for the retry", policy: { max_stale: 10_000, stale_after: 500 }, state: { storedAt: ago(10_001), ...failing(ago(1)) }, then: wait("start") },
  { rule: "max_backoff 0: every request asks the upstream, as 1.x did", policy: { max_backoff: 0 }, state: { storedAt: ago(5000), ...failing(NOW + 60_000, 5) }, then: wait("start") },
];

describe("decide", () => {
  test.each(rows.map((row) => [row.rule, row] as const))("%s", (_, row) => {
    const [policy, state] = [{ ...DEFAULTS, ...row.policy }, { ...NOTHING, ...row.state }];
    expect(row.failed ? decide(policy, state, NOW, row.failed) : decide(policy, state, NOW)).toStrictEqual(row.then);
  });
});

describe("the rules decide is made of", () => {
  test("backoffEnd: 1 s after the first failure, doubling up to max_backoff; none with max_backoff 0", () => {
    const windows = (max: number) => [1, 2, 3, 4, 5, 40].map((failures) => backoffEnd({ ...DEFAULTS, max_backoff: max }, failures, NOW) - NOW);
    expect(windows(5000)).toEqual([1000, 2000, 4000, 5000, 5000, 5000]);
    expect(windows(3_600_000)).toEqual([1000, 2000, 4000, 8000, 16_000, 3_600_000]);
    expect(backoffEnd({ ...DEFAULTS, max_backoff: 0 }, 3, NOW)).toBe(0);
  });

  test("leftAlone: until the window's end, not at it; never with max_backoff 0", () => {
    expect(leftAlone(DEFAULTS, { failures: 1, retryAt: NOW + 1 }, NOW)).toBe(true);
    expect(leftAlone(DEFAULTS, { failures: 1, retryAt: NOW }, NOW)).toBe(false);
    expect(leftAlone(DEFAULTS, { failures: 0, retryAt: NOW + 1 }, NOW)).toBe(false);
    expect(leftAlone({ ...DEFAULTS, max_backoff: 0 }, { failures: 1, retryAt: NOW + 1 }, NOW)).toBe(false);
  });

  test("fresh: younger than ttl, never with ttl 0", () => {
    expect(fresh({ ...DEFAULTS, ttl: 1000 }, ago(999), NOW)).toBe(true);
    expect(fresh({ ...DEFAULTS, ttl: 1000 }, ago(1000), NOW)).toBe(false);
    expect(fresh(DEFAULTS, NOW + 5000, NOW)).toBe(false);
  });
});
