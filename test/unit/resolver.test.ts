/**
 * The resolver in-process: a clock the test moves, a fetcher the test scripts (the backend
 * seam), and the real SQLite store in a temp folder.
 */
import { describe, expect, test } from "bun:test";
import { UpstreamFailure } from "../../src/backends/failure";
import type { Item } from "../../src/config/types";
import { createLogger } from "../../src/log";
import { type Fetcher, Resolver } from "../../src/resolver";
import { SqliteStore } from "../../src/store/sqlite";
import { check, yaml } from "../support/config";
import { tempDir } from "../support/temp";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const bytes = (s: string) => new TextEncoder().encode(s);

function setup(policy = "", fetcher: Fetcher) {
  const { config } = check(yaml("items:", `  /a: {module: JsonHttp, disable_auth: true, parameters: {url: 'http://x/a'}${policy}}`));
  const lines: string[] = [];
  const log = createLogger({ format: "logfmt", level: "debug" }, (line) => lines.push(line));
  const store = SqliteStore.open(tempDir(), log);
  const clock = { t: 1_000_000, now() { return this.t; } };
  const resolver = new Resolver(config!.items, store, log, clock, fetcher);
  return { resolver, store, clock, lines };
}

describe("the resolver", () => {
  test("a fetch: fresh, written to the store before it is returned", async () => {
    const { resolver, store } = setup("", async () => bytes('{"v": 1}'));
    const outcome = await resolver.resolve("/a");
    expect(outcome).toMatchObject({ kind: "fresh", collapsed: false, replaced: false });
    expect(text((await store.get("/a"))!.value)).toBe('{"v": 1}');
    expect(await resolver.resolve("/a")).toMatchObject({ kind: "fresh", replaced: true });
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
    expect(stale.failure.detail).toBe("status-500");
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

  test("a corrupt value in the store is ignored and logged", async () => {
    const { resolver, lines } = setup("", async () => bytes("1"));
    await resolver.load(new Map([["/a", { value: bytes("{not json"), fetchedAt: 1 }]]));
    expect(resolver.stored("/a")).toBeUndefined();
    expect(lines.some((l) => l.includes("level=error") && l.includes("item=/a"))).toBe(true);
  });
});

describe("the store", () => {
  test("reopened, it holds what was put", async () => {
    const dir = tempDir();
    const log = createLogger({ format: "logfmt", level: "error" }, () => {});
    const store = SqliteStore.open(dir, log);
    await store.put("/a", { value: bytes('{"v": 1}'), fetchedAt: 123 });
    await store.put("/a", { value: bytes('{"v": 2}'), fetchedAt: 456 });
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
    await resolver.load(new Map([["/gone", { value: bytes("1"), fetchedAt: 1 }]]));
    expect(resolver.stored("/gone")).toBeUndefined();
    expect(resolver.item("/gone") as Item | undefined).toBeUndefined();
  });
});
