/**
 * The resolver in-process: a clock the test moves, a fetcher the test scripts (the backend
 * seam), and the real SQLite store in a temp folder.
 */
import { storedOf } from "../../src/store/store";
import { describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { UpstreamFailure } from "../../src/backends/failure";
import type { Item } from "../../src/config/types";
import { createLogger } from "../../src/log";
import { type Outcome, Resolver } from "../../src/resolver";
import { asFetcher, type TestFetcher } from "../support/fetcher";
import { SqliteStore } from "../../src/store/sqlite";
import type { Store } from "../../src/store/store";
import { Metrics } from "../../src/metrics";
import { startRefresh } from "../../src/refresh";
import { FakeClock, settle } from "../support/clock";
import { check, yaml } from "../support/config";
import { tempDir } from "../support/temp";
import { Upstream } from "../support/upstream";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const bytes = (s: string) => new TextEncoder().encode(s);

/** `wrap`: what the resolver gets instead of the real store, built around it (a slow one, a failing one). */
function setup(policy = "", fetcher: TestFetcher, wrap: (store: SqliteStore) => Store = (store) => store) {
  const { config } = check(yaml("items:", `  /a: {module: JsonHttp, disable_auth: true, parameters: {url: 'http://x/a'}${policy}}`));
  const written: string[] = [];
  const log = createLogger({ format: "logfmt", level: "debug" }, (text) => written.push(...text.trimEnd().split("\n")));
  /** The log lines so far (the logger gathers them until the next turn of the event loop). */
  const lines = { filter: (f: (l: string) => boolean) => (log.flush(), written.filter(f)), some: (f: (l: string) => boolean) => (log.flush(), written.some(f)) };
  const store = SqliteStore.open(tempDir(), log);
  const clock = new FakeClock();
  const metrics = new Metrics();
  const resolver = new Resolver({ items: config!.items, store: wrap(store), log, clock, fetcher: asFetcher(fetcher), metrics });
  return { resolver, store, clock, lines, metrics };
}

describe("the resolver", () => {
  test("a fetch: fresh, written to the store before it is returned", async () => {
    const { resolver, store } = setup("", async () => bytes('{"v": 1}'));
    const outcome = await resolver.resolve("/a");
    expect(outcome).toMatchObject({ kind: "fresh", collapsed: false, replaced: false, stored: true });
    expect(text((await store.get("/a"))!.value)).toBe('{"v": 1}');
    expect(await resolver.resolve("/a")).toMatchObject({ kind: "fresh", replaced: true });
  });

  test("onChange hears of a value with other bytes, fetched or taken, and of nothing else", async () => {
    const values = ['{"v": 1}', '{"v": 1}', '{"v": 2}'];
    const { resolver, clock } = setup("", async () => bytes(values.shift()!));
    const heard: string[] = [];
    resolver.onChange = (path, stored) => heard.push(`${path} ${text(stored.value)}`);
    for (let n = 0; n < 3; n++) await resolver.resolve("/a");
    expect(heard).toEqual(['/a {"v": 1}', '/a {"v": 2}']);
    resolver.take("/a", storedOf(bytes('{"v": 2}'), clock.now() + 1));
    resolver.take("/a", storedOf(bytes('{"v": 3}'), clock.now() - 1));
    resolver.take("/a", storedOf(bytes('{"v": 4}'), clock.now() + 2));
    expect(heard).toEqual(['/a {"v": 1}', '/a {"v": 2}', '/a {"v": 4}']);
  });

  test("resolve() returns a fetched value only once the store has written it", async () => {
    let release = () => {};
    let written = false;
    const { resolver } = setup("", async () => bytes('{"v": 1}'), (store) => ({
      get: (path) => store.get(path),
      close: () => store.close(),
      renew: (path, stored) => store.renew(path, stored),
      // A store slow to write: the write completes when the test says so.
      async put(path, stored) {
        await new Promise<void>((resolve) => (release = resolve));
        await store.put(path, stored);
        written = true;
      },
    }));
    let outcome: Outcome | undefined;
    const pending = resolver.resolve("/a").then((o) => (outcome = o));
    await settle();
    await Bun.sleep(20);
    expect(outcome).toBeUndefined();
    release();
    await pending;
    expect(written).toBe(true);
    expect(outcome).toMatchObject({ kind: "fresh", stored: true });
  });

  test("a store write that fails: the value is answered all the same, not marked stored, and logged", async () => {
    const { resolver, lines } = setup("", async () => bytes('{"v": 1}'), (store) => ({
      get: (path) => store.get(path),
      close: () => store.close(),
      put: async () => {
        throw new Error("disk I/O error");
      },
      renew: async () => {
        throw new Error("disk I/O error");
      },
    }));
    expect(await resolver.resolve("/a")).toMatchObject({ kind: "fresh", stored: false });
    expect(text(resolver.stored("/a")!.value)).toBe('{"v": 1}');
    expect(lines.filter((l) => l.includes('msg="could not write a fetched value to the store"'))).toHaveLength(1);
  });

  test("a failure with a stored value: stale, with the failure; without: unavailable", async () => {
    let fail = false;
    const { resolver, clock, lines } = setup("", async () => {
      if (fail) throw new UpstreamFailure("status", "the upstream answered 500", 500);
      return bytes('{"v": 1}');
    });
    await resolver.resolve("/a");
    fail = true;
    clock.t += 5000;
    const stale = await resolver.resolve("/a");
    expect(stale.kind).toBe("stale");
    if (stale.kind !== "stale") return;
    expect(text(stale.value)).toBe('{"v": 1}');
    expect(stale.detail).toBe("status-500");
    expect(clock.now() - stale.fetchedAt).toBe(5000);
    expect(lines.filter((l) => l.includes('msg="upstream failure"'))).toHaveLength(1);
  });

  test("nothing stored and a failure: unavailable", async () => {
    const { resolver } = setup("", async () => {
      throw new UpstreamFailure("connect", "ECONNREFUSED");
    });
    expect(await resolver.resolve("/a")).toMatchObject({ kind: "unavailable", collapsed: false });
  });

  test("a failure never overwrites the stored value", async () => {
    let fail = false;
    const { resolver, store } = setup("", async () => {
      if (fail) throw new UpstreamFailure("invalid-json", "not JSON");
      return bytes('{"v": 1}');
    });
    await resolver.resolve("/a");
    fail = true;
    await resolver.resolve("/a");
    expect(text((await store.get("/a"))!.value)).toBe('{"v": 1}');
  });

  test("max_stale: a value older than it is never served", async () => {
    let fail = false;
    const { resolver, clock } = setup(", max_stale: 1h", async () => {
      if (fail) throw new UpstreamFailure("timeout", "no answer");
      return bytes("1");
    });
    await resolver.resolve("/a");
    fail = true;
    clock.t += 3600_000;
    expect((await resolver.resolve("/a")).kind).toBe("stale");
    clock.t += 1;
    expect((await resolver.resolve("/a")).kind).toBe("unavailable");
  });

  test("ttl: within it, the upstream is not asked", async () => {
    let calls = 0;
    const { resolver, clock } = setup(", ttl: 10s", async () => bytes(String(++calls)));
    await resolver.resolve("/a");
    clock.t += 9999;
    expect(await resolver.resolve("/a")).toMatchObject({ kind: "hit", ttl: 10_000 });
    expect(resolver.peek("/a")?.kind).toBe("hit");
    clock.t += 1;
    expect(resolver.peek("/a")).toBeUndefined();
    expect((await resolver.resolve("/a")).kind).toBe("fresh");
    expect(calls).toBe(2);
  });

  test("concurrent requests share one fetch, the others marked collapsed", async () => {
    let calls = 0;
    let release: () => void = () => {};
    const { resolver } = setup("", async () => {
      calls++;
      await new Promise<void>((resolve) => (release = resolve));
      return bytes("1");
    });
    const all = Array.from({ length: 10 }, () => resolver.resolve("/a"));
    await Bun.sleep(1);
    release();
    const outcomes = await Promise.all(all);
    expect(calls).toBe(1);
    expect(outcomes.map((o) => o.kind === "fresh" && o.collapsed)).toEqual([false, true, true, true, true, true, true, true, true, true]);
  });

});

/** A fetcher whose every call waits until the test releases it with a value or a failure. */
function scripted() {
  const calls: { resolve(v: Uint8Array): void; reject(e: unknown): void }[] = [];
  const fetcher: TestFetcher = () => new Promise((resolve, reject) => calls.push({ resolve, reject }));
  return { fetcher, calls };
}

const down = () => new UpstreamFailure("connect", "ECONNREFUSED");

describe("backoff", () => {
  test("after a failure the upstream is left alone for 1 s, then 2, 4, ... up to max_backoff; a success resets it", async () => {
    let fail = true;
    let calls = 0;
    const { resolver, clock } = setup(", max_backoff: 5s", async () => {
      calls++;
      if (fail) throw down();
      return bytes("1");
    });
    const windows: number[] = [];
    for (let n = 0; n < 5; n++) {
      const before = calls;
      expect((await resolver.resolve("/a")).kind).toBe("unavailable");
      expect(calls).toBe(before + 1);
      // Inside the window: no fetch, and the 503 says when to come back.
      const during = await resolver.resolve("/a");
      expect(calls).toBe(before + 1);
      expect(during).toMatchObject({ kind: "unavailable", detail: "backoff" });
      windows.push(during.kind === "unavailable" ? during.retryAfter! : -1);
      await clock.advance(windows.at(-1)! * 1000);
    }
    expect(windows).toEqual([1, 2, 4, 5, 5]);
    fail = false;
    expect((await resolver.resolve("/a")).kind).toBe("fresh");
    // A new outage starts again at 1 s (a value is stored now, so it is served meanwhile).
    fail = true;
    await resolver.resolve("/a");
    const before = calls;
    expect(await resolver.resolve("/a")).toMatchObject({ kind: "stale", detail: "backoff" });
    await clock.advance(1000);
    await resolver.resolve("/a");
    await settle(); // a retry in the background begins after the answer
    expect(calls).toBe(before + 1);
  });

  test("with a stored value, no client waits on a failing upstream more than once per outage", async () => {
    const { fetcher, calls } = scripted();
    const { resolver, clock } = setup("", fetcher);
    const first = resolver.resolve("/a");
    calls[0]!.resolve(bytes('{"v": 1}'));
    expect((await first).kind).toBe("fresh");

    // The outage begins: this client waits for the failing fetch, once.
    const waiting = resolver.resolve("/a");
    calls[1]!.reject(down());
    expect(await waiting).toMatchObject({ kind: "stale", detail: "connect" });

    // In the window: the stored value at once, no fetch.
    expect(await resolver.resolve("/a")).toMatchObject({ kind: "stale", detail: "backoff" });
    expect(calls.length).toBe(2);

    // After the window: the retry runs in the background; the client still gets an answer at once.
    await clock.advance(1000);
    expect(await resolver.resolve("/a")).toMatchObject({ kind: "stale", detail: "connect", collapsed: false });
    expect(await resolver.resolve("/a")).toMatchObject({ kind: "stale" });
    await settle(); // it begins after the answers are out, once
    expect(calls.length).toBe(3);

    // The retry succeeds: the next request gets the new value... fetched anew, as ttl is 0.
    calls[2]!.resolve(bytes('{"v": 2}'));
    await settle();
    const next = resolver.resolve("/a");
    calls[3]!.resolve(bytes('{"v": 3}'));
    expect(await next).toMatchObject({ kind: "fresh" });
  });

  test("max_backoff 0 asks the upstream on every request, as 1.x did", async () => {
    let calls = 0;
    const { resolver } = setup(", max_backoff: 0s", async () => {
      calls++;
      throw down();
    });
    for (let n = 0; n < 5; n++) expect((await resolver.resolve("/a")).kind).toBe("unavailable");
    expect(calls).toBe(5);
  });
});

describe("stale_after, deadlines and coalescing", () => {
  test("stale_after: the stored value after that long; the fetch goes on and stores its result", async () => {
    const { fetcher, calls } = scripted();
    const { resolver, clock, store } = setup(", stale_after: 500ms, timeout: 10s", fetcher);
    const first = resolver.resolve("/a");
    calls[0]!.resolve(bytes('"old"'));
    await first;

    let answered: unknown;
    const slow = resolver.resolve("/a").then((o) => (answered = o));
    await clock.advance(499);
    expect(answered).toBeUndefined();
    await clock.advance(1);
    expect(answered).toMatchObject({ kind: "stale", detail: "stale-after", collapsed: false });
    await slow;
    calls[1]!.resolve(bytes('"new"'));
    await clock.advance(1);
    expect(text((await store.get("/a"))!.value)).toBe('"new"');
    expect(text(resolver.stored("/a")!.value)).toBe('"new"');
  });

  test("stale_after: 0s answers from the store at once, without a promise; one fetch runs and stores its result", async () => {
    const { fetcher, calls } = scripted();
    const { resolver, clock, store } = setup(", ttl: 1s, stale_after: 0s, timeout: 10s", fetcher);
    const first = resolver.resolve("/a");
    calls[0]!.resolve(bytes('"old"'));
    await first;
    expect(resolver.peek("/a")).toMatchObject({ kind: "hit" });

    await clock.advance(1000);
    expect(resolver.peek("/a")).toMatchObject({ kind: "stale", detail: "stale-after", collapsed: false });
    expect(resolver.peek("/a")).toMatchObject({ kind: "stale", detail: "stale-after", collapsed: true });
    expect(await resolver.resolve("/a")).toMatchObject({ kind: "stale", detail: "stale-after", collapsed: true });
    // The fetch begins after the answers are out.
    expect(calls.length).toBe(1);
    await settle();
    expect(calls.length).toBe(2);
    calls[1]!.resolve(bytes('"new"'));
    await clock.advance(1);
    expect(text((await store.get("/a"))!.value)).toBe('"new"');
    expect(resolver.peek("/a")).toMatchObject({ kind: "hit" });
  });

  test("in a backoff window the stored value is answered without a promise, and the retry after it runs in the background", async () => {
    const { fetcher, calls } = scripted();
    const { resolver, clock } = setup(", ttl: 1s", fetcher);
    const first = resolver.resolve("/a");
    calls[0]!.resolve(bytes('"v"'));
    await first;
    await clock.advance(1000);
    const failing = resolver.resolve("/a");
    calls[1]!.reject(new UpstreamFailure("connect", "connection refused"));
    expect(await failing).toMatchObject({ kind: "stale", detail: "connect" });
    expect(resolver.peek("/a")).toMatchObject({ kind: "stale", detail: "backoff" });
    await clock.advance(1000);
    expect(resolver.peek("/a")).toMatchObject({ kind: "stale", detail: "connect" });
    expect(resolver.peek("/a")).toMatchObject({ kind: "stale", detail: "connect" });
    await settle();
    expect(calls.length).toBe(3);
  });

  test("stale_after does nothing without a stored value: the client waits for the fetch", async () => {
    const { fetcher, calls } = scripted();
    const { resolver, clock } = setup(", stale_after: 500ms", fetcher);
    let answered: unknown;
    const pending = resolver.resolve("/a").then((o) => (answered = o));
    await clock.advance(2000);
    expect(answered).toBeUndefined();
    calls[0]!.resolve(bytes("1"));
    await pending;
    expect(answered).toMatchObject({ kind: "fresh" });
  });

  test("stale_after never answers with a value older than max_stale: the request waits for the fetch, then fresh or unavailable", async () => {
    const { fetcher, calls } = scripted();
    const { resolver, clock } = setup(", stale_after: 500ms, max_stale: 10s, max_backoff: 0s, timeout: 30s", fetcher);
    const first = resolver.resolve("/a");
    calls[0]!.resolve(bytes('"old"'));
    await first;
    for (const ending of ["succeeds", "fails"] as const) {
      clock.t += 10_001; // the stored value is now older than max_stale
      let answered: Outcome | undefined;
      const pending = resolver.resolve("/a").then((o) => (answered = o));
      await clock.advance(2000); // well past stale_after
      expect(answered).toBeUndefined();
      const call = calls.at(-1)!;
      if (ending === "succeeds") call.resolve(bytes('"new"'));
      else call.reject(down());
      await pending;
      if (ending === "succeeds") {
        expect(answered).toMatchObject({ kind: "fresh" });
        expect(answered?.kind === "fresh" && text(answered.value)).toBe('"new"');
      } else {
        expect(answered).toMatchObject({ kind: "unavailable", detail: "connect" });
      }
    }
    expect(calls.length).toBe(3);
  });

  test("stale_after: 0s never answers with a value older than max_stale: no peek, the request waits for the fetch", async () => {
    const { fetcher, calls } = scripted();
    const { resolver, clock } = setup(", stale_after: 0s, max_stale: 10s, max_backoff: 0s, timeout: 30s", fetcher);
    const first = resolver.resolve("/a");
    calls[0]!.resolve(bytes('"old"'));
    await first;
    for (const ending of ["succeeds", "fails"] as const) {
      clock.t += 10_001;
      expect(resolver.peek("/a")).toBeUndefined();
      let answered: Outcome | undefined;
      const pending = resolver.resolve("/a").then((o) => (answered = o));
      await clock.advance(2000);
      expect(answered).toBeUndefined();
      const call = calls.at(-1)!;
      if (ending === "succeeds") call.resolve(bytes('"new"'));
      else call.reject(down());
      await pending;
      expect(answered).toMatchObject(ending === "succeeds" ? { kind: "fresh" } : { kind: "unavailable", detail: "connect" });
    }
  });

  test("in a backoff window, a value older than max_stale is not answered: unavailable, and after the window the request waits for the retry", async () => {
    const { fetcher, calls } = scripted();
    const { resolver, clock } = setup(", max_stale: 10s, max_backoff: 1h, timeout: 30s", fetcher);
    const first = resolver.resolve("/a");
    calls[0]!.resolve(bytes('"old"'));
    await first;
    clock.t += 10_001;
    const failing = resolver.resolve("/a");
    calls[1]!.reject(down());
    expect(await failing).toMatchObject({ kind: "unavailable", detail: "connect", retryAfter: 1 });
    // In the window: at once, and without the too old value.
    expect(resolver.peek("/a")).toMatchObject({ kind: "unavailable", detail: "backoff", retryAfter: 1 });
    expect(await resolver.resolve("/a")).toMatchObject({ kind: "unavailable", detail: "backoff" });
    expect(calls.length).toBe(2);
    // After it: no answer from the store; the request waits for the retry.
    await clock.advance(1000);
    expect(resolver.peek("/a")).toBeUndefined();
    let answered: Outcome | undefined;
    const pending = resolver.resolve("/a").then((o) => (answered = o));
    await clock.advance(500);
    expect(answered).toBeUndefined();
    expect(calls.length).toBe(3);
    calls[2]!.resolve(bytes('"new"'));
    await pending;
    expect(answered).toMatchObject({ kind: "fresh" });
  });

  test("a fetch that never returns cannot wedge the item: past its deadline, waiters fall back and a new fetch may start", async () => {
    const { fetcher, calls } = scripted();
    const { resolver, clock } = setup(", timeout: 2s, max_backoff: 0s", fetcher);
    const waiters = [resolver.resolve("/a"), resolver.resolve("/a"), resolver.resolve("/a")];
    expect(calls.length).toBe(1);
    await clock.advance(3000);
    const outcomes = await Promise.all(waiters);
    expect(outcomes.map((o) => o.kind === "unavailable" && [o.detail, o.collapsed])).toEqual([
      ["timeout", false],
      ["timeout", true],
      ["timeout", true],
    ]);
    const again = resolver.resolve("/a");
    expect(calls.length).toBe(2);
    calls[1]!.resolve(bytes("1"));
    expect((await again).kind).toBe("fresh");
  });
});

describe("a reload (reconfigure)", () => {
  const items = (paths: string[]) => check(yaml("items:", ...paths.map((p) => `  ${p}: {module: JsonHttp, disable_auth: true, parameters: {url: 'http://x${p}'}, timeout: 30s}`))).config!.items;

  test("a kept item keeps its value, its backoff and its fetch in flight; a new one is read from the store", async () => {
    const { fetcher, calls } = scripted();
    const { resolver, store, clock } = setup(", timeout: 30s", fetcher);
    const first = resolver.resolve("/a");
    calls[0]!.resolve(bytes("1"));
    await first;
    await store.put("/b", storedOf(bytes("stored b"), clock.now()));
    clock.t += 1000;
    const inflight = resolver.resolve("/a");
    expect(calls.length).toBe(2);
    await resolver.reconfigure(items(["/a", "/b"]));
    // The fetch started before the reload is the one a request after it joins.
    const joined = resolver.resolve("/a");
    expect(calls.length).toBe(2);
    calls[1]!.reject(new UpstreamFailure("connect", "ECONNREFUSED"));
    expect(await inflight).toMatchObject({ kind: "stale", detail: "connect" });
    expect(await joined).toMatchObject({ kind: "stale", collapsed: true });
    // Its backoff window stays open across another reload: no new fetch.
    await resolver.reconfigure(items(["/a", "/b"]));
    expect(resolver.peek("/a")).toMatchObject({ kind: "stale", detail: "backoff" });
    expect(calls.length).toBe(2);
    expect(text(resolver.stored("/b")!.value)).toBe("stored b");
  });

  test("an item removed while its fetch is in flight: stop() waits for it, and bringing it back joins it", async () => {
    const { fetcher, calls } = scripted();
    const { resolver } = setup(", timeout: 30s", fetcher);
    const pending = resolver.resolve("/a");
    await resolver.reconfigure(items(["/b"]));
    await resolver.reconfigure(items(["/a", "/b"]));
    const again = resolver.resolve("/a");
    expect(calls.length).toBe(1);
    await resolver.reconfigure(items(["/b"]));
    let stoppedYet = false;
    const stopped = resolver.stop().then(() => (stoppedYet = true));
    await settle();
    expect(stoppedYet).toBe(false);
    calls[0]!.resolve(bytes("1"));
    await stopped;
    expect((await pending).kind).toBe("fresh");
    expect(await again).toMatchObject({ kind: "fresh", collapsed: true });
  });
});

describe("refresh", () => {
  test("fetches at start and at each interval, never two at once, and not in a backoff window", async () => {
    const { fetcher, calls } = scripted();
    const { resolver, clock } = setup(", refresh: 10s, timeout: 30s", fetcher);
    const stopRefresh = startRefresh(resolver, clock);
    expect(calls.length).toBe(1);
    // The first fetch is slow: the next tick finds it in flight and starts none.
    await clock.advance(10_000);
    expect(calls.length).toBe(1);
    calls[0]!.resolve(bytes("1"));
    await clock.advance(10_000);
    expect(calls.length).toBe(2);
    calls[1]!.reject(down());
    await clock.advance(1);
    // Failed: a window of 1 s, which the next tick (10 s later) is past.
    await clock.advance(10_000);
    expect(calls.length).toBe(3);
    // Stopping waits for the fetch in flight, then no tick starts another.
    stopRefresh();
    let stoppedYet = false;
    const stopped = resolver.stop().then(() => (stoppedYet = true));
    await settle();
    expect(stoppedYet).toBe(false);
    calls[2]!.resolve(bytes("2"));
    await stopped;
    await clock.advance(60_000);
    expect(calls.length).toBe(3);
    expect(clock.pending()).toBe(0);
  });

  test("a tick in a backoff window leaves the upstream alone; the first tick after it asks", async () => {
    const { fetcher, calls } = scripted();
    const { resolver, clock } = setup(", refresh: 400ms, timeout: 30s", fetcher);
    const stopRefresh = startRefresh(resolver, clock);
    calls[0]!.reject(down());
    // A window of 1 s from the failure: the ticks at 400 and 800 ms start nothing, the one at 1200 ms does.
    await clock.advance(800);
    expect(calls.length).toBe(1);
    await clock.advance(400);
    expect(calls.length).toBe(2);
    stopRefresh();
    calls[1]!.resolve(bytes("1"));
    await resolver.stop();
  });
});

describe("metrics", () => {
  test("fetches by outcome, and the state of each item", async () => {
    let fail = false;
    const { resolver, metrics, clock } = setup(", max_backoff: 0s", async () => {
      if (fail) throw new UpstreamFailure("status", "503", 503);
      return bytes("1");
    });
    await resolver.resolve("/a");
    fail = true;
    await resolver.resolve("/a");
    await clock.advance(42_000);
    const text = metrics.render(resolver.states());
    expect(text).toContain('cachish_upstream_fetches_total{item="/a",outcome="ok"} 1');
    expect(text).toContain('cachish_upstream_fetches_total{item="/a",outcome="status-503"} 1');
    expect(text).toContain('cachish_stored_value_age_seconds{item="/a"} 42');
    expect(text).toContain('cachish_upstream_failing{item="/a"} 1');
  });
});

describe("the store", () => {
  test("reopened, it holds what was put", async () => {
    const dir = tempDir();
    const log = createLogger({ format: "logfmt", level: "error" }, () => {});
    const store = SqliteStore.open(dir, log);
    await store.put("/a", storedOf(bytes('{"v": 1}'), 123));
    await store.put("/a", storedOf(bytes('{"v": 2}'), 456));
    await store.close();
    const again = SqliteStore.open(dir, log);
    const all = await again.all();
    expect([...all.keys()]).toEqual(["/a"]);
    expect(text(all.get("/a")!.value)).toBe('{"v": 2}');
    expect(all.get("/a")!.fetchedAt).toBe(456);
    await again.close();
  });

  test("an item the configuration no longer has is not loaded", async () => {
    const { resolver } = setup("", async () => bytes("1"));
    resolver.take("/gone", storedOf(bytes("1"), 1));
    expect(resolver.stored("/gone")).toBeUndefined();
    expect(resolver.item("/gone") as Item | undefined).toBeUndefined();
  });
});

describe("revalidation (SPEC 5.8)", () => {
  const V1 = '{"v": 1}';
  const validators = (etag: string) => ({ etag, basis: "the-basis" });

  /**
   * A fetcher that answers a value with an ETag, then 304 to each fetch that sends it; what each
   * call was given is kept. `answer` may be changed by the test.
   */
  function revalidating() {
    const given: (string | undefined)[] = [];
    const state = { answer: "304" as "304" | "fail", etagOf304: '"e2"' as string | undefined };
    const fetcher: TestFetcher = async (_item, _now, held) => {
      given.push(held?.etag);
      if (!held) return { kind: "value", value: bytes(V1), validators: validators('"e1"') };
      if (state.answer === "fail") throw down();
      return { kind: "not-modified", validators: { ...held, ...(state.etagOf304 ? { etag: state.etagOf304 } : {}) } };
    };
    return { fetcher, given, state };
  }

  test("a 304 renews the value held: the same bytes and digest, a new fetch time and validators, fresh and counted; onChange hears nothing", async () => {
    const { fetcher, given } = revalidating();
    const { resolver, store, clock, metrics } = setup("", fetcher);
    const heard: string[] = [];
    resolver.onChange = (path) => heard.push(path);
    const first = await resolver.resolve("/a");
    expect(first).toMatchObject({ kind: "fresh", revalidated: false, replaced: false });
    const t1 = clock.now();
    await clock.advance(60_000);
    const second = await resolver.resolve("/a");
    expect(given).toEqual([undefined, '"e1"']);
    expect(second).toMatchObject({ kind: "fresh", revalidated: true, replaced: true, stored: true, collapsed: false, fetchedAt: t1 + 60_000 });
    if (second.kind !== "fresh" || first.kind !== "fresh") return;
    expect(text(second.value)).toBe(V1);
    expect(Buffer.from(second.sha256).equals(first.sha256)).toBe(true);
    expect(heard).toEqual(["/a"]);
    const row = (await store.get("/a"))!;
    expect([text(row.value), row.fetchedAt, row.validators]).toEqual([V1, t1 + 60_000, validators('"e2"')]);
    expect(resolver.stored("/a")!.validators).toEqual(validators('"e2"'));
    const shown = metrics.render(resolver.states());
    expect(shown).toContain('cachish_upstream_not_modified_total{item="/a"} 1');
    expect(shown).toContain('cachish_upstream_fetches_total{item="/a",outcome="ok"} 2');
    expect(shown).toContain('cachish_stored_value_age_seconds{item="/a"} 0');
  });

  test("a 304 without validators keeps those held; requests that joined the fetch are collapsed, all revalidated", async () => {
    const { fetcher, given, state } = revalidating();
    state.etagOf304 = undefined;
    const { resolver, clock } = setup("", fetcher);
    await resolver.resolve("/a");
    await clock.advance(1000);
    const answers = await Promise.all([resolver.resolve("/a"), resolver.resolve("/a"), resolver.resolve("/a")]);
    expect(given).toEqual([undefined, '"e1"']);
    expect(answers.map((a) => a.kind === "fresh" && [a.revalidated, a.collapsed])).toEqual([
      [true, false],
      [true, true],
      [true, true],
    ]);
    expect(resolver.stored("/a")!.validators).toEqual(validators('"e1"'));
  });

  test("the value's row is renewed in place: its chunks are not written again", async () => {
    const { fetcher } = revalidating();
    const { resolver, store, clock } = setup("", fetcher);
    await resolver.resolve("/a");
    // Any write of the value's bytes now fails, as SQLite itself sees it.
    const db = new Database(store.file, { strict: true });
    db.run("CREATE TRIGGER no_insert BEFORE INSERT ON value_chunks BEGIN SELECT RAISE(ABORT, 'chunks written'); END");
    db.run("CREATE TRIGGER no_update BEFORE UPDATE ON value_chunks BEGIN SELECT RAISE(ABORT, 'chunks written'); END");
    db.close();
    await clock.advance(5000);
    expect(await resolver.resolve("/a")).toMatchObject({ kind: "fresh", revalidated: true, stored: true });
    expect((await store.get("/a"))!.fetchedAt).toBe(clock.now());
  });

  test("a 304 ends a backoff as any success does: the next outage starts again at 1 s", async () => {
    const { fetcher, state, given } = revalidating();
    const { resolver, clock, metrics, lines } = setup(", max_backoff: 30s", fetcher);
    await resolver.resolve("/a");
    state.answer = "fail";
    for (const wait of [1000, 2000]) {
      await clock.advance(wait);
      expect(await resolver.resolve("/a")).toMatchObject({ kind: "stale", detail: "connect" });
    }
    expect(metrics.render(resolver.states())).toContain('cachish_upstream_failing{item="/a"} 1');
    state.answer = "304";
    await clock.advance(4000);
    expect(await resolver.resolve("/a")).toMatchObject({ kind: "fresh", revalidated: true });
    expect(metrics.render(resolver.states())).toContain('cachish_upstream_failing{item="/a"} 0');
    expect(lines.filter((l) => l.includes('msg="upstream recovered"'))).toHaveLength(1);
    state.answer = "fail";
    await resolver.resolve("/a");
    expect(await resolver.resolve("/a")).toMatchObject({ kind: "stale", detail: "backoff" });
    const asked = given.length;
    await clock.advance(1000);
    await resolver.resolve("/a");
    await settle();
    expect(given.length).toBe(asked + 1);
  });

  test("a 304 when no value is held (no validators were sent) is a failure, status-304", async () => {
    const { resolver, metrics } = setup("", async () => ({ kind: "not-modified", validators: validators('"e1"') }));
    expect(await resolver.resolve("/a")).toMatchObject({ kind: "unavailable", detail: "status-304", status: 304 });
    expect(metrics.render(resolver.states())).not.toContain("cachish_upstream_not_modified_total{");
  });

  test("through the real backend: a reload that changes what the value is made of (field) fetches unconditionally; one that changes only policy does not", async () => {
    const upstream = new Upstream();
    let etag = '"ab-1"';
    upstream.on("/v", (request) =>
      request.headers.get("if-none-match") === etag ? new Response(null, { status: 304, headers: { ETag: etag } }) : Response.json({ a: 1, b: 2 }, { headers: { ETag: etag } }),
    );
    const items = (more: string) => check(yaml("items:", `  /a: {module: JsonHttp, disable_auth: true, parameters: {url: '${upstream.url}/v'${more}}}`)).config!.items;
    const log = createLogger({ format: "logfmt", level: "error" }, () => {});
    const resolver = new Resolver({ items: items(""), store: SqliteStore.open(tempDir(), log), log, clock: new FakeClock() });
    const asked = () => upstream.requests("/v").map((r) => r.headers["if-none-match"] ?? "-");
    try {
      await resolver.resolve("/a");
      expect(await resolver.resolve("/a")).toMatchObject({ kind: "fresh", revalidated: true });
      await resolver.reconfigure(check(yaml("items:", `  /a: {module: JsonHttp, ttl: 0s, max_backoff: 5s, parameters: {url: '${upstream.url}/v'}}`)).config!.items);
      expect(await resolver.resolve("/a")).toMatchObject({ kind: "fresh", revalidated: true });
      await resolver.reconfigure(items(", field: [b]"));
      const picked = await resolver.resolve("/a");
      expect(picked).toMatchObject({ kind: "fresh", revalidated: false });
      expect(text((picked as { value: Uint8Array }).value)).toBe('{"b": 2}');
      expect(await resolver.resolve("/a")).toMatchObject({ kind: "fresh", revalidated: true });
      expect(asked()).toEqual(["-", '"ab-1"', '"ab-1"', "-", '"ab-1"']);
    } finally {
      await upstream.close();
    }
  });
});
