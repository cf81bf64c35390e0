/**
 * The fleet's protocol (SPEC 5.7) in-process: the real resolver and SQLite store, the fleet
 * wrapped around them, and a tier the test plays (the PostgreSQL itself is in e2e/fleet.test.ts).
 */
import { storedOf } from "../../src/store/store";
import { describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { UpstreamFailure } from "../../src/backends/failure";
import { createLogger } from "../../src/log";
import { Metrics } from "../../src/metrics";
import { Resolver } from "../../src/resolver";
import { asFetcher, type TestFetcher } from "../support/fetcher";
import { Fleet, type Tier } from "../../src/store/fleet";
import { SqliteStore } from "../../src/store/sqlite";
import type { Stored } from "../../src/store/store";
import { FakeClock, settle } from "../support/clock";
import { check, yaml } from "../support/config";
import { tempDir } from "../support/temp";

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (stored: Stored | undefined) => stored && new TextDecoder().decode(stored.value);

/** Another host's database, as the test makes it: rows, leases, and what this host asked of it. */
class FakeTier implements Tier {
  readonly rows = new Map<string, Stored>();
  readonly heldByOthers = new Set<string>();
  readonly asked: string[] = [];
  #onValue: (path: string, stored: Stored) => void = () => {};
  /** Set by a test to see what the local store holds when the fleet's write comes. */
  beforeWrite: (path: string) => Promise<void> = async () => {};
  start(onValue: (path: string, stored: Stored) => void) {
    this.#onValue = onValue;
  }
  async read(path: string) {
    return this.rows.get(path);
  }
  async write(path: string, stored: Stored) {
    await this.beforeWrite(path);
    this.asked.push(`write ${path}`);
    this.rows.set(path, stored);
  }
  async lease(path: string) {
    this.asked.push(`lease ${path}`);
    return this.heldByOthers.has(path) ? ("held" as const) : ("mine" as const);
  }
  async release(path: string) {
    this.asked.push(`release ${path}`);
  }
  async close() {}
  /** Another host wrote a value: NOTIFY. */
  announce(path: string, stored: Stored) {
    this.rows.set(path, stored);
    this.#onValue(path, stored);
  }
}

function setup(policy = "", fetcher: TestFetcher = async () => bytes('{"here": 1}')) {
  const { config } = check(yaml("items:", `  /a: {module: JsonHttp, disable_auth: true, parameters: {url: 'http://x/a'}${policy}}`));
  const lines: string[] = [];
  const log = createLogger({ format: "logfmt", level: "debug" }, (t) => lines.push(...t.trimEnd().split("\n")));
  const local = SqliteStore.open(tempDir(), log);
  const tier = new FakeTier();
  const clock = new FakeClock();
  const metrics = new Metrics();
  metrics.sharedUp = () => true;
  const fleet = new Fleet(local, tier, { log, clock, metrics });
  let calls = 0;
  const resolver = new Resolver({ items: config!.items, store: fleet, log, clock, metrics, fetcher: asFetcher((item, now, validators) => (calls++, fetcher(item, now, validators))) });
  fleet.follow(resolver);
  const logged = (msg: string) => (log.flush(), lines.filter((l) => l.includes(`msg="${msg}"`)).length);
  return { resolver, local, tier, clock, metrics, calls: () => calls, logged };
}

describe("the fleet", () => {
  test("a value fetched here: the local store, then the fleet, then the lease is given back; the answer does not wait on the database", async () => {
    const { resolver, local, tier } = setup();
    let release = () => {};
    const seenLocally: (string | undefined)[] = [];
    tier.beforeWrite = async (path) => {
      seenLocally.push(text(await local.get(path)));
      await new Promise<void>((resolve) => (release = resolve));
    };
    expect(await resolver.resolve("/a")).toMatchObject({ kind: "fresh", stored: true });
    expect(tier.asked).toEqual(["lease /a"]);
    release();
    await settle();
    expect(seenLocally).toEqual(['{"here": 1}']);
    expect(tier.asked).toEqual(["lease /a", "write /a", "release /a"]);
  });

  test("a value of the fleet fresher than ttl saves the fetch: a hit, kept locally, counted", async () => {
    const { resolver, local, tier, clock, metrics, calls } = setup(", ttl: 10s");
    tier.rows.set("/a", storedOf(bytes('{"fleet": 1}'), clock.now() - 9000));
    expect(await resolver.resolve("/a")).toMatchObject({ kind: "hit", fetchedAt: clock.now() - 9000 });
    expect(calls()).toBe(0);
    expect(text(await local.get("/a"))).toBe('{"fleet": 1}');
    expect(metrics.render(resolver.states())).toContain('cachish_shared_fetches_saved_total{item="/a"} 1');
    expect(tier.asked).toEqual(["lease /a", "release /a"]);
  });

  test("a lease held by another host: its value, announced in time, is a hit; none in time is a `lease` failure, not the upstream's", async () => {
    const { resolver, tier, clock, calls, logged, metrics } = setup(", timeout: 100ms, max_backoff: 30s");
    tier.heldByOthers.add("/a");
    const waiting = resolver.resolve("/a");
    await settle();
    tier.announce("/a", storedOf(bytes('{"other": 1}'), clock.now()));
    expect(await waiting).toMatchObject({ kind: "hit" });
    clock.t += 1;
    const timedOut = resolver.resolve("/a");
    await settle();
    await clock.advance(99);
    let answered = false;
    void timedOut.then(() => (answered = true));
    await settle();
    expect(answered).toBe(false);
    await clock.advance(1);
    expect(await timedOut).toMatchObject({ kind: "stale", detail: "lease" });
    expect(calls()).toBe(0);
    // Not an upstream failure: no backoff, no log line, no fetch counted.
    expect(logged("upstream failure")).toBe(0);
    expect(metrics.render(resolver.states())).toContain('cachish_upstream_failing{item="/a"} 0');
    expect(resolver.peek("/a")).toBeUndefined();
  });

  test("a failed fetch gives the lease back at once and writes nothing", async () => {
    const { resolver, tier } = setup("", async () => {
      throw new UpstreamFailure("connect", "ECONNREFUSED");
    });
    expect(await resolver.resolve("/a")).toMatchObject({ kind: "unavailable", detail: "connect" });
    await settle();
    expect(tier.asked).toEqual(["lease /a", "release /a"]);
  });

  test("announced values: a newer one is taken into the store and memory; an older one, another host's item, or one not JSON is not", async () => {
    const { resolver, local, tier, clock, logged } = setup();
    const at = clock.now();
    tier.announce("/a", storedOf(bytes('{"v": 2}'), at));
    await settle();
    expect(text(resolver.stored("/a"))).toBe('{"v": 2}');
    expect(text(await local.get("/a"))).toBe('{"v": 2}');
    tier.announce("/a", storedOf(bytes('{"v": 1}'), at - 1));
    tier.announce("/elsewhere", storedOf(bytes('{"v": 3}'), at + 1));
    tier.announce("/a", storedOf(bytes("{not json"), at + 1));
    await settle();
    expect(text(resolver.stored("/a"))).toBe('{"v": 2}');
    expect(text(await local.get("/a"))).toBe('{"v": 2}');
    expect(await local.get("/elsewhere")).toBeUndefined();
    expect(logged("a value of the shared store is not JSON; it is ignored")).toBe(1);
  });

  test("validators travel with the value: written to the fleet with it, taken with it, sent by the host that took it; a 304 there renews it for the fleet", async () => {
    const { resolver, local, tier, clock } = setup(", ttl: 10s", async (_item, _now, held) => {
      expect(held).toEqual({ etag: '"fleet-1"', basis: "b" });
      return { kind: "not-modified", validators: { ...held!, etag: '"fleet-2"' } };
    });
    const fetchedAt = clock.now() - 20_000;
    tier.rows.set("/a", storedOf(bytes('{"fleet": 1}'), fetchedAt, { etag: '"fleet-1"', basis: "b" }));
    const outcome = await resolver.resolve("/a");
    expect(outcome).toMatchObject({ kind: "fresh", revalidated: true, fetchedAt: clock.now() });
    await settle();
    // The fleet has the renewed value: the same bytes, the new fetch time and validators.
    const row = tier.rows.get("/a")!;
    expect([text(row), row.fetchedAt, row.validators]).toEqual(['{"fleet": 1}', clock.now(), { etag: '"fleet-2"', basis: "b" }]);
    expect(tier.asked).toEqual(["lease /a", "write /a", "release /a"]);
    const kept = (await local.get("/a"))!;
    expect([text(kept), kept.fetchedAt, kept.validators]).toEqual(['{"fleet": 1}', clock.now(), { etag: '"fleet-2"', basis: "b" }]);
  });

  test("a value fetched here goes to the fleet with its validators", async () => {
    const { resolver, tier } = setup("", async () => ({ kind: "value", value: bytes('{"here": 2}'), validators: { lastModified: "Sun, 06 Nov 1994 08:49:37 GMT", basis: "b" } }));
    await resolver.resolve("/a");
    await settle();
    expect(tier.rows.get("/a")!.validators).toEqual({ lastModified: "Sun, 06 Nov 1994 08:49:37 GMT", basis: "b" });
  });

  test("another host's renewal of the value held here: taken (newer fetch time, its validators), its row renewed, not rewritten; no change heard", async () => {
    const { resolver, local, tier, clock } = setup();
    const heard: string[] = [];
    resolver.onChange = (path) => heard.push(path);
    tier.announce("/a", storedOf(bytes('{"v": 1}'), clock.now(), { etag: '"1"', basis: "b" }));
    await settle();
    const db = new Database(local.file, { strict: true });
    db.run("CREATE TRIGGER no_rewrite BEFORE UPDATE ON value_chunks BEGIN SELECT RAISE(ABORT, 'chunks written'); END");
    db.close();
    tier.announce("/a", storedOf(bytes('{"v": 1}'), clock.now() + 5000, { etag: '"1b"', basis: "b" }));
    await settle();
    expect(heard).toEqual(["/a"]);
    expect([resolver.stored("/a")!.fetchedAt, resolver.stored("/a")!.validators?.etag]).toEqual([clock.now() + 5000, '"1b"']);
    const kept = (await local.get("/a"))!;
    expect([text(kept), kept.fetchedAt, kept.validators?.etag]).toEqual(['{"v": 1}', clock.now() + 5000, '"1b"']);
  });
});
