/**
 * The decision of SPEC 5.3 as a table: an item's policy (SPEC's defaults unless the row says
 * otherwise), its state and the time -> what to do. Each rule has a row at its boundaries.
 */
import { describe, expect, test } from "bun:test";
import type { Policy } from "../../src/config/types";
import { backoffEnd, type Decision, decide, type Failure, fresh, leftAlone, mayStandIn, type State } from "../../src/policy";
import { covers, staleKindProblem } from "../../src/stale-on";

const NOW = 1_700_000_000_000;
/** A time `ms` before now. */
const ago = (ms: number) => NOW - ms;
const DEFAULTS: Policy = { timeout: 5000, ttl: 0, max_stale: null, stale_after: null, stale_on: ["any"], max_backoff: 30_000, refresh: null, max_body: 16 * 1024 * 1024, proxy: null };
const NOTHING: State = { storedAt: undefined, failures: 0, retryAt: 0, lastFailure: undefined, upstreamFailure: undefined, fetching: false };
/** A failing upstream: `failures` in a row, the last one `connect`, its window ending `retryAt`. */
const failing = (retryAt: number, failures = 1): Partial<State> => ({ failures, retryAt, lastFailure: "connect" });

/** The setting advised for secrets. */
const SECRETS: Partial<Policy> = { stale_on: ["connect", "timeout", "status-5xx"] };
/** The failure as the fetch a request waited for reports it. */
const failure = (detail: string): Failure => (detail.startsWith("status-") ? { detail, status: Number(detail.slice(7)) } : { detail });
/** The state after the upstream's `failures`-th failure in a row, the last one `detail`, its window open for 1 s. */
const verdict = (detail: string, failures = 1): Partial<State> => ({ failures, retryAt: NOW + 1000, lastFailure: detail, upstreamFailure: detail });

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

  // stale_on: the kinds listed are answered stale; any other failure 503, the value kept for later
  ...(["connect", "timeout", "status-500", "status-503", "status-599"] as const).map((detail): Row => ({
    rule: `stale_on [connect, timeout, status-5xx]: ${detail} is answered stale`,
    policy: SECRETS, state: { storedAt: ago(5000), ...verdict(detail) }, failed: failure(detail), then: { answer: "stale", detail },
  })),
  ...(["status-401", "status-403", "status-404", "status-499", "status-304", "invalid-json", "too-large", "missing-field", "command"] as const).map((detail): Row => ({
    rule: `stale_on [connect, timeout, status-5xx]: ${detail} answers 503, with the window's Retry-After`,
    policy: SECRETS, state: { storedAt: ago(5000), ...verdict(detail) }, failed: failure(detail), then: { answer: "unavailable", ...failure(detail), retryAfter: 1 },
  })),
  { rule: "stale_on [any] (the default): a 403 is answered stale, as 1.x", state: { storedAt: ago(5000), ...verdict("status-403") }, failed: failure("status-403"), then: { answer: "stale", detail: "status-403" } },
  { rule: "stale_on [status-503]: that status is answered stale", policy: { stale_on: ["status-503"] }, state: { storedAt: ago(5000), ...verdict("status-503") }, failed: failure("status-503"), then: { answer: "stale", detail: "status-503" } },
  { rule: "stale_on [status-503]: another 5xx is not", policy: { stale_on: ["status-503"] }, state: { storedAt: ago(5000), ...verdict("status-502") }, failed: failure("status-502"), then: { answer: "unavailable", ...failure("status-502"), retryAfter: 1 } },
  { rule: "stale_on [status-4xx]: a 404 is answered stale, a 500 is not", policy: { stale_on: ["status-4xx"] }, state: { storedAt: ago(5000), ...verdict("status-404") }, failed: failure("status-404"), then: { answer: "stale", detail: "status-404" } },
  { rule: "stale_on [status-4xx]: a 500 answers 503", policy: { stale_on: ["status-4xx"] }, state: { storedAt: ago(5000), ...verdict("status-500") }, failed: failure("status-500"), then: { answer: "unavailable", ...failure("status-500"), retryAfter: 1 } },
  { rule: "stale_on []: never stale, not even a refused connection", policy: { stale_on: [] }, state: { storedAt: ago(5000), ...verdict("connect") }, failed: failure("connect"), then: { answer: "unavailable", detail: "connect", retryAfter: 1 } },
  { rule: "stale_on refused, max_backoff 0: 503 without Retry-After", policy: { ...SECRETS, max_backoff: 0 }, state: { storedAt: ago(5000), failures: 1, lastFailure: "status-403", upstreamFailure: "status-403" }, failed: failure("status-403"), then: { answer: "unavailable", ...failure("status-403") } },
  { rule: "stale_on allowed, but older than max_stale: 503 all the same", policy: { ...SECRETS, max_stale: 1000 }, state: { storedAt: ago(1001), ...verdict("connect") }, failed: failure("connect"), then: { answer: "unavailable", detail: "connect", retryAfter: 1 } },
  { rule: "stale_on: a later allowed failure after a refused one serves again", policy: SECRETS, state: { storedAt: ago(5000), ...verdict("timeout", 2) }, failed: failure("timeout"), then: { answer: "stale", detail: "timeout" } },
  // lease and internal are ours, not the upstream's: they leave its last verdict as it was
  { rule: "lease, no verdict of the upstream: stale whatever stale_on says", policy: { stale_on: [] }, state: { storedAt: ago(5000) }, failed: failure("lease"), then: { answer: "stale", detail: "lease" } },
  { rule: "internal, no verdict of the upstream: stale whatever stale_on says", policy: { stale_on: [] }, state: { storedAt: ago(5000), failures: 1, retryAt: NOW + 1000, lastFailure: "internal" }, failed: failure("internal"), then: { answer: "stale", detail: "internal" } },
  { rule: "lease after an allowed failure: stale", policy: SECRETS, state: { storedAt: ago(5000), ...verdict("connect") }, failed: failure("lease"), then: { answer: "stale", detail: "lease" } },
  { rule: "lease after a refused failure: still 503 (the upstream's 403 stands)", policy: SECRETS, state: { storedAt: ago(5000), ...verdict("status-403"), retryAt: 0 }, failed: failure("lease"), then: { answer: "unavailable", detail: "lease" } },
  { rule: "internal after a refused failure: still 503", policy: SECRETS, state: { storedAt: ago(5000), ...verdict("status-403", 2), lastFailure: "internal" }, failed: failure("internal"), then: { answer: "unavailable", detail: "internal", retryAfter: 1 } },
  // the backoff window and the retry after it follow the upstream's last verdict
  { rule: "stale_on: in the window after an allowed failure, the stored value", policy: SECRETS, state: { storedAt: ago(5000), ...verdict("status-502") }, then: { answer: "stale", detail: "backoff" } },
  { rule: "stale_on: in the window after a refused failure, 503 naming it, with Retry-After", policy: SECRETS, state: { storedAt: ago(5000), ...verdict("status-403") }, then: { answer: "unavailable", detail: "status-403", retryAfter: 1 } },
  { rule: "stale_on: in the window after a refused failure then an internal one, 503 naming the refused one", policy: SECRETS, state: { storedAt: ago(5000), ...verdict("status-404", 2), lastFailure: "internal" }, then: { answer: "unavailable", detail: "status-404", retryAfter: 1 } },
  { rule: "stale_on: the window passed after a refused failure, wait for the retry", policy: SECRETS, state: { storedAt: ago(5000), ...verdict("status-403"), retryAt: NOW }, then: wait("start") },
  { rule: "stale_on: the window passed after a refused failure, stale_after does not serve it", policy: { ...SECRETS, stale_after: 500 }, state: { storedAt: ago(5000), ...verdict("status-403"), retryAt: NOW }, then: wait("start") },
  { rule: "stale_on: the window passed after a refused failure, nor does stale_after 0", policy: { ...SECRETS, stale_after: 0 }, state: { storedAt: ago(5000), ...verdict("status-403"), retryAt: NOW, fetching: true }, then: wait("join") },
  { rule: "stale_on: max_backoff 0 after a refused failure, wait for the fetch", policy: { ...SECRETS, max_backoff: 0, stale_after: 500 }, state: { storedAt: ago(5000), ...verdict("status-403") }, then: wait("start") },
  { rule: "stale_on: within ttl, a refused failure (a refresh's 403) ends the hits: 503 in its window", policy: { ...SECRETS, ttl: 10_000 }, state: { storedAt: ago(1), ...verdict("status-403") }, then: { answer: "unavailable", detail: "status-403", retryAfter: 1 } },
  { rule: "stale_on: within ttl, an allowed failure leaves a hit", policy: { ...SECRETS, ttl: 10_000 }, state: { storedAt: ago(1), ...verdict("status-503") }, then: { answer: "hit" } },
  { rule: "stale_on: within ttl, after a refused failure's window, wait for the retry", policy: { ...SECRETS, ttl: 10_000 }, state: { storedAt: ago(1), ...verdict("status-403"), retryAt: NOW }, then: wait("start") },
  { rule: "stale_on: stale_after is no failure, the upstream only slow", policy: { ...SECRETS, stale_after: 500 }, state: { storedAt: ago(5000) }, then: wait("start", 500) },
  { rule: "stale_on: stale_after 0 is no failure either", policy: { ...SECRETS, stale_after: 0 }, state: { storedAt: ago(5000) }, then: { answer: "stale", detail: "stale-after", fetch: "start" } },
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

  test("covers: a class covers its hundred statuses and nothing else; a kind only itself", () => {
    const fives = ["status-5xx"];
    expect(["status-500", "status-503", "status-599"].map((d) => covers(fives, d))).toEqual([true, true, true]);
    expect(["status-499", "status-600", "status-5", "status-5000", "connect"].map((d) => covers(fives, d))).toEqual([false, false, false, false, false]);
    expect(covers(["status-4xx"], "status-404")).toBe(true);
    expect(covers(["status-503"], "status-503")).toBe(true);
    expect(covers(["status-503"], "status-502")).toBe(false);
    expect(covers(["any"], "command")).toBe(true);
    expect(covers([], "connect")).toBe(false);
  });

  test("staleKindProblem: the kinds, status-NNN from 100 to 599, a suggestion for a typo", () => {
    for (const ok of ["any", "connect", "timeout", "status-5xx", "status-4xx", "status-100", "status-599", "invalid-json", "too-large", "missing-field", "command"]) expect(staleKindProblem(ok)).toBeUndefined();
    expect(staleKindProblem("status-600")).toBe("`status-NNN` needs a status from 100 to 599");
    expect(staleKindProblem("status-099")).toBe("`status-NNN` needs a status from 100 to 599");
    expect(staleKindProblem("timout")).toBe("unknown failure kind; did you mean `timeout`?");
    expect(staleKindProblem("status_5XX")).toBe("unknown failure kind; did you mean `status-5xx`?");
    expect(staleKindProblem("revoked")).toBe(
      "unknown failure kind; the kinds are `any`, `connect`, `timeout`, `status-5xx`, `status-4xx`, `invalid-json`, `too-large`, `missing-field`, `command`, `status-NNN`",
    );
  });

  test("mayStandIn: within max_stale and no refused verdict of the upstream", () => {
    const policy = { ...DEFAULTS, ...SECRETS, max_stale: 10_000 };
    expect(mayStandIn(policy, { upstreamFailure: undefined }, ago(10_000), NOW)).toBe(true);
    expect(mayStandIn(policy, { upstreamFailure: "status-503" }, ago(1), NOW)).toBe(true);
    expect(mayStandIn(policy, { upstreamFailure: "status-403" }, ago(1), NOW)).toBe(false);
    expect(mayStandIn(policy, { upstreamFailure: undefined }, ago(10_001), NOW)).toBe(false);
  });
});
