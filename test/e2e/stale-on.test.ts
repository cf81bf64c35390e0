/**
 * stale_on as clients see it (SPEC 3, 5.2, 5.3): `dist/cachish serve` against an upstream on
 * 127.0.0.1 written here, which gives each failure for real: a refused connection, a timeout,
 * statuses, a body that is not JSON, one too large, one without the field. And check-config's
 * messages and summary, from the binary.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { cachish } from "../support/cli";
import { Daemon } from "../support/daemon";
import { closedPort } from "../support/upstream";
import { tempDir } from "../support/temp";

/** What the upstream does now: a value, a status, a body of its own, or no answer (then refusing connections). */
type Mode = { value: number } | { status: number } | { body: string } | { slow: true } | { down: true };

/**
 * An upstream at a fixed port, so that it can stop listening (a refused connection) and
 * listen again. Each path answers as `modes` says.
 */
class Switchable {
  readonly modes = new Map<string, Mode>();
  seen = 0;
  #server: ReturnType<typeof Bun.serve> | undefined;

  constructor(readonly port: number) {}

  static async start(): Promise<Switchable> {
    const upstream = new Switchable(await closedPort());
    upstream.#listen();
    return upstream;
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  /** Sets what `path` answers, listening or not. */
  async set(path: string, mode: Mode): Promise<void> {
    this.modes.set(path, mode);
    const down = [...this.modes.values()].some((m) => "down" in m);
    if (down && this.#server) {
      await this.#server.stop(true);
      this.#server = undefined;
    } else if (!down && !this.#server) {
      this.#listen();
    }
  }

  #listen(): void {
    this.#server = Bun.serve({
      hostname: "127.0.0.1",
      port: this.port,
      idleTimeout: 0,
      fetch: async (request) => {
        this.seen++;
        const mode = this.modes.get(new URL(request.url).pathname) ?? { status: 404 };
        if ("slow" in mode) await Bun.sleep(1500);
        if ("value" in mode) return Response.json({ v: mode.value, other: "x".repeat(10) });
        if ("body" in mode) return new Response(mode.body, { headers: { "Content-Type": "application/json" } });
        if ("status" in mode) return new Response("no", { status: mode.status });
        return Response.json({ v: -1 });
      },
    });
  }

  async close(): Promise<void> {
    await this.#server?.stop(true);
  }
}

const upstream = await Switchable.start();
afterAll(() => upstream.close());

const SECRETS = "stale_on: [connect, timeout, status-5xx]";

/** Items fetching `field: [v]` of the upstream's path of the same name, each with its own policy lines. */
function config(items: Record<string, string>, extra = ""): string {
  const blocks = Object.entries(items).map(([path, policy]) =>
    [`  ${path}:`, "    module: JsonHttp", "    disable_auth: true", `    parameters: {url: "${upstream.url(path)}", field: [v]}`, "    timeout: 1s", "    max_body: 1KiB", ...policy.split("\n").filter(Boolean).map((l) => `    ${l}`)].join("\n"),
  );
  return `listen: 127.0.0.1:0\ncache_dir: store\n${extra}items:\n${blocks.join("\n")}\n`;
}

type Seen = { status: number; headers: Record<string, string | null>; body: string };

async function get(daemon: Daemon, path: string): Promise<Seen> {
  const res = await daemon.fetch(path);
  const headers = Object.fromEntries(["x-cache", "cache-status", "retry-after", "content-type"].map((h) => [h, res.headers.get(h)]));
  return { status: res.status, headers, body: await res.text() };
}

/** The stored value `v` answered stale after the failure `detail`. */
const stale = (v: number, detail: string): Seen => ({
  status: 200,
  headers: { "x-cache": "hit", "cache-status": `cachish; hit; detail=${detail}`, "retry-after": null, "content-type": "application/json" },
  body: `{"v": ${v}}`,
});

/** 503 after the failure `detail` (`status`: the upstream's), and `retryAfter` when a backoff window is open. */
const refused = (detail: string, status?: number, retryAfter?: number): Seen => ({
  status: 503,
  headers: {
    "x-cache": "miss",
    "cache-status": `cachish; fwd=miss${status ? `; fwd-status=${status}` : ""}; detail=${detail}`,
    "retry-after": retryAfter ? String(retryAfter) : null,
    "content-type": "text/plain; charset=utf-8",
  },
  body: "Upstream failure",
});

const fresh = (v: number): Seen => ({
  status: 200,
  headers: { "x-cache": "miss", "cache-status": "cachish; fwd=stale; fwd-status=200; stored", "retry-after": null, "content-type": "application/json" },
  body: `{"v": ${v}}`,
});

/** Each failure provoked for real, as `[connect, timeout, status-5xx]` answers it: stale, or 503. */
const FAILURES: [string, Mode, Seen][] = [
  ["a refused connection", { down: true }, stale(0, "connect")],
  ["a timeout", { slow: true }, stale(0, "timeout")],
  ["a 500", { status: 500 }, stale(0, "status-500")],
  ["a 401", { status: 401 }, refused("status-401", 401)],
  ["a 403", { status: 403 }, refused("status-403", 403)],
  ["a 404", { status: 404 }, refused("status-404", 404)],
  ["a body that is not JSON", { body: "<html>" }, refused("invalid-json")],
  ["a body over max_body", { body: JSON.stringify({ v: 1, pad: "x".repeat(2000) }) }, refused("too-large")],
  ["an answer without the field", { body: '{"w": 1}' }, refused("missing-field")],
];

describe("stale_on and ttl", () => {
  test("within ttl, a refresh's 403 ends the hits: 503 until the upstream answers again, then hits", async () => {
    await upstream.set("/revoked", { value: 7 });
    const daemon = await Daemon.start(config({ "/revoked": `${SECRETS}\nttl: 1h\nrefresh: 1s\nmax_backoff: 1s` }));
    expect((await get(daemon, "/revoked")).body).toBe('{"v": 7}');
    expect((await daemon.fetch("/revoked")).headers.get("x-cache")).toBe("hit");
    await upstream.set("/revoked", { status: 403 });
    await daemon.waitForLog("upstream failure", 5000);
    expect(await get(daemon, "/revoked")).toMatchObject({ status: 503, body: "Upstream failure", headers: { "cache-status": "cachish; fwd=miss; detail=status-403" } });
    await upstream.set("/revoked", { value: 7 });
    await daemon.waitForLog("upstream recovered", 5000);
    expect(await get(daemon, "/revoked")).toMatchObject({ status: 200, body: '{"v": 7}', headers: { "x-cache": "hit" } });
    await daemon.stop();
  });
});

describe("stale_on: [connect, timeout, status-5xx], each failure for real", () => {
  test("allowed failures answer the stored value; the others 503, and the value is kept: a later allowed failure serves it again, and a recovery fetches", async () => {
    const daemon = await Daemon.start(config({ "/s": `${SECRETS}\nmax_backoff: 0s` }));
    let v = 0;
    for (const [, mode, expected] of FAILURES) {
      await upstream.set("/s", { value: v });
      expect((await get(daemon, "/s")).body).toBe(`{"v": ${v}}`);
      await upstream.set("/s", mode);
      const seen = await get(daemon, "/s");
      expect(seen).toEqual(expected.status === 200 ? { ...expected, body: `{"v": ${v}}` } : expected);
      // Refused or not, the value is kept: a 503 of the upstream (allowed) answers it again.
      await upstream.set("/s", { status: 503 });
      expect(await get(daemon, "/s")).toEqual(stale(v, "status-503"));
      // And once the upstream recovers, its new value.
      await upstream.set("/s", { value: ++v });
      expect(await get(daemon, "/s")).toEqual(fresh(v));
    }
    // Each failure logged once, by its kind, refused or not.
    const kinds = ["connect", "timeout", "status", "status", "status", "status", "invalid-json", "too-large", "missing-field"];
    for (let waited = 0; daemon.logs("upstream failure").length < 2 * kinds.length && waited < 2000; waited += 20) await Bun.sleep(20);
    expect(daemon.logs("upstream failure").map((l) => l.failure)).toEqual(kinds.flatMap((kind) => [kind, "status"]));
    await daemon.stop();
  }, 60_000);

  test("the backoff window after a refused failure answers 503 with Retry-After, without asking the upstream; then the retry", async () => {
    const daemon = await Daemon.start(config({ "/w": SECRETS }));
    await upstream.set("/w", { value: 7 });
    await get(daemon, "/w");
    await upstream.set("/w", { status: 403 });
    expect(await get(daemon, "/w")).toEqual(refused("status-403", 403, 1));
    const asked = upstream.seen;
    for (let n = 0; n < 5; n++) expect(await get(daemon, "/w")).toEqual(refused("status-403", undefined, 1));
    expect(upstream.seen).toBe(asked);
    await Bun.sleep(1100);
    // The window over, the request waits for the retry (no stale answer meanwhile): still 403.
    expect(await get(daemon, "/w")).toEqual(refused("status-403", 403, 2));
    expect(upstream.seen).toBe(asked + 1);
    await daemon.stop();
  });

  test("after a refused failure and a restart, the store still holds the value: a refused connection answers it", async () => {
    const dir = tempDir();
    const source = config({ "/r": `${SECRETS}\nmax_backoff: 0s` });
    let daemon = await Daemon.start(source, { dir });
    await upstream.set("/r", { value: 42 });
    await get(daemon, "/r");
    await upstream.set("/r", { status: 404 });
    expect(await get(daemon, "/r")).toEqual(refused("status-404", 404));
    await daemon.stop();
    daemon = await Daemon.start(source, { dir });
    await upstream.set("/r", { down: true });
    expect(await get(daemon, "/r")).toEqual(stale(42, "connect"));
    await upstream.set("/r", { value: 43 });
    expect(await get(daemon, "/r")).toEqual(fresh(43));
    await daemon.stop();
  });
});

describe("stale_on in defaults, overridden per item", () => {
  test("defaults' list for one item, status-503 alone for another, the default [any] where defaults has none", async () => {
    const daemon = await Daemon.start(config({ "/d1": "", "/d2": "stale_on: status-503" }, `defaults: {${SECRETS}, max_backoff: 0s}\n`));
    const plain = await Daemon.start(config({ "/d3": "max_backoff: 0s" }));
    for (const path of ["/d1", "/d2", "/d3"]) await upstream.set(path, { value: 1 });
    for (const path of ["/d1", "/d2"]) await get(daemon, path);
    await get(plain, "/d3");
    for (const path of ["/d1", "/d2", "/d3"]) await upstream.set(path, { status: 502 });
    expect(await get(daemon, "/d1")).toEqual(stale(1, "status-502"));
    expect(await get(daemon, "/d2")).toEqual(refused("status-502", 502));
    expect(await get(plain, "/d3")).toEqual(stale(1, "status-502"));
    for (const path of ["/d1", "/d2", "/d3"]) await upstream.set(path, { status: 503 });
    expect(await get(daemon, "/d2")).toEqual(stale(1, "status-503"));
    for (const path of ["/d1", "/d2", "/d3"]) await upstream.set(path, { status: 403 });
    expect(await get(daemon, "/d1")).toEqual(refused("status-403", 403));
    expect(await get(daemon, "/d2")).toEqual(refused("status-403", 403));
    // 1.x's behaviour where stale_on is not set: any failure answers the stored value.
    expect(await get(plain, "/d3")).toEqual(stale(1, "status-403"));
    await Promise.all([daemon.stop(), plain.stop()]);
  });
});

describe("cachish check-config and stale_on", () => {
  test("an unknown kind: exit 1, its position and a suggestion", async () => {
    const dir = tempDir({ "cachish.yml": config({ "/k": "stale_on: [connect, timout, status-700]" }) });
    const ran = await cachish(["check-config", join(dir, "cachish.yml")]);
    expect(ran.code).toBe(1);
    expect(ran.stdout).toBe("");
    expect(ran.stderr).toBe(
      [
        `${join(dir, "cachish.yml")}:10:25: error: \`stale_on\`: unknown failure kind; did you mean \`timeout\`?`,
        `${join(dir, "cachish.yml")}:10:33: error: \`stale_on\`: \`status-NNN\` needs a status from 100 to 599`,
        `${join(dir, "cachish.yml")}: invalid (2 errors)`,
        "",
      ].join("\n"),
    );
  });

  test("the summary shows each item's stale policy: any, the list, never; --json gives the list", async () => {
    const source = config({ "/any": "", "/list": "", "/never": "stale_on: []", "/one": "stale_on: status-503" }, `defaults: {${SECRETS}}\n`).replace("  /any:", "  /any:\n    stale_on: any");
    const dir = tempDir({ "cachish.yml": source });
    const ran = await cachish(["check-config", join(dir, "cachish.yml")]);
    expect(ran.code).toBe(0);
    const items = ran.stdout.split("\n\n")[2];
    expect(items).toBe(
      [
        "items:",
        "  /any    JsonHttp  timeout 1s, ttl 0s, stale_on any, max_backoff 30s, max_body 1KiB; public",
        "  /list   JsonHttp  timeout 1s, ttl 0s, stale_on [connect, timeout, status-5xx], max_backoff 30s, max_body 1KiB; public",
        "  /never  JsonHttp  timeout 1s, ttl 0s, stale_on never, max_backoff 30s, max_body 1KiB; public",
        "  /one    JsonHttp  timeout 1s, ttl 0s, stale_on [status-503], max_backoff 30s, max_body 1KiB; public",
      ].join("\n"),
    );
    const json = await cachish(["check-config", "--json", join(dir, "cachish.yml")]);
    expect(json.code).toBe(0);
    const shown = JSON.parse(json.stdout).summary.items.map((i: { path: string; policy: { stale_on: string[] } }) => [i.path, i.policy.stale_on]);
    expect(shown).toEqual([["/any", ["any"]], ["/list", ["connect", "timeout", "status-5xx"]], ["/never", []], ["/one", ["status-503"]]]);
  });
});
