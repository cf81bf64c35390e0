/**
 * The HTTP handler (src/http/server.ts) in-process: requests built here, answered by the
 * handler over a resolver that answers what each test tells it to (and, last, over the real
 * one); no socket. SPEC 5.1's order (404, OPTIONS and 405, auth, the value), the daemon's own
 * paths (5.5), answers (5.2) and the one log line of each request (5.6).
 */
import { createHash } from "node:crypto";
import { storedOf } from "../../src/store/store";
import { describe, expect, test } from "bun:test";
import { handler, pathOf } from "../../src/http/server";
import { Watch } from "../../src/http/watch";
import { createLogger, type Format } from "../../src/log";
import { Metrics } from "../../src/metrics";
import { UpstreamFailure } from "../../src/backends/failure";
import { type Outcome, Resolver } from "../../src/resolver";
import { SqliteStore } from "../../src/store/sqlite";
import { FakeClock } from "../support/clock";
import { check, yaml } from "../support/config";
import { tempDir } from "../support/temp";

const NOW = 1_700_000_000_000;
const BODY = '{"v": "the value"}';
const TOKENS = { alice: "alice-Tt6y8Uu", bob: "bob-Ii9o0Pp" };

const { config } = check(
  yaml(
    "items:",
    "  /value: {module: JsonHttp, parameters: {url: 'http://127.0.0.1:9/value'}}",
    "  /other: {module: JsonHttp, parameters: {url: 'http://127.0.0.1:9/other'}}",
    "  /public: {module: JsonHttp, disable_auth: true, parameters: {url: 'http://127.0.0.1:9/public'}}",
    "  /café: {module: JsonHttp, disable_auth: true, parameters: {url: 'http://127.0.0.1:9/cafe'}}",
    "auth:",
    `  alice: {token: ${TOKENS.alice}, url: [/value, /other]}`,
    `  bob: {token: ${TOKENS.bob}, url: /value}`,
  ),
);

/** One value, as the resolver answers it: the same bytes for every request. */
const VALUE = new TextEncoder().encode(BODY);
const OUTCOMES = {
  hit: (): Outcome => ({ kind: "hit", ...storedOf(VALUE, NOW - 1500), ttl: 60_000 }),
  fresh: (): Outcome => ({ kind: "fresh", ...storedOf(VALUE, NOW), collapsed: false, replaced: true, stored: true, upstreamMs: 12 }),
  stale: (): Outcome => ({ kind: "stale", ...storedOf(VALUE, NOW - 90_000), detail: "status-500", collapsed: true, ttl: 0, upstreamMs: 7 }),
  unavailable: (): Outcome => ({ kind: "unavailable", detail: "connect", collapsed: false, retryAfter: 30 }),
};

const basic = (token: string) => `Basic ${Buffer.from(`${token}:pw`).toString("base64")}`;
const bearer = (token: string) => `Bearer ${token}`;

/** A handler over `config`, a resolver whose answers a test sets, and a log kept in `lines`. */
function daemon(options: { format?: Format; metrics?: boolean } = {}) {
  const lines: string[] = [];
  const log = createLogger({ format: options.format ?? "logfmt", level: "info" }, (line) => lines.push(line));
  /** What the resolver answers for each path: a hit from peek(), anything else from resolve(). */
  const outcomes = new Map<string, () => Outcome>([["/value", OUTCOMES.hit], ["/other", OUTCOMES.hit], ["/public", OUTCOMES.hit]]);
  const resolved: string[] = [];
  const unbounded: Request[] = [];
  let ready = true;
  const metrics = options.metrics === false ? undefined : new Metrics();
  const resolver = {
    item: (path: string) => config!.items.get(path),
    peek: (path: string) => {
      const outcome = outcomes.get(path)?.();
      return outcome?.kind === "hit" ? outcome : undefined;
    },
    resolve: async (path: string) => {
      resolved.push(path);
      return outcomes.get(path)!();
    },
    states: () => [{ path: "/value", ageSeconds: 1.5, failing: false }],
    inMemory: () => undefined,
    stored: () => undefined,
    refresh: () => {},
    onChange: undefined,
  };
  const clock = new FakeClock();
  clock.t = NOW;
  const handle = handler({
    resolver,
    clients: () => config!.clients,
    log,
    clock,
    ready: () => ready,
    watch: new Watch(resolver, clock),
    ...(metrics ? { metrics } : {}),
  });
  /** The handler's answer, and whether it came at once (no promise). */
  const call = (target: string, init: RequestInit = {}) => {
    const answer = handle(new Request(`http://cachish${target}`, init), { timeout: (request, seconds) => void (seconds === 0 && unbounded.push(request)) });
    return { answer, atOnce: answer instanceof Response };
  };
  const ask = async (target: string, init: RequestInit = {}) => {
    const response = await call(target, init).answer;
    return { status: response.status, headers: Object.fromEntries(response.headers), body: await response.text() };
  };
  /** The request lines without their time and duration, which change from run to run. */
  const requestLines = () => lines.filter((l) => l.includes("msg=request")).map((l) => l.replace(/^time=\S+ /, "").replace(/ duration_ms=\d+(\.\d)?\n$/, ""));
  return { call, ask, lines, requestLines, outcomes, resolved, unbounded, metrics, setReady: (r: boolean) => (ready = r) };
}

describe("the path a request names (SPEC 5.1)", () => {
  test("percent-decoded, runs of / as one (after decoding), query and fragment left out", () => {
    const paths = {
      "http://x/value": "/value",
      "http://x/v%61lue": "/value",
      "http://x//value": "/value",
      "http://x///a//b/": "/a/b/",
      "http://x/%2F/value": "/value",
      "http://x/%2f%2fvalue": "/value",
      "http://x/value?x=1&token=no": "/value",
      "http://x/value#fragment": "/value",
      "http://x/caf%C3%A9": "/café",
      "http://x/": "/",
    };
    expect(Object.fromEntries(Object.keys(paths).map((url) => [url, pathOf(url)]))).toEqual(paths);
  });

  test("dot segments are resolved (by the URL reader that gives request.url, as Bun's server does), before decoding", () => {
    const paths = ["/a/../value", "/./value", "/%2e%2e/value", "/a/%2E/../value"].map((path) => pathOf(new Request(`http://x${path}`).url));
    expect(paths).toEqual(["/value", "/value", "/value", "/value"]);
  });

  test("not valid percent-encoding, nor UTF-8: no path", () => {
    for (const url of ["http://x/%", "http://x/a%zz", "http://x/%FC", "http://x/caf%E9"]) expect({ url, path: pathOf(url) }).toEqual({ url, path: undefined });
  });
});

describe("routing, in SPEC 5.1's order", () => {
  test("a path that is no item: 404 before any auth, no trailing-slash or case variant", async () => {
    const { ask, resolved } = daemon();
    for (const path of ["/nothing", "/value/", "/VALUE", "/", "/-/healthy/"]) {
      for (const headers of [{}, { Authorization: "Bogus" }, { Authorization: bearer(TOKENS.alice) }] as Record<string, string>[]) {
        expect({ path, ...(await ask(path, { headers })) }).toMatchObject({ path, status: 404, body: "not found: no item is configured at this path\n", headers: { "content-type": "text/plain; charset=utf-8" } });
      }
    }
    expect(resolved).toEqual([]);
  });

  test("a path that is not valid percent-encoding: 400, logged as undecodable", async () => {
    const { ask, requestLines } = daemon();
    expect(await ask("/a%zz")).toMatchObject({ status: 400, body: "bad request: the path is not valid percent-encoding\n" });
    expect(requestLines()).toEqual(["level=info msg=request method=GET path=(undecodable) status=400 client=- auth=none cache=-"]);
  });

  test("an item asked for another way (percent-encoding, runs of /, a query, UTF-8) is that item", async () => {
    const { ask, outcomes } = daemon();
    for (const path of ["//value", "/v%61lue", "/%2F/value", "/value?token=no"]) expect({ path, status: (await ask(path, { headers: { Authorization: bearer(TOKENS.alice) } })).status }).toEqual({ path, status: 200 });
    outcomes.set("/café", OUTCOMES.hit);
    // The same character as Latin-1 (what 1.x matched) is not UTF-8: it names no path.
    expect([(await ask("/café")).status, (await ask("/caf%C3%A9")).status, (await ask("/caf%E9")).status]).toEqual([200, 200, 400]);
  });

  test("OPTIONS: 200, empty, Allow, no token; another method: 405 with the same Allow, before auth", async () => {
    const { ask, resolved } = daemon();
    expect(await ask("/value", { method: "OPTIONS" })).toEqual({ status: 200, headers: expect.objectContaining({ allow: "GET, HEAD, OPTIONS" }), body: "" });
    for (const method of ["POST", "PUT", "DELETE", "PATCH"]) {
      const answer = await ask("/value", { method });
      expect({ method, status: answer.status, allow: answer.headers.allow }).toEqual({ method, status: 405, allow: "GET, HEAD, OPTIONS" });
    }
    expect(resolved).toEqual([]);
  });

  test("an item with disable_auth needs no token, and ignores one", async () => {
    const { ask } = daemon();
    expect((await ask("/public")).status).toBe(200);
    expect((await ask("/public", { headers: { Authorization: "Bearer unknown" } })).status).toBe(200);
  });

  test("auth: 401 with WWW-Authenticate, 400 for a malformed header, the same 403 for an unknown token and one whose globs miss the path", async () => {
    const { ask, resolved } = daemon();
    const missing = await ask("/value");
    expect(missing).toMatchObject({ status: 401, headers: { "www-authenticate": 'Bearer realm="cachish"' } });
    expect((await ask("/value", { headers: { Authorization: `Bearer ${TOKENS.alice} extra` } })).status).toBe(400);
    const unknown = await ask("/value", { headers: { Authorization: "Bearer nobody-Xx1" } });
    const outside = await ask("/other", { headers: { Authorization: bearer(TOKENS.bob) } });
    expect(unknown).toMatchObject({ status: 403, body: "forbidden: this token may not read this path\n" });
    expect(outside.body).toBe(unknown.body);
    for (const answer of [missing, unknown, outside]) expect(answer.body).not.toContain("alice-");
    expect(resolved).toEqual([]);
  });
});

describe("the daemon's own paths (SPEC 5.5)", () => {
  test("/-/healthy and /-/ready: 200 with no token; /-/ready 503 while not ready; another method 405", async () => {
    const { ask, setReady } = daemon();
    expect(await ask("/-/healthy")).toMatchObject({ status: 200, body: "ok\n" });
    expect(await ask("/-/ready")).toMatchObject({ status: 200, body: "ok\n" });
    setReady(false);
    expect(await ask("/-/ready")).toMatchObject({ status: 503, body: "not ready\n" });
    expect((await ask("/-/healthy")).status).toBe(200);
    expect((await ask("/-/healthy", { method: "POST" })).headers.allow).toBe("GET, HEAD");
  });

  test("/metrics counts requests by item, status and outcome; without metrics it is a 404", async () => {
    const { ask } = daemon();
    await ask("/value", { headers: { Authorization: bearer(TOKENS.alice) } });
    await ask("/value", { headers: { Authorization: bearer(TOKENS.bob) } });
    await ask("/value");
    await ask("/value", { method: "OPTIONS" });
    await ask("/nothing");
    const metrics = await ask("/metrics");
    expect(metrics.headers["content-type"]).toBe("text/plain; version=0.0.4; charset=utf-8");
    const requests = metrics.body.split("\n").filter((l) => l.startsWith("cachish_requests_total{"));
    expect(requests).toEqual(['cachish_requests_total{item="/value",status="200",cache="hit"} 2', 'cachish_requests_total{item="/value",status="200",cache="none"} 1', 'cachish_requests_total{item="/value",status="401",cache="none"} 1']);
    expect(metrics.body).toContain('cachish_stored_value_age_seconds{item="/value"} 1.5');
    expect(await daemon({ metrics: false }).ask("/metrics")).toMatchObject({ status: 404, body: "not found: metrics are turned off (`metrics: false`)\n" });
  });
});

describe("answers (SPEC 5.2)", () => {
  test("a hit is answered at once from memory, without a promise or the resolver", async () => {
    const { call, resolved, unbounded } = daemon();
    const { answer, atOnce } = call("/public");
    expect(atOnce).toBe(true);
    const response = await answer;
    expect({ status: response.status, cache: response.headers.get("x-cache"), age: response.headers.get("age"), body: await response.text() }).toEqual({ status: 200, cache: "hit", age: "1", body: BODY });
    expect(resolved).toEqual([]);
    expect(unbounded).toEqual([]);
  });

  test("anything else waits on the resolver, without Bun's idle timeout", async () => {
    const { call, outcomes, resolved, unbounded } = daemon();
    outcomes.set("/public", OUTCOMES.fresh);
    const { answer, atOnce } = call("/public");
    expect(atOnce).toBe(false);
    const response = await answer;
    expect({ status: response.status, cache: response.headers.get("x-cache"), body: await response.text() }).toEqual({ status: 200, cache: "miss", body: BODY });
    expect(resolved).toEqual(["/public"]);
    expect(unbounded.length).toBe(1);
  });

  test("503 when no value can be given: Upstream failure, Retry-After", async () => {
    const { ask, outcomes } = daemon();
    outcomes.set("/public", OUTCOMES.unavailable);
    expect(await ask("/public")).toMatchObject({ status: 503, body: "Upstream failure", headers: { "retry-after": "30", "x-cache": "miss", "cache-status": "cachish; fwd=miss; detail=connect" } });
  });

  for (const kind of ["hit", "fresh", "stale"] as const) {
    test(`${kind}: HEADs and GETs of one value by turns: each GET has the whole body, each HEAD none, with the GET's headers and the ETag of the bytes`, async () => {
      const { ask, outcomes } = daemon();
      outcomes.set("/public", OUTCOMES[kind]);
      const get = await ask("/public");
      for (const method of ["HEAD", "GET", "GET", "HEAD", "HEAD", "GET"]) {
        const answer = await ask("/public", { method });
        expect({ method, status: answer.status, body: answer.body }).toEqual({ method, status: 200, body: method === "GET" ? BODY : "" });
        const { "content-length": length, ...headers } = answer.headers;
        const { "content-length": getLength, ...getHeaders } = get.headers;
        expect(headers).toEqual(getHeaders);
        expect(headers.etag).toBe(`"${createHash("sha256").update(BODY).digest("base64url")}"`);
        expect(length ?? String(BODY.length)).toBe(getLength ?? String(BODY.length));
      }
    });
  }
});

describe("the log: one line per request (SPEC 5.6)", () => {
  test("each line names its own client and scheme: two clients reading one item by turns, hits and stale answers", async () => {
    const { ask, outcomes, requestLines } = daemon();
    // Each client in turn, and each scheme, so that no line can take another's client.
    const turns = (["alice bearer", "bob basic", "alice basic", "bob bearer", "bob bearer", "alice bearer"] as const).map((t) => t.split(" ") as ["alice" | "bob", "bearer" | "basic"]);
    const expected: string[] = [];
    for (const kind of ["hit", "stale"] as const) {
      outcomes.set("/value", OUTCOMES[kind]);
      for (const [client, auth] of turns) {
        const header = auth === "bearer" ? bearer(TOKENS[client]) : basic(TOKENS[client]);
        expect((await ask("/value", { headers: { Authorization: header } })).status).toBe(200);
        const rest = kind === "hit" ? "cache=hit" : "cache=stale collapsed=true failure=status-500 upstream_ms=7";
        expected.push(`level=info msg=request method=GET path=/value status=200 client=${client} auth=${auth} ${rest}`);
      }
    }
    expect(requestLines()).toEqual(expected);
  });

  test("refused requests: the scheme that was tried, no client; the token never", async () => {
    const { ask, lines, requestLines } = daemon();
    await ask("/value", { headers: { Authorization: "Bearer nobody-Xx1" } });
    await ask("/value", { headers: { Authorization: basic("nobody-Xx1") } });
    await ask("/value", { method: "HEAD" });
    await ask("/value", { method: "DELETE", headers: { Authorization: bearer(TOKENS.alice) } });
    await ask("/nothing");
    expect(requestLines()).toEqual([
      "level=info msg=request method=GET path=/value status=403 client=- auth=bearer cache=-",
      "level=info msg=request method=GET path=/value status=403 client=- auth=basic cache=-",
      "level=info msg=request method=HEAD path=/value status=401 client=- auth=none cache=-",
      "level=info msg=request method=DELETE path=/value status=405 client=- auth=none cache=-",
      "level=info msg=request method=GET path=/nothing status=404 client=- auth=none cache=-",
    ]);
    expect(lines.join("")).not.toContain("nobody-Xx1");
    expect(lines.join("")).not.toContain(TOKENS.alice);
  });

  test("a line's time and duration; a long path is cut", async () => {
    const { ask, lines, requestLines } = daemon();
    await ask(`/${"x".repeat(300)}`);
    expect(lines[0]).toMatch(/^time=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=info .* duration_ms=\d+(\.\d)?\n$/);
    expect(requestLines()).toEqual([`level=info msg=request method=GET path=/${"x".repeat(199)}... status=404 client=- auth=none cache=-`]);
  });

  test("JSON lines: the same fields, in the same order, with numbers and booleans as such", async () => {
    const { ask, outcomes, lines } = daemon({ format: "json" });
    outcomes.set("/value", OUTCOMES.stale);
    await ask("/value", { headers: { Authorization: basic(TOKENS.bob) } });
    const line = JSON.parse(lines[0]!);
    expect(Object.keys(line)).toEqual(["time", "level", "msg", "method", "path", "status", "client", "auth", "cache", "collapsed", "failure", "upstream_ms", "duration_ms"]);
    expect(line).toMatchObject({ level: "info", msg: "request", method: "GET", path: "/value", status: 200, client: "bob", auth: "basic", cache: "stale", collapsed: true, failure: "status-500", upstream_ms: 7 });
    expect(typeof line.duration_ms).toBe("number");
  });
});

describe("over the real resolver", () => {
  test("in a backoff window: the stored value at once (no promise), or 503 with Retry-After; the upstream asked once", async () => {
    const log = createLogger({ format: "logfmt", level: "info" }, () => {});
    const clock = new FakeClock();
    let fetches = 0;
    const resolver = new Resolver({
      items: config!.items,
      store: SqliteStore.open(tempDir(), log),
      log,
      clock,
      fetcher: async () => {
        fetches++;
        throw new UpstreamFailure("connect", "ECONNREFUSED");
      },
    });
    resolver.take("/value", storedOf(VALUE, clock.now() - 60_000));
    const handle = handler({ resolver, clients: () => config!.clients, log, clock, ready: () => true, watch: new Watch(resolver, clock) });
    const get = (path: string) => handle(new Request(`http://cachish${path}`, { headers: { Authorization: bearer(TOKENS.alice) } }), { timeout: () => {} });
    // The first request waits for the failed fetch; it opens the window.
    expect((await get("/value")).headers.get("cache-status")).toBe("cachish; hit; detail=connect");
    const stale = get("/value");
    expect(stale).toBeInstanceOf(Response);
    expect({ status: (stale as Response).status, cache: (stale as Response).headers.get("cache-status"), body: await (stale as Response).text() }).toEqual({ status: 200, cache: "cachish; hit; detail=backoff", body: BODY });
    const none = get("/other");
    expect(none).toBeInstanceOf(Promise);
    expect((await none).status).toBe(503);
    const unavailable = get("/other");
    expect(unavailable).toBeInstanceOf(Response);
    expect({ status: (unavailable as Response).status, retry: (unavailable as Response).headers.get("retry-after") }).toEqual({ status: 503, retry: "1" });
    expect(fetches).toBe(2);
  });
});
