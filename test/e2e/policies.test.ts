/**
 * The policies of SPEC 5.3 as clients see them, black-box: `dist/cachish serve` against an
 * upstream written here. Times are asserted only where the behaviour is the time, with wide
 * margins.
 */
import { afterAll, describe, expect, test } from "bun:test";
import parse from "parse-prometheus-text-format";
import { Daemon } from "../support/daemon";
import { closedPort, Upstream } from "../support/upstream";

const upstream = new Upstream();
afterAll(() => upstream.close());

/** One public item at `/x` with the given policy keys, fetching `${upstream}${route}`. */
function config(policy: string, route = "/x", extra = ""): string {
  return `listen: 127.0.0.1:0\ncache_dir: store\n${extra}items:\n  /x:\n    module: JsonHttp\n    disable_auth: true\n    parameters: {url: "${route.startsWith("http") ? route : upstream.url + route}"}\n${policy
    .split("\n")
    .filter(Boolean)
    .map((l) => `    ${l}`)
    .join("\n")}\n`;
}

const timed = async (daemon: Daemon, path = "/x") => {
  const started = performance.now();
  const res = await daemon.fetch(path);
  return { res, ms: performance.now() - started, body: await res.text() };
};

describe("coalescing", () => {
  test("200 concurrent requests on an empty store cost one upstream fetch; all but one are collapsed", async () => {
    upstream.on("/burst", { body: '{"v": 1}', delayMs: 300 });
    const daemon = await Daemon.start(config("", "/burst"));
    const answers = await Promise.all(Array.from({ length: 200 }, () => daemon.fetch("/x")));
    expect(answers.every((r) => r.status === 200)).toBe(true);
    expect(upstream.requests("/burst").length).toBe(1);
    const statuses = answers.map((r) => r.headers.get("cache-status"));
    expect(statuses.filter((s) => s === "cachish; fwd=miss; fwd-status=200; stored").length).toBe(1);
    expect(statuses.filter((s) => s === "cachish; fwd=miss; fwd-status=200; stored; collapsed").length).toBe(199);
    await daemon.stop();
  });
});

describe("ttl", () => {
  test("within ttl, a hit from memory with Age and the freshness left; after it, a fetch", async () => {
    upstream.on("/ttl", { body: '{"v": 1}' });
    const daemon = await Daemon.start(config("ttl: 2s", "/ttl"));
    expect((await daemon.fetch("/x")).headers.get("x-cache")).toBe("miss");
    const hit = await daemon.fetch("/x");
    expect(hit.headers.get("x-cache")).toBe("hit");
    expect(hit.headers.get("age")).toBe("0");
    expect(hit.headers.get("cache-status")).toMatch(/^cachish; hit; ttl=[12]$/);
    expect(upstream.requests("/ttl").length).toBe(1);
    await Bun.sleep(2100);
    const again = await daemon.fetch("/x");
    expect(again.headers.get("cache-status")).toBe("cachish; fwd=stale; fwd-status=200; stored");
    expect(upstream.requests("/ttl").length).toBe(2);
    await daemon.stop();
  });
});

describe("a failing upstream", () => {
  test("refusing connections: one attempt per backoff window, stale answers at once, Cache-Status says why", async () => {
    let up = true;
    upstream.on("/refuse", () => (up ? Response.json({ v: 1 }) : new Response("down", { status: 503 })));
    const daemon = await Daemon.start(config("max_backoff: 30s", "/refuse"));
    await daemon.fetch("/x");
    up = false;
    const first = await timed(daemon);
    expect(first.res.headers.get("cache-status")).toBe("cachish; hit; detail=status-503");
    const attempts = upstream.requests("/refuse").length;
    for (let n = 0; n < 50; n++) {
      const { res, body } = await timed(daemon);
      expect(res.status).toBe(200);
      expect(body).toBe('{"v": 1}');
      expect(res.headers.get("cache-status")).toBe("cachish; hit; detail=backoff");
    }
    // The window is 1 s: within it, nobody asked the upstream.
    expect(upstream.requests("/refuse").length).toBe(attempts);
    await daemon.stop();
  });

  test("hanging: the first client waits one timeout, the next ones get the stored value at once, no new upstream request in the window", async () => {
    let hang = false;
    upstream.on("/hang", async () => {
      if (hang) await Bun.sleep(5000);
      return Response.json({ v: "kept" });
    });
    const daemon = await Daemon.start(config("timeout: 1s\nmax_backoff: 30s", "/hang"));
    await daemon.fetch("/x");
    hang = true;
    const first = await timed(daemon);
    expect(first.body).toBe('{"v": "kept"}');
    expect(first.res.headers.get("cache-status")).toBe("cachish; hit; detail=timeout");
    // Waiting is the behaviour here: one timeout (1 s), with a wide margin either way.
    expect(first.ms).toBeGreaterThan(900);
    expect(first.ms).toBeLessThan(4000);
    const requests = upstream.requests("/hang").length;
    const next = await Promise.all(Array.from({ length: 20 }, () => timed(daemon)));
    for (const n of next) {
      expect(n.body).toBe('{"v": "kept"}');
      expect(n.res.headers.get("cache-status")).toBe("cachish; hit; detail=backoff");
      expect(n.ms).toBeLessThan(500);
    }
    expect(upstream.requests("/hang").length).toBe(requests);
    await daemon.stop();
  });

  test("after the window, the retry runs in the background: the client still does not wait", async () => {
    let hang = false;
    upstream.on("/retry", async () => {
      if (hang) await Bun.sleep(3000);
      return Response.json({ v: "kept" });
    });
    const daemon = await Daemon.start(config("timeout: 1s\nmax_backoff: 30s", "/retry"));
    await daemon.fetch("/x");
    hang = true;
    await daemon.fetch("/x"); // waits one timeout; a window of 1 s opens
    await Bun.sleep(1100);
    const before = upstream.requests("/retry").length;
    const after = await timed(daemon);
    expect(after.res.headers.get("cache-status")).toBe("cachish; hit; detail=timeout");
    expect(after.ms).toBeLessThan(500);
    // The retry begins once the answer is out: it reaches the upstream just after.
    for (let i = 0; i < 50 && upstream.requests("/retry").length === before; i++) await Bun.sleep(20);
    expect(upstream.requests("/retry").length).toBe(before + 1);
    await daemon.stop();
  });

  test("a 503 in a backoff window carries Retry-After", async () => {
    const refused = await closedPort();
    const daemon = await Daemon.start(config("max_backoff: 30s", `http://127.0.0.1:${refused}/`));
    const first = await daemon.fetch("/x");
    expect(first.status).toBe(503);
    expect(first.headers.get("retry-after")).toBe("1");
    expect(first.headers.get("cache-status")).toBe("cachish; fwd=miss; detail=connect");
    const second = await daemon.fetch("/x");
    expect(second.status).toBe(503);
    expect(second.headers.get("retry-after")).toBe("1");
    expect(second.headers.get("cache-status")).toBe("cachish; fwd=miss; detail=backoff");
    expect(await second.text()).toBe("Upstream failure");
    await daemon.stop();
  });

  test("max_backoff 0s asks the upstream on every request, as 1.x did, and sends no Retry-After", async () => {
    upstream.on("/always", { status: 500, body: "down" });
    const daemon = await Daemon.start(config("max_backoff: 0s", "/always"));
    for (let n = 0; n < 5; n++) {
      const res = await daemon.fetch("/x");
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).toBeNull();
    }
    expect(upstream.requests("/always").length).toBe(5);
    await daemon.stop();
  });
});

describe("stale_after, max_stale, refresh", () => {
  test("stale_after answers from the store early; the late answer is stored", async () => {
    let version = 1;
    let slow = false;
    upstream.on("/late", async () => {
      if (slow) await Bun.sleep(1500);
      return Response.json({ version });
    });
    const daemon = await Daemon.start(config("stale_after: 200ms\ntimeout: 5s", "/late"));
    await daemon.fetch("/x");
    slow = true;
    version = 2;
    const early = await timed(daemon);
    expect(early.body).toBe('{"version": 1}');
    expect(early.res.headers.get("cache-status")).toBe("cachish; hit; detail=stale-after");
    expect(early.ms).toBeLessThan(1200);
    await Bun.sleep(1600);
    slow = false;
    version = 3;
    // The late answer (version 2) was stored: it is what the store holds now.
    upstream.on("/late", { status: 500, body: "down" });
    const stored = await daemon.fetch("/x");
    expect(await stored.text()).toBe('{"version": 2}');
    await daemon.stop();
  });

  test("stale_after: 0s answers past ttl from the store at once, while one fetch stores the new value", async () => {
    let version = 1;
    upstream.on("/swr", async () => {
      await Bun.sleep(300);
      return Response.json({ version });
    });
    const daemon = await Daemon.start(config("ttl: 1s\nstale_after: 0s", "/swr"));
    await daemon.fetch("/x");
    version = 2;
    await Bun.sleep(1100);
    const before = upstream.requests("/swr").length;
    const answers = await Promise.all(Array.from({ length: 10 }, () => timed(daemon)));
    for (const a of answers) {
      expect(a.body).toBe('{"version": 1}');
      expect(a.res.headers.get("cache-status")).toMatch(/^cachish; hit; ttl=-?\d+; detail=stale-after(; collapsed)?$/);
      // Well under the upstream's 300 ms: nobody waited for it.
      expect(a.ms).toBeLessThan(250);
    }
    await Bun.sleep(600);
    expect(upstream.requests("/swr").length).toBe(before + 1);
    const fresh = await timed(daemon);
    expect(fresh.body).toBe('{"version": 2}');
    expect(fresh.res.headers.get("cache-status")).toMatch(/^cachish; hit; ttl=\d+$/);
    await daemon.stop();
  });

  test("max_stale: a value older than it is never served", async () => {
    let up = true;
    upstream.on("/old", () => (up ? Response.json({ v: 1 }) : new Response("down", { status: 500 })));
    const daemon = await Daemon.start(config("max_stale: 1s\nmax_backoff: 0s", "/old"));
    await daemon.fetch("/x");
    up = false;
    expect((await daemon.fetch("/x")).status).toBe(200);
    await Bun.sleep(1100);
    const late = await daemon.fetch("/x");
    expect(late.status).toBe(503);
    expect(await late.text()).toBe("Upstream failure");
    await daemon.stop();
  });

  test("stale_after never answers with a value older than max_stale: the client waits for the slow fetch, then 200 fresh or 503", async () => {
    let version = 1;
    let mode: "fast" | "slow" | "slow-fail" = "fast";
    upstream.on("/aged", async () => {
      if (mode !== "fast") await Bun.sleep(700);
      return mode === "slow-fail" ? new Response("down", { status: 500 }) : Response.json({ version });
    });
    const daemon = await Daemon.start(config("stale_after: 100ms\nmax_stale: 1s\nmax_backoff: 0s\ntimeout: 5s", "/aged"));
    await daemon.fetch("/x");
    await Bun.sleep(1100); // the stored value is now older than max_stale
    mode = "slow";
    version = 2;
    const fresh = await timed(daemon);
    expect({ status: fresh.res.status, cache: fresh.res.headers.get("x-cache"), body: fresh.body }).toEqual({ status: 200, cache: "miss", body: '{"version": 2}' });
    // It waited for the upstream's 700 ms, not stale_after's 100.
    expect(fresh.ms).toBeGreaterThan(600);
    await Bun.sleep(1100);
    mode = "slow-fail";
    const failed = await timed(daemon);
    expect({ status: failed.res.status, cache: failed.res.headers.get("x-cache"), body: failed.body }).toEqual({ status: 503, cache: "miss", body: "Upstream failure" });
    expect(failed.ms).toBeGreaterThan(600);
    await daemon.stop();
  });

  test("refresh fetches at start and at its interval, so a client finds a recent value", async () => {
    upstream.on("/refresh", { body: '{"r": 1}' });
    const daemon = await Daemon.start(config("refresh: 1s\nttl: 10s", "/refresh"));
    await Bun.sleep(300);
    expect(upstream.requests("/refresh").length).toBe(1);
    const res = await daemon.fetch("/x");
    expect(res.headers.get("x-cache")).toBe("hit");
    await Bun.sleep(1500);
    expect(upstream.requests("/refresh").length).toBe(2);
    await daemon.stop();
  });
});

describe("HEAD and GET of a value answered from memory", () => {
  /** HEAD, GET, HEAD, GET...: quickly, so that some of them fall in the same second (one kept answer). */
  async function alternate(daemon: Daemon, body: string, cacheStatus: RegExp) {
    for (let n = 0; n < 3; n++) {
      for (const method of ["HEAD", "GET", "GET", "HEAD"]) {
        const res = await daemon.fetch("/x", { method, signal: AbortSignal.timeout(2000) });
        const seen = { method, status: res.status, length: res.headers.get("content-length"), body: await res.text() };
        expect(seen).toEqual({ method, status: 200, length: String(body.length), body: method === "GET" ? body : "" });
        expect(res.headers.get("cache-status")).toMatch(cacheStatus);
      }
    }
  }

  test("a hit within ttl: each GET gets the whole body and its Content-Length, each HEAD none", async () => {
    upstream.on("/head-hit", { body: '{"v": "hit me"}' });
    const daemon = await Daemon.start(config("ttl: 1h", "/head-hit"));
    expect((await daemon.fetch("/x")).headers.get("x-cache")).toBe("miss");
    await alternate(daemon, '{"v": "hit me"}', /^cachish; hit; ttl=\d+$/);
    expect(upstream.requests("/head-hit").length).toBe(1);
    await daemon.stop();
  });

  test("a stale value while the upstream fails: each GET gets the whole body and its Content-Length, each HEAD none", async () => {
    let up = true;
    upstream.on("/head-stale", () => (up ? Response.json({ v: "kept" }) : new Response("down", { status: 500 })));
    const daemon = await Daemon.start(config("max_backoff: 30s", "/head-stale"));
    await daemon.fetch("/x");
    up = false;
    expect((await daemon.fetch("/x", { method: "HEAD" })).headers.get("cache-status")).toBe("cachish; hit; detail=status-500");
    await alternate(daemon, '{"v": "kept"}', /^cachish; hit; detail=(backoff|status-500)$/);
    await daemon.stop();
  });
});

describe("/metrics", () => {
  test("after a known sequence of requests, in Prometheus' text format", async () => {
    let up = true;
    upstream.on("/m", () => (up ? Response.json({ m: 1 }) : new Response("down", { status: 502 })));
    const daemon = await Daemon.start(config("max_backoff: 30s", "/m", "auth:\n  web: {token: metrics-token-Qq1, url: /x}\n"));
    await daemon.fetch("/x");
    await daemon.fetch("/x");
    up = false;
    await daemon.fetch("/x");
    await daemon.fetch("/x");
    await daemon.fetch("/nothing");
    const res = await daemon.fetch("/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const text = await res.text();
    const families = Object.fromEntries(parse(text).map((f) => [f.name, f]));
    const samples = (name: string): Record<string, string | undefined>[] => families[name]!.metrics.map((m) => ({ ...m.labels, value: m.value }));
    expect(families.cachish_requests_total!.type).toBe("COUNTER");
    expect(samples("cachish_requests_total")).toEqual([
      { item: "/x", status: "200", cache: "fresh", value: "2" },
      { item: "/x", status: "200", cache: "stale", value: "2" },
    ]);
    expect(samples("cachish_upstream_fetches_total")).toEqual([
      { item: "/x", outcome: "ok", value: "2" },
      { item: "/x", outcome: "status-502", value: "1" },
    ]);
    expect(families.cachish_upstream_fetch_duration_seconds!.type).toBe("HISTOGRAM");
    expect(families.cachish_upstream_fetch_duration_seconds!.metrics[0]!.buckets!["+Inf"]).toBe("3");
    expect(samples("cachish_upstream_failing")).toEqual([{ item: "/x", value: "1" }]);
    // Its log is read (test/e2e/log.test.ts stalls the reader).
    expect(families.cachish_log_lines_dropped_total!.type).toBe("COUNTER");
    expect(samples("cachish_log_lines_dropped_total")).toEqual([{ value: "0" }]);
    const age = samples("cachish_stored_value_age_seconds");
    expect(age.length).toBe(1);
    expect(Number(age[0]!.value)).toBeGreaterThanOrEqual(0);
    expect(Number(age[0]!.value)).toBeLessThan(60);
    expect(text).not.toContain("metrics-token-Qq1");
    expect(text).not.toContain('"m"');
    await daemon.stop();
  });

  test("metrics: false turns /metrics off", async () => {
    upstream.on("/m2", { body: "1" });
    const daemon = await Daemon.start(config("", "/m2", "metrics: false\n"));
    expect((await daemon.fetch("/metrics")).status).toBe(404);
    await daemon.stop();
  });
});
