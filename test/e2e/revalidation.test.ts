/**
 * Upstream revalidation (SPEC 5.8) with `dist/cachish`: an upstream on 127.0.0.1 that sends an
 * ETag, a Last-Modified or both, answers 304 to a conditional request that matches, and shows
 * what it was asked; the daemon's answers to its clients, across a restart, a lost store, a
 * reload and a restart that change what a value is made of.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Daemon } from "../support/daemon";
import { conditional, Upstream } from "../support/upstream";

const upstream = new Upstream();
afterAll(() => upstream.close());

const LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT";
const VALIDATORS = {
  "/etag": { etag: '"e-1"' },
  "/last-modified": { lastModified: LAST_MODIFIED },
  "/both": { etag: 'W/"b-1"', lastModified: LAST_MODIFIED },
};
for (const [path, validators] of Object.entries(VALIDATORS)) upstream.on(path, conditional(() => ({ body: `{"path": "${path}", "a": 1, "b": 2}`, ...validators })));

function config(policy = "", more = ""): string {
  const items = Object.keys(VALIDATORS).map((path) => `  ${path}:\n    module: JsonHttp\n    disable_auth: true\n${policy}    parameters: {url: "${upstream.url}${path}"${more}}`);
  return ["listen: 127.0.0.1:0", "cache_dir: store", "items:", ...items, ""].join("\n");
}

/** What the upstream was asked for `path` since `from`: the conditional headers of each request. */
const asked = (path: string, from = 0) => upstream.requests(path).slice(from).map((r) => ({ inm: r.headers["if-none-match"], ims: r.headers["if-modified-since"] }));
/** What a client sees of an answer. */
async function seen(daemon: Daemon, path: string) {
  const res = await daemon.fetch(path);
  return { status: res.status, body: await res.text(), xcache: res.headers.get("x-cache"), age: res.headers.get("age"), cacheStatus: res.headers.get("cache-status") };
}
const body = (path: string) => `{"path": "${path}", "a": 1, "b": 2}`;
const REVALIDATED = "cachish; fwd=stale; fwd-status=304; stored";

describe("revalidation with the upstream's validators", () => {
  test("ETag, Last-Modified or both: the next fetch asks with them as received, and a 304 gives the client the same value, fetched now", async () => {
    const daemon = await Daemon.start(config("    ttl: 2s\n"));
    const from = Object.fromEntries(Object.keys(VALIDATORS).map((path) => [path, upstream.requests(path).length]));
    for (const path of Object.keys(VALIDATORS)) {
      expect(await seen(daemon, path)).toEqual({ status: 200, body: body(path), xcache: "miss", age: null, cacheStatus: "cachish; fwd=miss; fwd-status=200; stored" });
    }
    await Bun.sleep(2200);
    for (const path of Object.keys(VALIDATORS)) {
      expect(await seen(daemon, path)).toEqual({ status: 200, body: body(path), xcache: "miss", age: null, cacheStatus: REVALIDATED });
      // Its fetch time moved: a hit now is younger than a second, where without the 304 it would be two.
      expect(await seen(daemon, path)).toMatchObject({ status: 200, body: body(path), xcache: "hit", age: "0" });
    }
    expect(asked("/etag", from["/etag"])).toEqual([{ inm: undefined, ims: undefined }, { inm: '"e-1"', ims: undefined }]);
    expect(asked("/last-modified", from["/last-modified"])).toEqual([{ inm: undefined, ims: undefined }, { inm: undefined, ims: LAST_MODIFIED }]);
    expect(asked("/both", from["/both"])).toEqual([{ inm: undefined, ims: undefined }, { inm: 'W/"b-1"', ims: LAST_MODIFIED }]);
    const metrics = await (await daemon.fetch("/metrics")).text();
    for (const path of Object.keys(VALIDATORS)) {
      expect(metrics).toContain(`cachish_upstream_not_modified_total{item="${path}"} 1`);
      expect(metrics).toContain(`cachish_upstream_fetches_total{item="${path}",outcome="ok"} 2`);
    }
    expect(await daemon.stop()).toBe(0);
  }, 30_000);

  test("a restart keeps the validators: its first fetch asks with them; a lost store makes it fetch unconditionally", async () => {
    const first = await Daemon.start(config());
    expect((await seen(first, "/etag")).status).toBe(200);
    expect(await first.stop()).toBe(0);
    const from = upstream.requests("/etag").length;
    const again = await Daemon.start(config(), { dir: first.dir });
    expect(await seen(again, "/etag")).toEqual({ status: 200, body: body("/etag"), xcache: "miss", age: null, cacheStatus: REVALIDATED });
    expect(await again.stop()).toBe(0);
    rmSync(join(first.dir, "store"), { recursive: true });
    const lost = await Daemon.start(config(), { dir: first.dir });
    expect(await seen(lost, "/etag")).toEqual({ status: 200, body: body("/etag"), xcache: "miss", age: null, cacheStatus: "cachish; fwd=miss; fwd-status=200; stored" });
    expect(await lost.stop()).toBe(0);
    expect(asked("/etag", from)).toEqual([
      { inm: '"e-1"', ims: undefined },
      { inm: undefined, ims: undefined },
    ]);
  }, 30_000);

  test("a reload, or a restart, with another `field`: the next fetch does not ask with the old value's validators", async () => {
    const daemon = await Daemon.start(config());
    const from = upstream.requests("/both").length;
    await seen(daemon, "/both");
    expect((await seen(daemon, "/both")).cacheStatus).toBe(REVALIDATED);
    writeFileSync(join(daemon.dir, "cachish.yml"), config("", ", field: [b]"));
    daemon.process.kill("SIGHUP");
    await daemon.waitForLog("reloaded");
    expect(await seen(daemon, "/both")).toMatchObject({ status: 200, body: '{"b": 2}', cacheStatus: "cachish; fwd=stale; fwd-status=200; stored" });
    expect((await seen(daemon, "/both")).cacheStatus).toBe(REVALIDATED);
    expect(await daemon.stop()).toBe(0);
    const restarted = await Daemon.start(config("", ", field: [a]"), { dir: daemon.dir });
    expect(await seen(restarted, "/both")).toMatchObject({ status: 200, body: '{"a": 1}', cacheStatus: "cachish; fwd=stale; fwd-status=200; stored" });
    expect(await restarted.stop()).toBe(0);
    expect(asked("/both", from).map((r) => r.inm ?? "-")).toEqual(["-", 'W/"b-1"', "-", 'W/"b-1"', "-"]);
  }, 30_000);

  test("an upstream that answers 304 to a request that asked nothing: a failure, status-304", async () => {
    upstream.on("/broken", () => new Response(null, { status: 304, headers: { ETag: '"x"' } }));
    const daemon = await Daemon.start(["listen: 127.0.0.1:0", "cache_dir: store", "items:", "  /broken:", "    module: JsonHttp", "    disable_auth: true", `    parameters: {url: "${upstream.url}/broken"}`, ""].join("\n"));
    const res = await daemon.fetch("/broken");
    expect([res.status, await res.text(), res.headers.get("x-cache"), res.headers.get("cache-status")]).toEqual([503, "Upstream failure", "miss", "cachish; fwd=miss; fwd-status=304; detail=status-304"]);
    expect(await daemon.stop()).toBe(0);
    expect(daemon.logs("upstream failure").map((l) => [l.item, l.failure, l.status])).toEqual([["/broken", "status", "304"]]);
  }, 30_000);
});
