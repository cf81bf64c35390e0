/**
 * stale_on carried out by the resolver (SPEC 3, 5.3): a clock the test moves, a fetcher the
 * test scripts (the backend seam) and the real SQLite store. The rule itself is policy.ts's,
 * tested as a table in policy.test.ts; here, that the resolver counts each failure as the
 * rule needs and that the stored value outlives a refused failure.
 */
import { describe, expect, test } from "bun:test";
import { type FailureKind, UpstreamFailure } from "../../src/backends/failure";
import { createLogger } from "../../src/log";
import { type Outcome, Resolver } from "../../src/resolver";
import { asFetcher, type TestFetcher } from "../support/fetcher";
import { SqliteStore } from "../../src/store/sqlite";
import { FakeClock, settle } from "../support/clock";
import { CLIENT, check, ITEM, yaml } from "../support/config";
import { tempDir } from "../support/temp";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const VALUE = '{"v": 1}';
const SECRETS = "stale_on: [connect, timeout, status-5xx]";

/** What the upstream does at each fetch: a value, a failure thrown as the backends throw it, or an answer yet to come. */
type Step = string | Error | Promise<Uint8Array>;

/** A resolver for item `/a` with `policy`, whose fetches follow `steps` in turn (the last one repeats). */
function setup(policy: string, steps: Step[]) {
  const { config } = check(yaml("items:", `  /a: {module: JsonHttp, disable_auth: true, parameters: {url: 'http://x/a'}, ${policy}}`));
  const log = createLogger({ format: "logfmt", level: "error" }, () => {});
  const store = SqliteStore.open(tempDir(), log);
  const clock = new FakeClock();
  let calls = 0;
  const fetcher: TestFetcher = async () => {
    const step = steps[Math.min(calls++, steps.length - 1)]!;
    if (typeof step === "string") return new TextEncoder().encode(step);
    if (step instanceof Promise) return step;
    throw step;
  };
  const resolver = new Resolver({ items: config!.items, store, log, clock, fetcher: asFetcher(fetcher) });
  return { resolver, store, clock, calls: () => calls };
}

const failure = (kind: FailureKind, status?: number) => new UpstreamFailure(kind, `a ${kind} failure`, status);
const refused = (detail: string, status?: number) => ({ kind: "unavailable", detail, ...(status ? { status } : {}), collapsed: false, retryAfter: 1 });
const stale = (detail: string) => ({ kind: "stale", detail, collapsed: false, value: new TextEncoder().encode(VALUE) });

/** Each failure the upstream can give, with `stale_on: [connect, timeout, status-5xx]`. */
const KINDS: [string, UpstreamFailure, "stale" | "unavailable"][] = [
  ["connect", failure("connect"), "stale"],
  ["timeout", failure("timeout"), "stale"],
  ["status-500", failure("status", 500), "stale"],
  ["status-503", failure("status", 503), "stale"],
  ["status-401", failure("status", 401), "unavailable"],
  ["status-403", failure("status", 403), "unavailable"],
  ["status-404", failure("status", 404), "unavailable"],
  ["invalid-json", failure("invalid-json"), "unavailable"],
  ["too-large", failure("too-large"), "unavailable"],
  ["missing-field", failure("missing-field"), "unavailable"],
];

describe("stale_on in the resolver", () => {
  test.each(KINDS.map(([detail, thrown, answer]) => [`a stored value, then ${detail}: ${answer}; the store keeps the value`, detail, thrown, answer] as const))("%s", async (_, detail, thrown, answer) => {
    const { resolver, store, clock } = setup(SECRETS, [VALUE, thrown]);
    const fetched = await resolver.resolve("/a");
    clock.t += 5000;
    const outcome = await resolver.resolve("/a");
    expect(outcome).toMatchObject(answer === "stale" ? stale(detail) : refused(detail, thrown.status));
    // Read from the SQLite file: the value, and when it was fetched, are as before the failure.
    const kept = await store.get("/a");
    expect([text(kept!.value), kept!.fetchedAt]).toEqual([VALUE, fetched.kind === "fresh" ? fetched.fetchedAt : -1]);
  });

  test("a refused failure: 503 through its backoff window (Retry-After, no fetch), a retry after it, and a success serves again", async () => {
    const { resolver, clock, calls } = setup(SECRETS, [VALUE, failure("status", 403), '{"v": 2}']);
    await resolver.resolve("/a");
    clock.t += 5000;
    expect(await resolver.resolve("/a")).toMatchObject(refused("status-403", 403));
    // In the window: answered from memory at once, the failure named, not the stored value.
    await clock.advance(500);
    expect(resolver.peek("/a")).toEqual({ kind: "unavailable", detail: "status-403", collapsed: false, retryAfter: 1 });
    expect(await resolver.resolve("/a")).toEqual({ kind: "unavailable", detail: "status-403", collapsed: false, retryAfter: 1 });
    // A long poll is not handed the withheld value either.
    expect(resolver.inMemory("/a")?.kind).toBe("unavailable");
    expect(calls()).toBe(2);
    await clock.advance(500);
    // After the window: no stale answer while the retry runs; the request waits for it.
    expect(resolver.peek("/a")).toBeUndefined();
    expect(resolver.inMemory("/a")).toBeUndefined();
    const retried = await resolver.resolve("/a");
    expect(retried.kind === "fresh" && text(retried.value)).toBe('{"v": 2}');
    expect(calls()).toBe(3);
    // The success ends the refusal: a long poll is handed the value again.
    expect(resolver.inMemory("/a")).toMatchObject({ kind: "hit" });
  });

  test("a refused failure, then an allowed one: the kept value is served again", async () => {
    const { resolver, clock } = setup(SECRETS, [VALUE, failure("status", 404), failure("connect")]);
    await resolver.resolve("/a");
    expect(await resolver.resolve("/a")).toMatchObject(refused("status-404", 404));
    await clock.advance(1000);
    expect(await resolver.resolve("/a")).toMatchObject({ ...stale("connect"), kind: "stale" });
    // Its backoff window serves the stored value, as after any allowed failure.
    expect(resolver.peek("/a")).toMatchObject(stale("backoff"));
  });

  test("a failure of ours (internal) after a refused one does not serve the value again", async () => {
    const { resolver, clock } = setup(SECRETS, [VALUE, failure("status", 403), new Error("a bug")]);
    await resolver.resolve("/a");
    await resolver.resolve("/a");
    await clock.advance(1000);
    expect(await resolver.resolve("/a")).toEqual({ kind: "unavailable", detail: "internal", collapsed: false, upstreamMs: 0, retryAfter: 2 });
    // Its window names the upstream's refused failure, which still stands.
    expect(resolver.peek("/a")).toMatchObject({ kind: "unavailable", detail: "status-403", retryAfter: 2 });
  });

  test("a failure of ours with no refused one before it is answered stale, whatever stale_on says", async () => {
    const { resolver } = setup("stale_on: []", [VALUE, new Error("a bug")]);
    await resolver.resolve("/a");
    expect(await resolver.resolve("/a")).toMatchObject(stale("internal"));
  });

  test("stale_on: [] answers 503 after every failure of the upstream, and keeps the value", async () => {
    const { resolver, store } = setup("stale_on: []", [VALUE, failure("connect")]);
    await resolver.resolve("/a");
    expect(await resolver.resolve("/a")).toMatchObject(refused("connect"));
    expect(text((await store.get("/a"))!.value)).toBe(VALUE);
  });

  test("stale_after is no failure: a slow upstream is answered from the store, whatever stale_on says", async () => {
    let release = (_: Uint8Array) => {};
    const slow = new Promise<Uint8Array>((resolve) => (release = resolve));
    const { resolver, clock } = setup("stale_on: [], stale_after: 500ms", [VALUE, slow]);
    await resolver.resolve("/a");
    let outcome: Outcome | undefined;
    const pending = resolver.resolve("/a").then((o) => (outcome = o));
    await clock.advance(500);
    await pending;
    expect(outcome).toMatchObject(stale("stale-after"));
    release(new TextEncoder().encode("2"));
    await settle();
  });
});

describe("stale_on in the configuration", () => {
  const file = (...extra: string[]) => yaml("items:", ...ITEM, ...extra, "auth:", ...CLIENT);
  const policyOf = (source: string, path = "/a") => check(source).config?.items.get(path)?.policy.stale_on;

  test("each unknown kind is an error at its position, with a suggestion where one is close; status-NNN from 100 to 599", () => {
    expect(check(file("    stale_on: [connect, timout, status-600, revoked, Status-5XX, status-100]")).problems).toEqual([
      "6:25: error: `stale_on`: unknown failure kind; did you mean `timeout`?",
      "6:33: error: `stale_on`: `status-NNN` needs a status from 100 to 599",
      "6:45: error: `stale_on`: unknown failure kind; the kinds are `any`, `connect`, `timeout`, `status-5xx`, `status-4xx`, `invalid-json`, `too-large`, `missing-field`, `command`, `status-NNN`",
      "6:54: error: `stale_on`: unknown failure kind; did you mean `status-5xx`?",
    ]);
  });

  test("in defaults too, where it is written", () => {
    expect(check(yaml("defaults:", "  stale_on: conect", "items:", ...ITEM, "auth:", ...CLIENT)).problems).toEqual([
      "2:13: error: `stale_on`: unknown failure kind; did you mean `connect`?",
    ]);
  });

  test("any beside other kinds is a warning, given once where it is written", () => {
    const source = yaml("defaults:", "  stale_on: [connect, any]", "items:", ...ITEM, "  /b: {module: JsonHttp, parameters: {url: 'http://x/b'}}", "auth: {web: {token: t, url: /*}}");
    expect(check(source).problems).toEqual(["2:13: warning: `stale_on` holds `any`, which already lets every failure be answered stale: the other kinds add nothing"]);
  });

  test("[] is accepted, without a warning: no failure is answered stale", () => {
    const { problems, config } = check(file("    stale_on: []"));
    expect(problems).toEqual([]);
    expect(config!.items.get("/a")!.policy.stale_on).toEqual([]);
  });

  test("the default is [any]; one kind may be written alone; an item's own list wins over defaults'", () => {
    expect(policyOf(file())).toEqual(["any"]);
    expect(policyOf(file("    stale_on: timeout"))).toEqual(["timeout"]);
    const source = yaml(
      "defaults: {stale_on: [connect, timeout, status-5xx]}",
      "items:",
      "  /a: {module: JsonHttp, parameters: {url: 'http://x/a'}}",
      "  /b: {module: JsonHttp, parameters: {url: 'http://x/b'}, stale_on: [status-503]}",
      "auth: {web: {token: t, url: /*}}",
    );
    expect([policyOf(source, "/a"), policyOf(source, "/b")]).toEqual([["connect", "timeout", "status-5xx"], ["status-503"]]);
  });
});
