/**
 * Conditional requests and long polls (SPEC 5.8) in-process: the HTTP handler over the real
 * resolver, the real store and the real Watch, on the fake clock; the upstream is a fetcher
 * whose value each test sets. ETags are checked against node:crypto's SHA-256.
 */
import { createHash } from "node:crypto";
import { describe, expect, test } from "bun:test";
import { UpstreamFailure } from "../../src/backends/failure";
import { handler } from "../../src/http/server";
import { Watch } from "../../src/http/watch";
import { createLogger } from "../../src/log";
import { Metrics } from "../../src/metrics";
import { Resolver } from "../../src/resolver";
import { SqliteStore } from "../../src/store/sqlite";
import { FakeClock, settle } from "../support/clock";
import { check, yaml } from "../support/config";
import { tempDir } from "../support/temp";

const TOKENS = { alice: "alice-Wq3e5Rt", bob: "bob-Zx7c9Vb" };
const { config, problems } = check(
  yaml(
    "items:",
    // ttl 0, as 1.x: every GET asks the upstream.
    "  /value: {module: JsonHttp, parameters: {url: 'http://127.0.0.1:9/value'}}",
    "  /ttl: {module: JsonHttp, disable_auth: true, ttl: 60s, parameters: {url: 'http://127.0.0.1:9/ttl'}}",
    "  /refreshed: {module: JsonHttp, disable_auth: true, refresh: 10s, parameters: {url: 'http://127.0.0.1:9/refreshed'}}",
    "auth:",
    `  alice: {token: ${TOKENS.alice}, url: '*'}`,
    `  bob: {token: ${TOKENS.bob}, url: /ttl}`,
  ),
);

const etagOf = (body: string) => `"${createHash("sha256").update(body).digest("base64url")}"`;
const ALICE = { Authorization: `Bearer ${TOKENS.alice}` };

type Seen = { status: number; headers: Record<string, string>; body: string };
const seen = async (response: Response): Promise<Seen> => ({ status: response.status, headers: Object.fromEntries(response.headers), body: await response.text() });

/** The handler over the real resolver; `bodies` is what the upstream answers now (an Error: it fails). */
function daemon(items = config!.items) {
  const lines: string[] = [];
  const log = createLogger({ format: "logfmt", level: "info" }, (line) => lines.push(line));
  const clock = new FakeClock();
  const bodies = new Map<string, string | Error>([["/value", '{"v": 1}'], ["/ttl", '{"t": 1}'], ["/refreshed", '{"r": 1}']]);
  const fetched: string[] = [];
  /** While set, fetches wait for it: a fetch in flight. */
  const hold: { gate?: Promise<void> } = {};
  const resolver = new Resolver({
    items,
    store: SqliteStore.open(tempDir(), log),
    log,
    clock,
    fetcher: async (item) => {
      fetched.push(item.path);
      await hold.gate;
      const body = bodies.get(item.path)!;
      if (body instanceof Error) throw new UpstreamFailure("connect", body.message);
      return { kind: "value", value: new TextEncoder().encode(body) };
    },
  });
  const watch = new Watch(resolver, clock);
  const metrics = new Metrics();
  metrics.waitingClients = (path) => watch.waiting(path);
  const unbounded = new Set<Request>();
  const handle = handler({ resolver, clients: () => config!.clients, log, clock, ready: () => true, watch, metrics });
  /** The handler's answer, a promise while it waits. */
  const call = (path: string, headers: Record<string, string> | [string, string][] = {}, init: RequestInit = {}) =>
    handle(new Request(`http://cachish${path}`, { ...init, headers }), { timeout: (request, seconds) => void (seconds === 0 && unbounded.add(request)) });
  const ask = async (path: string, headers: Record<string, string> | [string, string][] = {}, init: RequestInit = {}) => seen(await call(path, headers, init));
  /** Whether `answer` is still waiting once everything released so far has run. */
  const waiting = async (answer: Response | Promise<Response>) => {
    let settled = false;
    void Promise.resolve(answer).then(() => (settled = true));
    await settle();
    return !settled;
  };
  const requestLines = () => lines.filter((l) => l.includes("msg=request")).map((l) => l.replace(/^time=\S+ /, "").replace(/ duration_ms=\S+\n$/, ""));
  /** Moves the clock by each step in turn; the upstream's fetches so far after each. */
  const fetchesAfter = async (steps: number[]) => {
    const counts: number[] = [];
    for (const ms of steps) {
      await clock.advance(ms);
      counts.push(fetched.length);
    }
    return counts;
  };
  const gauge = () => metrics.render(resolver.states()).split("\n").filter((l) => l.startsWith("cachish_waiting_clients{"));
  return { call, ask, waiting, clock, bodies, hold, fetched, fetchesAfter, watch, resolver, lines, requestLines, gauge, unbounded };
}

/** The headers of a 200 that describe its value: what its 304 carries too (RFC 9110 15.4.5). */
const describing = ({ "content-type": _type, "content-length": _length, ...rest }: Record<string, string>) => rest;

describe("ETag and If-None-Match (SPEC 5.2, 5.8)", () => {
  test("every 200 carries the SHA-256 of its bytes as a strong ETag; a matching If-None-Match: 304, the same headers, no body (fresh, hit, stale; GET and HEAD)", async () => {
    expect(problems.filter((p) => p.includes("error"))).toEqual([]);
    const { ask, bodies } = daemon();
    const cases: [string, string, Record<string, string>][] = [
      ["fresh", "/value", ALICE],
      ["hit", "/ttl", {}],
    ];
    // Stored once each: from then on, each GET of /value replaces a stored value (fwd=stale), each of /ttl is a hit.
    await ask("/ttl");
    await ask("/value", ALICE);
    for (const [kind, path, auth] of cases) {
      for (const method of ["GET", "HEAD"]) {
        const full = await ask(path, auth, { method });
        const body = bodies.get(path) as string;
        expect({ kind, method, status: full.status, etag: full.headers.etag, xcache: full.headers["x-cache"] }).toEqual({ kind, method, status: 200, etag: etagOf(body), xcache: kind === "fresh" ? "miss" : "hit" });
        const conditional = await ask(path, { ...auth, "If-None-Match": etagOf(body) }, { method });
        expect({ kind, method, status: conditional.status, body: conditional.body }).toEqual({ kind, method, status: 304, body: "" });
        expect(conditional.headers).toEqual(describing(full.headers));
        expect(conditional.headers["content-type"]).toBeUndefined();
      }
    }
    bodies.set("/value", new Error("ECONNREFUSED"));
    const stale = await ask("/value", ALICE);
    expect({ status: stale.status, etag: stale.headers.etag, cache: stale.headers["cache-status"] }).toEqual({ status: 200, etag: etagOf('{"v": 1}'), cache: "cachish; hit; detail=connect" });
    // In the backoff window the failure opened, the same answer each time: a 200, then its 304.
    const backoff = await ask("/value", ALICE);
    const staleNotModified = await ask("/value", { ...ALICE, "If-None-Match": etagOf('{"v": 1}') });
    expect({ status: staleNotModified.status, body: staleNotModified.body, cache: staleNotModified.headers["cache-status"] }).toEqual({ status: 304, body: "", cache: "cachish; hit; detail=backoff" });
    expect(staleNotModified.headers).toEqual(describing(backoff.headers));
  });

  test("a list, a weak tag, *, several header lines: 304; tags of other bytes: 200 with the value", async () => {
    const { ask } = daemon();
    const current = etagOf('{"t": 1}');
    for (const header of [current, `W/${current}`, `"other", ${current}`, "*", ` , W/"x,y", ${current} `]) {
      expect({ header, status: (await ask("/ttl", { "If-None-Match": header })).status }).toEqual({ header, status: 304 });
    }
    expect((await ask("/ttl", [["If-None-Match", '"other"'], ["If-None-Match", current]])).status).toBe(304);
    for (const header of ['"other"', etagOf('{"t": 2}'), current.slice(1, -1), `w/${current}`, ""]) {
      expect({ header, ...(await ask("/ttl", { "If-None-Match": header })) }).toMatchObject({ header, status: 200, body: '{"t": 1}' });
    }
  });

  test("only after routing and auth: 404, 405, 401, 400 and 403 stay what they are, at once, whatever the client holds or waits for", async () => {
    const { call, ask, fetched, watch } = daemon();
    // A value held, so that a 304 could be answered from memory: one would tell a client
    // without a token that its guess is the value.
    await ask("/value", ALICE);
    const holds = { "If-None-Match": `"other", ${etagOf('{"v": 1}')}`, Prefer: "wait=60" };
    const cases: [string, Record<string, string>, string, number][] = [
      ["/nothing", holds, "GET", 404],
      ["/value", holds, "POST", 405],
      ["/value", holds, "GET", 401],
      ["/value", { ...holds, Authorization: "Bearer" }, "GET", 400],
      ["/value", { ...holds, Authorization: "Bearer nobody-Qq1" }, "HEAD", 403],
      ["/value", { ...holds, Authorization: `Bearer ${TOKENS.bob}` }, "GET", 403],
    ];
    for (const [path, headers, method, status] of cases) {
      const answer = call(path, headers, { method });
      expect(answer).toBeInstanceOf(Response);
      const response = answer as Response;
      expect({ path, method, status: response.status, etag: response.headers.get("etag"), applied: response.headers.get("preference-applied") }).toEqual({ path, method, status, etag: null, applied: null });
    }
    expect(fetched).toEqual(["/value"]);
    expect(watch.waiting("/value")).toBe(0);
  });

  test("503 stays 503, at once, with If-None-Match: * and Prefer: wait", async () => {
    const { ask, bodies, watch } = daemon();
    bodies.set("/ttl", new Error("ECONNREFUSED"));
    const answer = await ask("/ttl", { "If-None-Match": "*", Prefer: "wait=60" });
    expect({ status: answer.status, body: answer.body, applied: answer.headers["preference-applied"], etag: answer.headers.etag }).toEqual({ status: 503, body: "Upstream failure", applied: undefined, etag: undefined });
    expect(watch.waiting("/ttl")).toBe(0);
  });
});

describe("long polls: If-None-Match with Prefer: wait=N (SPEC 5.8)", () => {
  test("waits while the value matches; a change answers it at once: 200, the new value, its ETag, Preference-Applied", async () => {
    const { call, ask, waiting, bodies, fetched, unbounded, requestLines } = daemon();
    const first = await ask("/value", ALICE);
    const poll = call("/value", { ...ALICE, "If-None-Match": first.headers.etag!, Prefer: "wait=60" });
    expect(await waiting(poll)).toBe(true);
    // Bun's 10 s idle timeout is lifted for it.
    expect(unbounded.size).toBe(2);
    bodies.set("/value", '{"v": 2}');
    // Another client's GET fetches the new value (ttl 0): the waiter gets it from that fetch.
    expect((await ask("/value", ALICE)).body).toBe('{"v": 2}');
    expect(await waiting(poll)).toBe(false);
    const changed = await seen(await poll);
    expect(changed).toEqual({
      status: 200,
      headers: { server: expect.stringMatching(/^Cachish\//), "cache-status": "cachish; hit; ttl=0", etag: etagOf('{"v": 2}'), "preference-applied": "wait=60", "x-cache": "hit", age: "0", "content-type": "application/json" },
      body: '{"v": 2}',
    });
    expect(fetched).toEqual(["/value", "/value"]);
    expect(requestLines()).toEqual([
      "level=info msg=request method=GET path=/value status=200 client=alice auth=bearer cache=fresh upstream_ms=0",
      // One line for the long poll, at its end: as soon as the new value is stored, before the GET that fetched it is answered.
      "level=info msg=request method=GET path=/value status=200 client=alice auth=bearer cache=hit",
      "level=info msg=request method=GET path=/value status=200 client=alice auth=bearer cache=fresh upstream_ms=0",
    ]);
  });

  test("N seconds pass: 304 with Preference-Applied; N is capped at 300; a value of the same bytes fetched meanwhile does not end it", async () => {
    const { call, ask, waiting, clock } = daemon();
    await ask("/ttl");
    await clock.advance(1000);
    const current = etagOf('{"t": 1}');
    const short = call("/ttl", { "If-None-Match": current, Prefer: "wait=5" });
    const long = call("/ttl", { "If-None-Match": current, Prefer: "wait=100000" });
    await clock.advance(4999);
    expect([await waiting(short), await waiting(long)]).toEqual([true, true]);
    await clock.advance(1);
    const timedOut = await seen(await short);
    expect(timedOut).toEqual({ status: 304, headers: { server: expect.any(String), "cache-status": "cachish; hit; ttl=54", etag: current, "preference-applied": "wait=5", "x-cache": "hit", age: "6" }, body: "" });
    // /ttl is refreshed every 60 s while watched: the same bytes, the wait goes on.
    await clock.advance(295_000 - 1);
    expect(await waiting(long)).toBe(true);
    await clock.advance(1);
    expect(await seen(await long)).toMatchObject({ status: 304, headers: { "preference-applied": "wait=300", etag: current, age: "1", "cache-status": "cachish; hit; ttl=59" }, body: "" });
  });

  test("no wait: a value that does not match, no If-None-Match, wait=0 or malformed: answered at once, without Preference-Applied", async () => {
    const { call, ask, watch } = daemon();
    await ask("/ttl");
    const current = etagOf('{"t": 1}');
    const cases: [Record<string, string>, number][] = [
      [{ "If-None-Match": '"old"', Prefer: "wait=60" }, 200],
      [{ Prefer: "wait=60" }, 200],
      [{ "If-None-Match": current, Prefer: "wait=0" }, 304],
      [{ "If-None-Match": current, Prefer: "wait=soon" }, 304],
      [{ "If-None-Match": current, Prefer: "respond-async" }, 304],
    ];
    for (const [headers, status] of cases) {
      const answer = call("/ttl", headers);
      expect(answer).toBeInstanceOf(Response);
      expect({ headers, status: (answer as Response).status, applied: (answer as Response).headers.get("preference-applied") }).toEqual({ headers, status, applied: null });
    }
    expect(watch.waiting("/ttl")).toBe(0);
  });

  test("HEAD waits as GET does, and its 200 has no body", async () => {
    const { call, ask, waiting, bodies, resolver } = daemon();
    await ask("/refreshed");
    const poll = call("/refreshed", { "If-None-Match": etagOf('{"r": 1}'), Prefer: "wait=60" }, { method: "HEAD" });
    expect(await waiting(poll)).toBe(true);
    bodies.set("/refreshed", '{"r": 22}');
    resolver.refresh("/refreshed");
    expect(await seen(await poll)).toMatchObject({ status: 200, headers: { etag: etagOf('{"r": 22}'), "content-length": "9", "preference-applied": "wait=60" }, body: "" });
  });

  test("* and a list that holds the new tag too: a change that still matches does not end the wait; N seconds do, with the new ETag", async () => {
    const { call, ask, waiting, bodies, clock, resolver } = daemon();
    await ask("/refreshed");
    const star = call("/refreshed", { "If-None-Match": "*", Prefer: "wait=20" });
    const both = call("/refreshed", { "If-None-Match": `${etagOf('{"r": 1}')}, ${etagOf('{"r": 2}')}`, Prefer: "wait=20" });
    const one = call("/refreshed", { "If-None-Match": etagOf('{"r": 1}'), Prefer: "wait=20" });
    bodies.set("/refreshed", '{"r": 2}');
    resolver.refresh("/refreshed");
    await settle();
    expect((await seen(await one)).status).toBe(200);
    expect([await waiting(star), await waiting(both)]).toEqual([true, true]);
    await clock.advance(20_000);
    for (const poll of [star, both]) expect(await seen(await poll)).toMatchObject({ status: 304, headers: { etag: etagOf('{"r": 2}') } });
  });

  test("a value older than max_stale is never confirmed: a long poll for it is resolved as a GET is (here 503, the upstream failing), not held and then answered 304", async () => {
    const { config: bounded } = check(yaml("items:", "  /bounded: {module: JsonHttp, disable_auth: true, max_stale: 1m, parameters: {url: 'http://127.0.0.1:9/bounded'}}"));
    const { call, ask, waiting, bodies, clock, watch } = daemon(bounded!.items);
    bodies.set("/bounded", '{"b": 1}');
    const etag = (await ask("/bounded")).headers.etag!;
    bodies.set("/bounded", new Error("ECONNREFUSED"));
    await clock.advance(61_000);
    const poll = call("/bounded", { "If-None-Match": etag, Prefer: "wait=60" });
    expect(await waiting(poll)).toBe(false);
    expect((await seen(await poll)).status).toBe(503);
    expect(watch.waiting("/bounded")).toBe(0);
  });

  test("a client that leaves: its waiter and timer go, the gauge drops, one log line says 499", async () => {
    const { call, ask, waiting, clock, gauge, requestLines, watch } = daemon();
    await ask("/ttl");
    const timersBefore = clock.pending();
    const leaving = new AbortController();
    const staying = call("/ttl", { "If-None-Match": "*", Prefer: "wait=60" });
    const poll = call("/ttl", { "If-None-Match": "*", Prefer: "wait=60" }, { signal: leaving.signal });
    expect(await waiting(poll)).toBe(true);
    expect(gauge()).toEqual(['cachish_waiting_clients{item="/value"} 0', 'cachish_waiting_clients{item="/ttl"} 2', 'cachish_waiting_clients{item="/refreshed"} 0']);
    // Each waiter's timer, and the item's refresh.
    expect(clock.pending()).toBe(timersBefore + 3);
    leaving.abort();
    expect((await poll).status).toBe(499);
    expect(watch.waiting("/ttl")).toBe(1);
    expect(clock.pending()).toBe(timersBefore + 2);
    expect(requestLines().at(-1)).toBe("level=info msg=request method=GET path=/ttl status=499 client=- auth=none cache=hit");
    await clock.advance(60_000);
    expect((await staying).status).toBe(304);
    expect(gauge()).toContain('cachish_waiting_clients{item="/ttl"} 0');
    expect(clock.pending()).toBe(timersBefore);
  });

  test("release (a reload): every waiter answered 304 at once; close (a stop): the same, and later long polls do not wait", async () => {
    const { call, ask, waiting, watch } = daemon();
    await ask("/ttl");
    await ask("/value", ALICE);
    const polls = [call("/ttl", { "If-None-Match": "*", Prefer: "wait=300" }), call("/value", { ...ALICE, "If-None-Match": "*", Prefer: "wait=300" })];
    for (const poll of polls) expect(await waiting(poll)).toBe(true);
    watch.release();
    for (const poll of polls) expect(await seen(await poll)).toMatchObject({ status: 304, headers: { "preference-applied": "wait=300" } });
    const again = call("/ttl", { "If-None-Match": "*", Prefer: "wait=300" });
    expect(await waiting(again)).toBe(true);
    watch.close();
    expect((await again).status).toBe(304);
    expect(await waiting(call("/ttl", { "If-None-Match": "*", Prefer: "wait=300" }))).toBe(false);
    expect(watch.waiting("/ttl")).toBe(0);
  });

  test("a long poll let in before a release (its fetch in flight during a reload) does not wait after it", async () => {
    const { call, ask, waiting, bodies, hold, watch } = daemon();
    await ask("/value", ALICE);
    let open = () => {};
    hold.gate = new Promise((resolve) => (open = resolve));
    // It holds the next value: the one held here does not match, so it is fetched first.
    bodies.set("/value", '{"v": 2}');
    const poll = call("/value", { ...ALICE, "If-None-Match": etagOf('{"v": 2}'), Prefer: "wait=300" });
    expect(await waiting(poll)).toBe(true);
    watch.release();
    open();
    expect(await seen(await poll)).toMatchObject({ status: 304, headers: { etag: etagOf('{"v": 2}'), "preference-applied": "wait=300" } });
    expect(watch.waiting("/value")).toBe(0);
  });
});

describe("while clients wait, the item is refreshed (SPEC 5.8)", () => {
  test("neither refresh nor ttl: every 30 s, one fetch however many wait; none once nobody waits", async () => {
    const { call, ask, clock, fetched } = daemon();
    await ask("/value", ALICE);
    const polls = Array.from({ length: 50 }, () => call("/value", { ...ALICE, "If-None-Match": "*", Prefer: "wait=95" }));
    const count = () => fetched.length - 1;
    const counts: number[] = [];
    for (let s = 0; s < 100; s += 5) {
      await clock.advance(5000);
      counts.push(count());
    }
    expect(counts).toEqual([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 3, 3, 3]);
    for (const poll of polls) expect((await poll).status).toBe(304);
    await clock.advance(600_000);
    expect(count()).toBe(3);
    expect(clock.pending()).toBe(0);
  });

  test("stale_after: 0s (a GET answers the stored value and fetches behind it): clients that keep asking again cost one fetch per 30 s too, not one each", async () => {
    const { config: swr } = check(yaml("items:", "  /swr: {module: JsonHttp, disable_auth: true, stale_after: 0s, parameters: {url: 'http://127.0.0.1:9/swr'}}"));
    const { call, ask, clock, bodies, fetched } = daemon(swr!.items);
    bodies.set("/swr", '{"s": 1}');
    const etag = (await ask("/swr")).headers.etag!;
    // Ten clients whose waits end a second apart, each asking again at once (as `get --watch` does).
    const again = async (wait: number): Promise<void> => {
      await call("/swr", { "If-None-Match": etag, Prefer: `wait=${wait}` });
      return again(wait);
    };
    for (let n = 0; n < 10; n++) void again(10 + n);
    await clock.advance(60_000);
    // The first fetch, then the watch's: at 30 s and 60 s.
    expect(fetched.length).toBe(3);
  });

  test("counted from the value's fetch: a fetch by another request puts the next refresh off", async () => {
    const { call, ask, clock, fetched, fetchesAfter } = daemon();
    await ask("/value", ALICE);
    const poll = call("/value", { ...ALICE, "If-None-Match": "*", Prefer: "wait=100" });
    await clock.advance(20_000);
    await ask("/value", ALICE);
    expect(fetched.length).toBe(2);
    expect(await fetchesAfter([29_000, 1000, 29_000, 1000, 20_000])).toEqual([2, 3, 3, 4, 4]);
    expect((await poll).status).toBe(304);
  });

  test("ttl: a waiter that comes when the value is 50 s old sees it refreshed 10 s later, then every 60 s", async () => {
    const { call, ask, clock, fetchesAfter } = daemon();
    await ask("/ttl");
    await clock.advance(50_000);
    const poll = call("/ttl", { "If-None-Match": "*", Prefer: "wait=200" });
    expect(await fetchesAfter([9_999, 1, 60_000, 130_000])).toEqual([1, 2, 3, 5]);
    expect((await poll).status).toBe(304);
  });

  test("an item with refresh: the refresh scheduler's job (not running here), the watch adds no fetch", async () => {
    const { call, ask, clock, fetched } = daemon();
    await ask("/refreshed");
    const poll = call("/refreshed", { "If-None-Match": "*", Prefer: "wait=100" });
    await clock.advance(100_000);
    expect((await poll).status).toBe(304);
    expect(fetched).toEqual(["/refreshed"]);
  });

  test("a failing upstream in its backoff window is not asked", async () => {
    const { call, ask, clock, fetched, bodies } = daemon();
    await ask("/value", ALICE);
    bodies.set("/value", new Error("ECONNREFUSED"));
    // Three failures in a row: the window is 4 s long after the third, and each GET waits for its fetch.
    for (let i = 0; i < 3; i++) {
      await clock.advance(10_000);
      await ask("/value", ALICE);
    }
    // The third runs in the background, after its answer.
    await settle();
    const poll = call("/value", { ...ALICE, "If-None-Match": "*", Prefer: "wait=60" });
    expect(fetched.length).toBe(4);
    await clock.advance(60_000);
    expect((await poll).status).toBe(304);
    expect(fetched.length).toBe(5);
  });
});
