/**
 * Long polls (SPEC 5.8) against `dist/cachish serve` and an upstream on 127.0.0.1: a value
 * changing mid-wait, a wait timing out, a client vanishing, a reload and a stop, a wait longer
 * than Bun's 10 s idle timeout, and the refreshes that waiting clients cause.
 */
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "bun:test";
import { Daemon } from "../support/daemon";
import { Upstream } from "../support/upstream";

const upstream = new Upstream();
afterAll(() => upstream.close());

const TOKENS = { web: "web-Lp4o2Ki8", leaving: "leaving-Mn6b3Vc1" };

/** Items on the test's own upstream paths; `leaving` is a client a reload may remove. */
function config(path: string, policy = "ttl: 1s", clients = ["web", "leaving"]): string {
  const auth = clients.map((name) => `  ${name}: {token: ${TOKENS[name as keyof typeof TOKENS]}, url: "*"}`);
  return ["listen: 127.0.0.1:0", "cache_dir: store", "items:", `  ${path}:`, "    module: JsonHttp", `    ${policy}`, `    parameters: {url: "${upstream.url}${path}"}`, "auth:", ...auth, ""].join("\n");
}

const etagOf = (body: string) => `"${createHash("sha256").update(body).digest("base64url")}"`;

type Answer = { status: number; headers: Record<string, string>; body: string; ms: number };

/** A long poll: GET with If-None-Match and Prefer: wait=N; its answer and how long it took. */
async function poll(daemon: Daemon, path: string, etag: string, wait: number, init: { token?: string; signal?: AbortSignal } = {}): Promise<Answer> {
  const started = performance.now();
  const res = await daemon.fetch(path, { token: init.token ?? TOKENS.web, headers: { "If-None-Match": etag, Prefer: `wait=${wait}` }, ...(init.signal ? { signal: init.signal } : {}) });
  const body = await res.text();
  return { status: res.status, headers: Object.fromEntries(res.headers), body, ms: performance.now() - started };
}

/** The value of cachish_waiting_clients for `item`. */
async function waiting(daemon: Daemon, item: string): Promise<number> {
  const text = await (await daemon.fetch("/metrics")).text();
  return Number(new RegExp(`^cachish_waiting_clients\\{item="${item}"\\} (\\d+)$`, "m").exec(text)?.[1] ?? Number.NaN);
}

/** Waits until the gauge shows `n` waiters of `item` (at most 5 s). */
async function untilWaiting(daemon: Daemon, item: string, n: number): Promise<void> {
  const end = Date.now() + 5000;
  while ((await waiting(daemon, item)) !== n) {
    if (Date.now() > end) throw new Error(`cachish_waiting_clients{item="${item}"} did not reach ${n}`);
    await Bun.sleep(20);
  }
}

describe("long polls", () => {
  test("the value changes mid-wait: 200 at once with the new value, its ETag, Preference-Applied; the gauge counts the waiter meanwhile", async () => {
    upstream.json("/changing", { n: 1 });
    const daemon = await Daemon.start(config("/changing"));
    const first = await daemon.fetch("/changing", { token: TOKENS.web });
    expect(first.headers.get("etag")).toBe(etagOf('{"n": 1}'));
    const answer = poll(daemon, "/changing", first.headers.get("etag")!, 60);
    await untilWaiting(daemon, "/changing", 1);
    upstream.json("/changing", { n: 2 });
    // ttl 1s: the waiter keeps the item refreshed every second.
    const changed = await answer;
    expect({ status: changed.status, body: changed.body, etag: changed.headers.etag, applied: changed.headers["preference-applied"], cache: changed.headers["x-cache"] }).toEqual({
      status: 200,
      body: '{"n": 2}',
      etag: etagOf('{"n": 2}'),
      applied: "wait=60",
      cache: "hit",
    });
    expect(changed.ms).toBeLessThan(5000);
    expect(await waiting(daemon, "/changing")).toBe(0);
    expect(await daemon.stop()).toBe(0);
  });

  test("N seconds pass: 304 with Preference-Applied; one log line, at its end, with its real duration", async () => {
    upstream.json("/still", { same: true });
    const daemon = await Daemon.start(config("/still", "ttl: 1h"));
    const etag = (await daemon.fetch("/still", { token: TOKENS.web })).headers.get("etag")!;
    const answer = await poll(daemon, "/still", etag, 1);
    expect({ status: answer.status, body: answer.body, etag: answer.headers.etag, applied: answer.headers["preference-applied"], type: answer.headers["content-type"] }).toEqual({ status: 304, body: "", etag, applied: "wait=1", type: undefined });
    // The wait is the behaviour here: 1 s, with room for a busy machine.
    expect(answer.ms).toBeGreaterThanOrEqual(990);
    expect(answer.ms).toBeLessThan(4000);
    await Bun.sleep(100);
    const lines = daemon.logs("request").filter((l) => l.status === "304");
    expect(lines.length).toBe(1);
    expect(lines[0]).toMatchObject({ method: "GET", path: "/still", client: "web", auth: "bearer", cache: "hit" });
    expect(Number(lines[0]!.duration_ms)).toBeGreaterThanOrEqual(990);
    expect(await daemon.stop()).toBe(0);
  });

  test("a client that vanishes leaves nothing: the gauge drops to 0, its line says 499", async () => {
    upstream.json("/vanish", { v: 1 });
    const daemon = await Daemon.start(config("/vanish", "ttl: 1h"));
    const etag = (await daemon.fetch("/vanish", { token: TOKENS.web })).headers.get("etag")!;
    const abort = new AbortController();
    const answer = poll(daemon, "/vanish", etag, 60, { signal: abort.signal }).catch((error: Error) => error.name);
    await untilWaiting(daemon, "/vanish", 1);
    abort.abort();
    expect(await answer).toBe("AbortError");
    await untilWaiting(daemon, "/vanish", 0);
    const end = Date.now() + 2000;
    while (!daemon.logs("request").some((l) => l.status === "499") && Date.now() < end) await Bun.sleep(20);
    expect(daemon.logs("request").filter((l) => l.path === "/vanish").map((l) => ({ status: l.status, client: l.client, cache: l.cache }))).toEqual([
      { status: "200", client: "web", cache: "fresh" },
      { status: "499", client: "web", cache: "hit" },
    ]);
    expect(await daemon.stop()).toBe(0);
  });

  test("a wait longer than Bun's 10 s idle timeout is not cut", async () => {
    upstream.json("/long", { long: 1 });
    const daemon = await Daemon.start(config("/long", "ttl: 1h"));
    const etag = (await daemon.fetch("/long", { token: TOKENS.web })).headers.get("etag")!;
    const answer = await poll(daemon, "/long", etag, 12);
    expect({ status: answer.status, applied: answer.headers["preference-applied"] }).toEqual({ status: 304, applied: "wait=12" });
    expect(answer.ms).toBeGreaterThanOrEqual(11_990);
    expect(await daemon.stop()).toBe(0);
  }, 30_000);
});

describe("waiting clients and the upstream", () => {
  test("while clients wait, the item is refreshed at its ttl; 200 waiters cost one fetch per interval; none once nobody waits", async () => {
    upstream.json("/watched", { w: 1 });
    const daemon = await Daemon.start(config("/watched", "ttl: 1s"));
    const etag = (await daemon.fetch("/watched", { token: TOKENS.web })).headers.get("etag")!;
    const before = upstream.requests("/watched").length;
    const started = performance.now();
    const answers = await Promise.all(Array.from({ length: 200 }, () => poll(daemon, "/watched", etag, 4)));
    const during = upstream.requests("/watched").length - before;
    const seconds = (performance.now() - started) / 1000;
    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 304));
    // One fetch a second for 4 s, give or take one at each end: not one per waiter.
    expect(during).toBeGreaterThanOrEqual(3);
    expect(during).toBeLessThanOrEqual(Math.ceil(seconds) + 1);
    await Bun.sleep(2500);
    expect(upstream.requests("/watched").length - before).toBe(during);
    expect(await daemon.stop()).toBe(0);
   }, 20_000);
});

describe("a reload and a stop", () => {
  test("SIGHUP: every waiter is answered 304 at once; asking again, a token the reload revoked gets 403, the others wait again", async () => {
    upstream.json("/reloaded", { r: 1 });
    const daemon = await Daemon.start(config("/reloaded", "ttl: 1h"));
    const etag = (await daemon.fetch("/reloaded", { token: TOKENS.web })).headers.get("etag")!;
    const answers = [poll(daemon, "/reloaded", etag, 60), poll(daemon, "/reloaded", etag, 60, { token: TOKENS.leaving })];
    await untilWaiting(daemon, "/reloaded", 2);
    writeFileSync(join(daemon.dir, "cachish.yml"), config("/reloaded", "ttl: 1h", ["web"]));
    const reloaded = performance.now();
    daemon.process.kill("SIGHUP");
    for (const answer of await Promise.all(answers)) {
      expect({ status: answer.status, applied: answer.headers["preference-applied"], etag: answer.headers.etag }).toEqual({ status: 304, applied: "wait=60", etag });
    }
    expect(performance.now() - reloaded).toBeLessThan(5000);
    expect((await poll(daemon, "/reloaded", etag, 60, { token: TOKENS.leaving })).status).toBe(403);
    const again = poll(daemon, "/reloaded", etag, 60);
    await untilWaiting(daemon, "/reloaded", 1);
    const stopped = daemon.stop();
    expect((await again).status).toBe(304);
    expect(await stopped).toBe(0);
  });

  test("SIGTERM: every waiter is answered 304 at once, before the server stops, and the daemon exits 0 without waiting for their N seconds", async () => {
    upstream.json("/stopping", { s: 1 });
    const daemon = await Daemon.start(config("/stopping", "ttl: 1h"));
    const etag = (await daemon.fetch("/stopping", { token: TOKENS.web })).headers.get("etag")!;
    const answers = Array.from({ length: 20 }, () => poll(daemon, "/stopping", etag, 300));
    await untilWaiting(daemon, "/stopping", 20);
    const signalled = performance.now();
    const code = daemon.stop("SIGTERM");
    for (const answer of await Promise.all(answers)) expect({ status: answer.status, applied: answer.headers["preference-applied"] }).toEqual({ status: 304, applied: "wait=300" });
    expect(await code).toBe(0);
    expect(performance.now() - signalled).toBeLessThan(5000);
    expect(daemon.logs().map((l) => l.msg).slice(-1)).toEqual(["stopped"]);
    expect(daemon.logs("request").filter((l) => l.status === "304").length).toBe(20);
  });
});
