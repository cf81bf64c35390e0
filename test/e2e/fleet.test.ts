/**
 * A fleet of `dist/cachish` processes sharing one real PostgreSQL (SPEC 5.7), started here
 * from Debian's packages in a temp folder on 127.0.0.1. Without PostgreSQL the tests are
 * skipped, and their name says why.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createCipheriv } from "node:crypto";
import { Daemon } from "../support/daemon";
import { cachish } from "../support/cli";
import { findPostgres, Postgres } from "../support/postgres";
import { tempDir } from "../support/temp";
import { Upstream } from "../support/upstream";

const found = findPostgres();
const fleet = "bin" in found ? describe : describe.skip;
const title = "bin" in found ? "a fleet on one PostgreSQL" : `a fleet on one PostgreSQL (skipped: ${found.missing})`;

const KEY = Buffer.alloc(32, 42).toString("base64");
const upstream = new Upstream();
let pg: Postgres;

beforeAll(async () => {
  if ("bin" in found) pg = await Postgres.start(found.bin, tempDir());
});
afterAll(async () => {
  pg?.stopServer();
  await upstream.close();
});

/** A host of the fleet: its own store, the shared database, one public item per path. */
function host(items: Record<string, { route: string; policy?: string }>, timeout = "2s", url = pg.url): Promise<Daemon> {
  const lines = ["listen: 127.0.0.1:0", "cache_dir: store", "shared_store:", "  url: {env: FLEET_URL}", "  key: {env: FLEET_KEY}", `  timeout: ${timeout}`, "items:"];
  for (const [path, { route, policy }] of Object.entries(items)) {
    lines.push(`  ${path}:`, "    module: JsonHttp", "    disable_auth: true", `    parameters: {url: "${upstream.url}${route}"}`, ...(policy ?? "").split("\n").filter(Boolean).map((l) => `    ${l}`));
  }
  return Daemon.start(`${lines.join("\n")}\n`, { env: { FLEET_URL: url, FLEET_KEY: KEY } });
}

const text = async (daemon: Daemon, path: string) => {
  const res = await daemon.fetch(path);
  return { status: res.status, body: await res.text(), xcache: res.headers.get("x-cache") };
};

fleet(title, () => {
  test("a value fetched by one host is served by another with the upstream down, without asking it", async () => {
    upstream.json("/a", { fleet: "a1" });
    const a = await host({ "/a": { route: "/a" } });
    const b = await host({ "/a": { route: "/a" } });
    await a.waitForLog("shared store connected");
    await b.waitForLog("shared store connected");
    expect(await text(a, "/a")).toMatchObject({ status: 200, body: '{"fleet": "a1"}' });
    upstream.on("/a", { status: 503, body: "down" });
    // B heard of the value (LISTEN/NOTIFY) and took it into its own store.
    await Bun.sleep(300);
    const before = upstream.requests("/a").length;
    await b.stop();
    const b2 = await Daemon.start(await Bun.file(`${b.dir}/cachish.yml`).text(), { dir: b.dir, env: { FLEET_URL: "postgres://nobody:x@127.0.0.1:1/none", FLEET_KEY: KEY } });
    // Even with the database out of reach, B's local store has the fleet's value.
    expect(await text(b2, "/a")).toMatchObject({ status: 200, body: '{"fleet": "a1"}', xcache: "hit" });
    expect(upstream.requests("/a").length).toBe(before + 1);
    await a.stop();
    await b2.stop();
  }, 30_000);

  test("a new host with an empty store, started during an outage, serves the fleet's last good value", async () => {
    upstream.json("/b", { fleet: "b1" });
    const a = await host({ "/b": { route: "/b" } });
    expect(await text(a, "/b")).toMatchObject({ status: 200 });
    await Bun.sleep(200);
    upstream.on("/b", { status: 503, body: "down" });
    const fresh = await host({ "/b": { route: "/b" } });
    expect(await text(fresh, "/b")).toMatchObject({ status: 200, body: '{"fleet": "b1"}', xcache: "hit" });
    await a.stop();
    await fresh.stop();
  }, 30_000);

  test("three hosts under concurrent requests cost the upstream one fetch per freshness window", async () => {
    upstream.on("/c", { body: '{"fleet": "c1"}', delayMs: 300 });
    const hosts = await Promise.all([1, 2, 3].map(() => host({ "/c": { route: "/c", policy: "ttl: 1h\ntimeout: 5s" } })));
    await Promise.all(hosts.map((h) => h.waitForLog("shared store connected")));
    const answers = await Promise.all(hosts.flatMap((h) => Array.from({ length: 20 }, () => text(h, "/c"))));
    expect(answers.every((a) => a.status === 200 && a.body === '{"fleet": "c1"}')).toBe(true);
    expect(upstream.requests("/c").length).toBe(1);
    // The host that fetched saved nothing; the two others saved their fetch.
    let saved = 0;
    for (const h of hosts) {
      const metrics = await (await h.fetch("/metrics")).text();
      expect(metrics).toContain("cachish_shared_store_up 1");
      saved += Number(/^cachish_shared_fetches_saved_total\{item="\/c"\} (\d+)$/m.exec(metrics)?.[1] ?? 0);
    }
    expect(saved).toBeGreaterThanOrEqual(2);
    await Promise.all(hosts.map((h) => h.stop()));
  }, 30_000);

  test("the database stopped mid-run changes nothing for clients; started again, the hosts catch up", async () => {
    let version = 1;
    upstream.on("/d", () => Response.json({ version }));
    const a = await host({ "/d": { route: "/d" } });
    const b = await host({ "/d": { route: "/d" } });
    await Promise.all([a, b].map((h) => h.waitForLog("shared store connected")));
    expect((await text(a, "/d")).status).toBe(200);
    pg.stopServer();
    for (const h of [a, b]) {
      for (let n = 0; n < 3; n++) {
        const started = performance.now();
        expect((await text(h, "/d")).status).toBe(200);
        // The database's timeout (2 s) bounds the wait; a refused connection costs far less.
        expect(performance.now() - started).toBeLessThan(2500);
      }
    }
    pg.startServer();
    await Bun.sleep(2500);
    version = 2;
    // A fetches the new value once the database is back; B hears of it and needs no upstream.
    expect(await text(a, "/d")).toMatchObject({ body: '{"version": 2}' });
    upstream.on("/d", { status: 503, body: "down" });
    await Bun.sleep(500);
    expect(await text(b, "/d")).toMatchObject({ status: 200, body: '{"version": 2}' });
    await a.stop();
    await b.stop();
  }, 30_000);

  test("a lease whose holder was killed with kill -9 expires by itself", async () => {
    let hang = true;
    upstream.on("/e", async () => {
      if (hang) await Bun.sleep(10_000);
      return Response.json({ fleet: "e1" });
    });
    const items = { "/e": { route: "/e", policy: "timeout: 2s\nmax_backoff: 0s" } };
    const holder = await host(items);
    const other = await host(items);
    await Promise.all([holder, other].map((h) => h.waitForLog("shared store connected")));
    void holder.fetch("/e").catch(() => undefined);
    await Bun.sleep(300);
    holder.process.kill("SIGKILL");
    await holder.exited();
    hang = false;
    // The lease is held for the item's timeout by a dead host: the other waits at most that long.
    const started = performance.now();
    const waited = await other.fetch("/e");
    expect(waited.status).toBe(503);
    expect(waited.headers.get("cache-status")).toBe("cachish; fwd=miss; detail=lease");
    expect(performance.now() - started).toBeLessThan(4500);
    await Bun.sleep(500);
    expect(await text(other, "/e")).toMatchObject({ status: 200, body: '{"fleet": "e1"}' });
    await other.stop();
  }, 30_000);

  test("the database holds no value in the clear, and a row altered or moved to another path is refused", async () => {
    upstream.json("/f", { secret_value: "plain-Zz91" });
    const a = await host({ "/f": { route: "/f" }, "/g": { route: "/g" } });
    expect((await text(a, "/f")).status).toBe(200);
    await Bun.sleep(300);
    await a.stop();
    expect(pg.dump()).toContain("cachish_values");
    expect(pg.dump()).not.toContain("plain-Zz91");

    // Moved: /f's row copied under /g.
    pg.sql("INSERT INTO cachish_values (path, fetched_at, sealed) SELECT '/g', fetched_at, sealed FROM cachish_values WHERE path = '/f'");
    // Altered: one byte of /f's sealed value flipped.
    pg.sql("UPDATE cachish_values SET sealed = set_byte(sealed, 20, get_byte(sealed, 20) # 1) WHERE path = '/f'");
    upstream.on("/f", { status: 503, body: "down" });
    upstream.on("/g", { status: 503, body: "down" });
    const fresh = await host({ "/f": { route: "/f" }, "/g": { route: "/g" } });
    expect((await text(fresh, "/g")).status).toBe(503);
    expect((await text(fresh, "/f")).status).toBe(503);
    await fresh.stop();
    const refused = fresh.logs("a row of the shared store does not open; it is ignored").map((l) => l.item);
    expect(refused).toContain("/g");
    expect(refused).toContain("/f");
    expect(fresh.lines.join("\n")).not.toContain("plain-Zz91");
  }, 30_000);

  test("validators travel with the value: a host that took the fleet's value revalidates it with the ETag another host got, and the renewal reaches the fleet", async () => {
    const conditional: string[] = [];
    upstream.on("/h", (request) => {
      const asked = request.headers.get("if-none-match");
      if (asked !== null) conditional.push(asked);
      return asked === '"h-1"' ? new Response(null, { status: 304, headers: { ETag: '"h-1"' } }) : Response.json({ fleet: "h1" }, { headers: { ETag: '"h-1"' } });
    });
    const items = { "/h": { route: "/h", policy: "ttl: 2s" } };
    const a = await host(items);
    const b = await host(items);
    await Promise.all([a, b].map((h) => h.waitForLog("shared store connected")));
    expect(await text(a, "/h")).toMatchObject({ status: 200, body: '{"fleet": "h1"}', xcache: "miss" });
    await Bun.sleep(2300);
    const renewed = await b.fetch("/h");
    expect([renewed.status, await renewed.text(), renewed.headers.get("x-cache"), renewed.headers.get("cache-status")]).toEqual([200, '{"fleet": "h1"}', "miss", "cachish; fwd=stale; fwd-status=304; stored"]);
    expect(conditional).toEqual(['"h-1"']);
    // A hears of the renewal: its value is young again, a hit without asking the upstream.
    await Bun.sleep(300);
    const asked = upstream.requests("/h").length;
    const hit = await a.fetch("/h");
    expect([hit.status, hit.headers.get("x-cache"), hit.headers.get("age")]).toEqual([200, "hit", "0"]);
    expect(upstream.requests("/h").length).toBe(asked);
    await a.stop();
    await b.stop();
  }, 30_000);

  test("validators altered in the database, or put beside an older value, do not open: the value is taken without them and fetched unconditionally", async () => {
    let version = 1;
    const etagged = (path: string) => (request: Request) => {
      const etag = `"${path}-${version}"`;
      return request.headers.get("if-none-match") === etag ? new Response(null, { status: 304, headers: { ETag: etag } }) : Response.json({ version }, { headers: { ETag: etag } });
    };
    upstream.on("/i", etagged("i"));
    upstream.on("/j", etagged("j"));
    const items = { "/i": { route: "/i" }, "/j": { route: "/j" } };
    const a = await host(items);
    for (const path of ["/i", "/j"]) expect((await text(a, path)).status).toBe(200);
    await Bun.sleep(300);
    const old = pg.sql("SELECT fetched_at || ' ' || encode(sealed, 'hex') FROM cachish_values WHERE path = '/j'").trim().split(" ");
    version = 2;
    expect(await text(a, "/j")).toMatchObject({ body: '{"version": 2}' });
    await Bun.sleep(300);
    await a.stop();
    expect(pg.sql("SELECT path FROM cachish_values WHERE path IN ('/i', '/j') AND validators IS NOT NULL ORDER BY path")).toBe("/i\n/j\n");
    // Replayed: /j's older value put back beside the newer validators, which the upstream would
    // answer 304 to, keeping the old value for ever. Altered: one byte of /i's validators flipped.
    pg.sql(`UPDATE cachish_values SET fetched_at = ${old[0]}, sealed = '\\x${old[1]}' WHERE path = '/j'`);
    pg.sql("UPDATE cachish_values SET validators = set_byte(validators, 20, get_byte(validators, 20) # 1) WHERE path = '/i'");
    const seen = upstream.seen.length;
    const fresh = await host(items);
    for (const path of ["/i", "/j"]) {
      const res = await fresh.fetch(path);
      expect([path, res.status, await res.text(), res.headers.get("cache-status")]).toEqual([path, 200, '{"version": 2}', "cachish; fwd=stale; fwd-status=200; stored"]);
    }
    await fresh.stop();
    expect(upstream.seen.slice(seen).map((r) => [r.path, r.headers["if-none-match"] ?? "unconditional"])).toEqual([
      ["/i", "unconditional"],
      ["/j", "unconditional"],
    ]);
    const refused = fresh.logs("the validators of a row of the shared store do not open; its value is taken without them").map((l) => l.item);
    expect([...new Set(refused)].sort()).toEqual(["/i", "/j"]);
    // (Rows an earlier test altered, of other items, are refused as they should be.)
    expect(fresh.logs("a row of the shared store does not open; it is ignored").filter((l) => l.item === "/i" || l.item === "/j")).toEqual([]);
  }, 30_000);

  test("a database of schema 1 is migrated in place: its rows stay and open, as values without validators", async () => {
    pg.sql("CREATE DATABASE cachish_v1 OWNER cachish", "postgres");
    // A row sealed as schema 1 sealed it: AES-256-GCM, nonce | ciphertext | tag, bound to its path and fetch time.
    const fetchedAt = Date.now() - 60_000;
    const nonce = crypto.getRandomValues(new Uint8Array(12));
    const cipher = createCipheriv("aes-256-gcm", Buffer.from(KEY, "base64"), nonce);
    cipher.setAAD(Buffer.from(`cachish/v1\n/m\n${fetchedAt}`));
    const sealed = Buffer.concat([nonce, cipher.update('{"fleet": "m1"}'), cipher.final(), cipher.getAuthTag()]);
    pg.sql(
      [
        "SET ROLE cachish",
        "CREATE TABLE cachish_schema (version integer NOT NULL)",
        "CREATE TABLE cachish_values (path text PRIMARY KEY, fetched_at bigint NOT NULL, sealed bytea NOT NULL)",
        "CREATE TABLE cachish_leases (path text PRIMARY KEY, holder text NOT NULL, expires_at timestamptz NOT NULL)",
        "INSERT INTO cachish_schema (version) VALUES (1)",
        `INSERT INTO cachish_values VALUES ('/m', ${fetchedAt}, '\\x${sealed.toString("hex")}')`,
      ].join("; "),
      "cachish_v1",
    );
    upstream.on("/m", { status: 503, body: "down" });
    const h = await host({ "/m": { route: "/m" } }, "2s", pg.url.replace(/\/cachish$/, "/cachish_v1"));
    await h.waitForLog("shared store connected");
    const res = await h.fetch("/m");
    expect([res.status, await res.text(), res.headers.get("x-cache"), res.headers.get("cache-status")]).toEqual([200, '{"fleet": "m1"}', "hit", "cachish; hit; detail=status-503"]);
    await h.stop();
    expect(pg.sql("SELECT max(version) FROM cachish_schema", "cachish_v1")).toBe("2\n");
    expect(pg.sql("SELECT count(*) FROM cachish_values WHERE validators IS NULL", "cachish_v1")).toBe("1\n");
    expect(upstream.requests("/m").every((r) => r.headers["if-none-match"] === undefined)).toBe(true);
  }, 30_000);

  test("check-config --probe says whether the database answers, and its schema", async () => {
    const config = (url: string) => `shared_store: {url: "${url}", key: "${KEY}", timeout: 1s}\nitems: {}\n`;
    const dir = tempDir({ "up.yml": config(pg.url), "down.yml": config("postgres://nobody:x@127.0.0.1:1/none") });
    const up = await cachish(["check-config", "--probe", "up.yml"], { cwd: dir });
    expect(up.code).toBe(0);
    // The schema is there once a host has started on the database (the tests above did).
    expect(up.stdout).toMatch(/^ {2}probe shared_store {2}ok \d+ ms \((schema version 2|reachable; the schema is created at the first start)\)$/m);
    expect(up.stdout).not.toContain(KEY);
    const down = await cachish(["check-config", "--probe", "down.yml"], { cwd: dir });
    expect(down.code).toBe(1);
    expect(down.stdout).toMatch(/^ {2}probe shared_store {2}failed \(connect\) after \d+ ms: /m);
    expect(down.stdout + down.stderr).not.toContain("nobody:x");
  }, 30_000);
});
