/**
 * `npm run bench [-- --vs nginx] [--vs floor] [--duration 5] [--rounds 2] [--only W1,W13]`: dist/cachish against
 * upstreams this script runs on 127.0.0.1, through the workloads W1-W8 (W1-W7 of issue 5), W9,
 * large values, W10, long polls (issue 17), W13, a stalled log reader (issue 13), and W14,
 * refreshing an unchanged value with revalidation (issue 17).
 *
 * `--vs` may be given more than once, or as a comma list (`--vs nginx,floor`):
 * - `nginx`: nginx configured for the same job by scripts/bench/nginx.conf, in W1 and W3-W7;
 * - `floor`: a bare compiled `Bun.serve` (scripts/bench/floor.ts) answering the bytes of a
 *   cachish hit, in W1, W6 and W7: the runtime's ceiling on this machine, for cachish's ratio to it.
 *
 * Load comes from wrk when it is installed, else from a built-in generator (fetch loops in this
 * process); the first line says which. Everything talks to 127.0.0.1 only, and every run is
 * bounded in time.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ipRanges, longString } from "../test/support/large";
import { findPostgres, Postgres } from "../test/support/postgres";
import { longPoll } from "./bench/long-poll";
import { burst, CONNECTIONS, type Load, load as loadFor, memoryMB, percentiles, until200, WRK } from "./bench/load";
import { type Row, table } from "./bench/report";
import { revalidationCost } from "./bench/revalidation";
import { type Answer, BINARY, buildFloor, freePort, killAll, launch, NGINX, startCachish, startFloor, startNginx, type Target, TOKEN } from "./bench/servers";

const ROOT = join(import.meta.dir, "..");
// With npm the options go after `--` (`npm run bench -- --vs nginx`): npm reads `--vs` as its own.
const { values: options } = parseArgs({ options: { vs: { type: "string", multiple: true }, duration: { type: "string", default: "5" }, rounds: { type: "string", default: "2" }, only: { type: "string" } }, allowPositionals: true });
/** `--only W1,W3`: just those workloads (W6 comes with W1). */
const wanted = (name: string) => !options.only || options.only.split(",").includes(name);
const SECONDS = Number.parseFloat(options.duration!);
/** `--rounds N`: W1's turns of each server (more on a busy machine: each keeps its best). */
const ROUNDS = Number.parseInt(options.rounds!, 10);
const VS = new Set((options.vs ?? []).flatMap((v) => v.split(",")));
for (const name of VS) if (name !== "nginx" && name !== "floor") throw new Error(`--vs ${name}: compare with nginx or floor`);
const VS_NGINX = VS.has("nginx");
const VS_FLOOR = VS.has("floor");

if (!existsSync(BINARY)) throw new Error("dist/cachish is missing: run `npm run build` first");
if (VS_NGINX && !NGINX) throw new Error("--vs nginx: nginx is not installed (apt-get install nginx)");

const work = mkdtempSync(join(tmpdir(), "cachish-bench-"));
const cleanup = () => {
  killAll();
  if (!process.env.BENCH_KEEP) rmSync(work, { recursive: true, force: true });
};
process.on("SIGINT", () => {
  cleanup();
  process.exit(130);
});
const load = (url: string, headers: Record<string, string> = {}, seconds = SECONDS): Promise<Load> => loadFor(url, seconds, headers);

// ---------------------------------------------------------------- upstreams

const VALUE = JSON.stringify({ prefixes: [{ ip_prefix: "192.0.2.0/24" }, { ip_prefix: "198.51.100.0/24" }], syncToken: "1700000000" });
const counts = { value: 0, slow: 0, hang: 0 };
const upstream = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  idleTimeout: 0,
  async fetch(request) {
    const path = new URL(request.url).pathname;
    if (path === "/slow") {
      counts.slow++;
      await Bun.sleep(200);
    } else counts.value++;
    return new Response(VALUE, { headers: { "Content-Type": "application/json" } });
  },
});
/** Accepts connections and never answers: an upstream that hangs. */
const hangs = new Set<{ end(): void }>();
const hanger = Bun.listen({
  hostname: "127.0.0.1",
  port: 0,
  socket: { open(socket) { counts.hang++; hangs.add(socket); }, data() {}, close(socket) { hangs.delete(socket); } },
});
const REFUSED = `127.0.0.1:${await freePort()}`; // nothing listens there: connections are refused
const UP = `127.0.0.1:${upstream.port}`;

// ---------------------------------------------------------------- workloads

/** A server whose store holds /failing's value, started again with /failing's upstream at `failing`, the value expired. */
async function withStoredValue(start: Start, dir: string, failing: string): Promise<Target> {
  const first = await start(dir);
  await (await fetch(`${first.url}/failing`)).arrayBuffer();
  await (await fetch(`${first.url}/failing-wait`)).arrayBuffer(); // a 404 from nginx, which has no such item
  await first.stop();
  const again = await start(dir, failing);
  // A server that has answered before the outage (W7 measures a cold one): one hit, which
  // also sets up cachish's HTTP client.
  await (await fetch(`${again.url}/hit`)).arrayBuffer();
  await Bun.sleep(1100);
  return again;
}

const rows: Row[] = [];
const add = (workload: string, metric: string, better: Row["better"], cachish: number, nginx?: number, floor?: number) =>
  rows.push({ workload, metric, cachish, better, ...(nginx !== undefined ? { nginx } : {}), ...(floor !== undefined ? { floor } : {}) });

type Start = (dir: string, failing?: string) => Promise<Target>;
/** Each server in its own folder of the run's. */
const cachishIn: Start = (dir, failing) => startCachish(join(work, "cachish", dir), UP, failing);
const nginxIn: Start = (dir, failing) => startNginx(join(work, "nginx", dir), UP, failing);

async function both<T>(run: (start: Start, name: string) => Promise<T>): Promise<[T, T | undefined]> {
  const ours = await run(cachishIn, "cachish");
  const theirs = VS_NGINX ? await run(nginxIn, "nginx") : undefined;
  return [ours, theirs];
}

/** What a cachish hit answers, for the bare server to answer the same bytes. */
async function cachishHit(): Promise<Answer> {
  const t = await cachishIn("hit-answer");
  await (await fetch(`${t.url}/hit`)).arrayBuffer(); // the first request is a miss
  const response = await fetch(`${t.url}/hit`);
  const body = await response.text();
  await t.stop();
  return { body, headers: Object.fromEntries([...response.headers].filter(([name]) => name !== "date" && name !== "content-length")) };
}
/** The bare server takes no upstream: it answers the same to every path. */
const floorIn: Start | undefined = VS_FLOOR && (wanted("W1") || wanted("W7")) ? await (async () => {
  const [binary, answer] = await Promise.all([buildFloor(work), cachishHit()]);
  return () => startFloor(binary, answer);
})() : undefined;

/** The servers of W1 and W7, which compare with the bare server too. */
const compared = { cachish: cachishIn, nginx: VS_NGINX ? nginxIn : undefined, floor: floorIn };
type Name = keyof typeof compared;
async function each<T>(run: (start: Start, name: Name) => Promise<T>): Promise<Partial<Record<Name, T>>> {
  const results: Partial<Record<Name, T>> = {};
  for (const [name, start] of Object.entries(compared) as [Name, Start | undefined][]) if (start) results[name] = await run(start, name);
  return results;
}

console.error(`load: ${WRK ? `wrk (${CONNECTIONS} connections, 1 thread, ${SECONDS} s)` : `built-in fetch loops (${CONNECTIONS} connections, ${SECONDS} s)`}`);

// W1 and W6: fresh hits, and memory. This machine's speed wanders from run to run (it shares
// its cores), so the servers take turns, ROUNDS times, and each keeps its best run.
if (wanted("W1")) {
  const runW1 = async (start: Start, name: string, round: number) => {
    const t = await start(`w1-${round}`);
    await Bun.sleep(300);
    const idle = memoryMB(t.pid);
    await (await fetch(`${t.url}/hit`)).arrayBuffer();
    await (await fetch(`${t.url}/hit-token`, { headers: { Authorization: `Bearer ${TOKEN}` } })).arrayBuffer();
    console.error(`W1 ${name} (round ${round})...`);
    const open = await load(`${t.url}/hit`);
    const token = await load(`${t.url}/hit-token`, { Authorization: `Bearer ${TOKEN}` });
    const after = memoryMB(t.pid);
    await t.stop();
    return { open, token, idle, after };
  };
  type W1 = Awaited<ReturnType<typeof runW1>>;
  const better = (a: W1 | undefined, b: W1): W1 =>
    !a ? b : { open: a.open.rps >= b.open.rps ? a.open : b.open, token: a.token.rps >= b.token.rps ? a.token : b.token, idle: a.idle.rss <= b.idle.rss ? a.idle : b.idle, after: a.after.rss >= b.after.rss ? a.after : b.after };
  const best: Partial<Record<Name, W1>> = {};
  for (let round = 1; round <= ROUNDS; round++) {
    const results = await each((start, name) => runW1(start, name, round));
    for (const [name, result] of Object.entries(results) as [Name, W1][]) best[name] = better(best[name], result);
  }
  const { cachish: c, nginx: n, floor: f } = best;
  add("W1 fresh hits", "requests/s", "higher", c!.open.rps, n?.open.rps, f?.open.rps);
  add("W1 fresh hits", "p50 ms", "lower", c!.open.p50, n?.open.p50, f?.open.p50);
  add("W1 fresh hits", "p99 ms", "lower", c!.open.p99, n?.open.p99, f?.open.p99);
  // The bare server answers the same with or without the token: its cost is cachish's alone.
  add("W1 with a token", "requests/s", "higher", c!.token.rps, n?.token.rps, f?.token.rps);
  add("W1 with a token", "p99 ms", "lower", c!.token.p99, n?.token.p99, f?.token.p99);
  add("W1 (both)", "answers not 200", "lower", c!.open.errors + c!.token.errors, n ? n.open.errors + n.token.errors : undefined, f ? f.open.errors + f.token.errors : undefined);
  add("W6 memory", "RSS idle MB", "lower", c!.idle.rss, n?.idle.rss, f?.idle.rss);
  add("W6 memory", "RSS right after W1 MB", "lower", c!.after.rss, n?.after.rss, f?.after.rss);
  add("W6 memory", "of which anonymous, idle MB", "lower", c!.idle.anon, n?.idle.anon, f?.idle.anon);
  add("W6 memory", "of which anonymous, after W1 MB", "lower", c!.after.anon, n?.after.anon, f?.after.anon);
}

// W2: 1.x mode, the upstream on every request (no nginx: it is compared with 1.x's ~550/s).
if (wanted("W2")) {
  console.error("W2 cachish...");
  const t = await cachishIn("w2");
  const before = counts.value;
  const live = await load(`${t.url}/live`);
  await t.stop();
  add("W2 1.x mode (ttl 0, max_backoff 0)", "requests/s", "higher", live.rps);
  add("W2 1.x mode (ttl 0, max_backoff 0)", "p99 ms", "lower", live.p99);
  add("W2 1.x mode (ttl 0, max_backoff 0)", "upstream requests/s", "lower", (counts.value - before) / SECONDS);
  add("W2 1.x mode (ttl 0, max_backoff 0)", "answers not 200", "lower", live.errors);
}

// W3: the upstream refuses connections, a value is stored.
if (wanted("W3")) {
  const [c, n] = await both(async (start, name) => {
    const t = await withStoredValue(start, `w3-${Date.now()}`, REFUSED);
    console.error(`W3 ${name}...`);
    const before = await t.upstreamAttempts();
    const result = await load(`${t.url}/failing`);
    const attempts = (await t.upstreamAttempts()) - before;
    await t.stop();
    return { ...result, attempts };
  });
  add("W3 upstream refusing, value stored", "p50 ms", "lower", c.p50, n?.p50);
  add("W3 upstream refusing, value stored", "p99 ms", "lower", c.p99, n?.p99);
  add("W3 upstream refusing, value stored", "upstream attempts", "lower", c.attempts, n?.attempts);
  add("W3 upstream refusing, value stored", "requests", "higher", c.requests, n?.requests);
  add("W3 upstream refusing, value stored", "answers not 200", "lower", c.errors, n?.errors);
}

// W4: the upstream hangs (timeout 2 s), a value is stored.
if (wanted("W4")) {
  const hangAt = `127.0.0.1:${hanger.port}`;
  const run = async (start: Start, name: string, path = "/failing") => {
    const t = await withStoredValue(start, `w4-${Date.now()}`, hangAt);
    console.error(`W4 ${name} ${path}...`);
    const started = performance.now();
    await (await fetch(`${t.url}${path}`)).arrayBuffer();
    const firstWait = performance.now() - started;
    const before = counts.hang;
    const result = await load(`${t.url}${path}`);
    const during = counts.hang - before;
    await t.stop();
    for (const socket of hangs) socket.end();
    return { firstWait, ...result, during };
  };
  const [c, n] = await both(run);
  const waiting = await run(cachishIn, "cachish", "/failing-wait");
  add("W4 upstream hanging, value stored", "first client's wait ms", "lower", c.firstWait, n?.firstWait);
  add("W4 upstream hanging, value stored", "first client's wait ms, no stale_after", "lower", waiting.firstWait);
  add("W4 upstream hanging, value stored", "next clients' p99 ms", "lower", c.p99, n?.p99);
  add("W4 upstream hanging, value stored", "upstream requests during the load", "lower", c.during, n?.during);
  add("W4 upstream hanging, value stored", "answers not 200", "lower", c.errors, n?.errors);
}

// W5: 200 concurrent requests, upstream 200 ms: on an empty store, on an expired value, on a fresh one.
if (wanted("W5")) {
  const run = async (start: Start, name: string, path = "/slow") => {
    const t = await start(`w5-${Date.now()}`);
    console.error(`W5 ${name} ${path}...`);
    let before = counts.slow;
    const empty = await burst(`${t.url}${path}`);
    const emptyUp = counts.slow - before;
    const fresh = await burst(`${t.url}${path}`);
    // Past the 1 s ttl for both: nginx keeps its cache times in whole seconds, and 1.1 s
    // later it sometimes still answered fresh hits.
    await Bun.sleep(2100);
    before = counts.slow;
    const expired = await burst(`${t.url}${path}`);
    // A fetch in the background (stale_after 0s, nginx's background_update) may reach the
    // upstream after the burst's answers: it is counted too.
    await Bun.sleep(300);
    const expiredUp = counts.slow - before;
    await t.stop();
    return { empty, emptyUp, fresh, expired, expiredUp };
  };
  const [c, n] = await both(run);
  const waiting = await run(cachishIn, "cachish", "/slow-wait");
  add("W5 200 at once, empty store", "upstream requests", "lower", c.emptyUp, n?.emptyUp);
  add("W5 200 at once, empty store", "p50 ms", "lower", c.empty.p50, n?.empty.p50);
  add("W5 200 at once, empty store", "p99 ms", "lower", c.empty.p99, n?.empty.p99);
  add("W5 200 at once, expired value", "upstream requests", "lower", c.expiredUp, n?.expiredUp);
  add("W5 200 at once, expired value", "p50 ms", "lower", c.expired.p50, n?.expired.p50);
  add("W5 200 at once, expired value", "p99 ms", "lower", c.expired.p99, n?.expired.p99);
  add("W5 200 at once, expired value", "upstream requests, no stale_after", "lower", waiting.expiredUp);
  add("W5 200 at once, expired value", "p99 ms, no stale_after", "lower", waiting.expired.p99);
  add("W5 200 at once, fresh value (the client's own cost)", "p99 ms", "lower", c.fresh.p99, n?.fresh.p99);
  add("W5 (all three bursts)", "answers not 200", "lower", c.empty.errors + c.expired.errors + c.fresh.errors, n ? n.empty.errors + n.expired.errors + n.fresh.errors : undefined);
}

// W7: from start to the first 200 served from the store while the upstream is down (for the
// bare server, which has no store, to its first answer). One start wanders by several ms on
// this kind of machine: the median of W7_STARTS, the servers starting in turns so that a slow
// spell of the machine falls on each of them alike.
const W7_STARTS = 11;
if (wanted("W7")) {
  const dirs = await each(async (start, name) => {
    const dir = `w7-${name}`;
    const t = await start(dir);
    await (await fetch(`${t.url}/failing`)).arrayBuffer();
    await t.stop();
    return dir;
  });
  await Bun.sleep(1100);
  console.error(`W7 ${Object.keys(dirs).join(", ")} in turns...`);
  const times: Partial<Record<Name, number[]>> = {};
  for (let i = 0; i < W7_STARTS; i++) {
    await each(async (start, name) => {
      const started = performance.now();
      const t = await start(dirs[name]!, REFUSED);
      (times[name] ??= []).push(performance.now() - started + (await until200(`${t.url}/failing`)));
      await t.stop();
    });
  }
  const median = (name: Name) => (times[name] ? percentiles(times[name]).p50 : undefined);
  const [c, n, f] = [median("cachish")!, median("nginx"), median("floor")];
  add(`W7 start to first stale 200 (median of ${W7_STARTS})`, "ms", "lower", c, n, f);
  // The target of issue 16: at most 25 ms over the runtime's own start.
  if (f !== undefined) add("W7 cachish's start over the bare server's", "ms (target <= 25)", "lower", c - f);
}

// W8: a fleet of three hosts on one PostgreSQL (when one can be started here).
if (wanted("W8")) {
  const found = findPostgres();
  if ("bin" in found) {
    console.error("W8 fleet...");
    // Its own temp folder: the postgres user must be able to reach it.
    const pgDir = mkdtempSync(join(tmpdir(), "cachish-bench-pg-"));
    const pg = await Postgres.start(found.bin, pgDir);
    const key = Buffer.alloc(32, 7).toString("base64");
    const fleetConfig = (port: number, shared: boolean, ttl: string) =>
      [
        `listen: 127.0.0.1:${port}`,
        "cache_dir: store",
        ...(shared ? ["shared_store:", `  url: "${pg.url}"`, `  key: "${key}"`, "  timeout: 2s"] : []),
        "items:",
        "  /fleet:",
        "    module: JsonHttp",
        "    disable_auth: true",
        `    ttl: ${ttl}`,
        "    timeout: 5s",
        `    parameters: {url: "http://${UP}/slow"}`,
        "",
      ].join("\n");
    const startHost = async (name: string, shared: boolean, ttl = "1h") => {
      const dir = join(work, "fleet", name);
      mkdirSync(dir, { recursive: true });
      const port = await freePort();
      writeFileSync(join(dir, "cachish.yml"), fleetConfig(port, shared, ttl));
      const url = `http://127.0.0.1:${port}`;
      return { url, ...(await launch([BINARY, "serve", "--config", join(dir, "cachish.yml")], `${url}/-/ready`, "SIGTERM", Bun.file(join(dir, "log.txt")), `dist/cachish did not start; see ${dir}/log.txt`)) };
    };
    const windowCost = async (shared: boolean) => {
      const hosts = await Promise.all([1, 2, 3].map((n) => startHost(`${shared ? "shared" : "alone"}-${n}`, shared)));
      await Bun.sleep(shared ? 1500 : 100); // the hosts connect and listen
      const before = counts.slow;
      await Promise.all(hosts.map((h) => burst(`${h.url}/fleet`, 50)));
      const fetches = counts.slow - before;
      return { hosts, fetches };
    };
    const alone = await windowCost(false);
    const together = await windowCost(true);
    const hitAlone = await load(`${alone.hosts[0]!.url}/fleet`, {}, Math.min(SECONDS, 3));
    const hitShared = await load(`${together.hosts[0]!.url}/fleet`, {}, Math.min(SECONDS, 3));
    for (const h of [...alone.hosts, ...together.hosts]) await h.stop();
    pg.stopServer();
    rmSync(pgDir, { recursive: true, force: true });
    add("W8 fleet of 3, 50 requests each at once", "upstream fetches per freshness window, shared", "lower", together.fetches);
    add("W8 fleet of 3, 50 requests each at once", "upstream fetches per freshness window, without", "lower", alone.fetches);
    add("W8 fleet: hits on one host", "p50 ms, shared", "lower", hitShared.p50, undefined);
    add("W8 fleet: hits on one host", "p50 ms without", "lower", hitAlone.p50, undefined);
    add("W8 fleet: hits on one host", "p99 ms, shared", "lower", hitShared.p99, undefined);
    add("W8 fleet: hits on one host", "p99 ms without", "lower", hitAlone.p99, undefined);
  } else {
    console.error(`W8 fleet skipped: ${found.missing}`);
  }
}

// W9: large values (issue 13). An upstream of its own serves a ~2 MB ip-ranges.json-shaped
// value and a 16 MiB string value (max_body's default). For each, in a daemon of its own: the
// first request's fetch-to-answer time, the longest wait of /-/healthy meanwhile (asked every
// ~5 ms on its own connection), and the daemon's peak RSS over its idle RSS (VmHWM, reset
// before the request). Then a start with both stored, and copies up to 50 MB.
if (wanted("W9")) {
  const MiB = 1024 * 1024;
  const bodies: Record<string, string> = { "/ip-ranges": ipRanges(2_000_000), "/big": longString(16 * MiB - 16) };
  const large = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    fetch: (request) => new Response(bodies[new URL(request.url).pathname] ?? "null", { headers: { "Content-Type": "application/json" } }),
  });
  const copies = (path: string, n: number) => Array.from({ length: n }, (_, i) => `${path}-${i + 1}`);
  const stored = ["/ip-ranges", "/big", ...copies("/ip-ranges", 8), ...copies("/big", 1)];
  const storedMB = stored.reduce((sum, path) => sum + bodies[path.replace(/-\d+$/, "")]!.length, 0) / 1e6;
  const config = (port: number) =>
    [`listen: 127.0.0.1:${port}`, "cache_dir: store", "items:", ...stored.map((path) => `  ${path}:\n    module: JsonHttp\n    disable_auth: true\n    ttl: 1h\n    parameters: {url: "http://127.0.0.1:${large.port}${path.replace(/-\d+$/, "")}"}`), ""].join("\n");
  const dir = join(work, "w9");
  mkdirSync(dir, { recursive: true });
  const start = async () => {
    const port = await freePort();
    writeFileSync(join(dir, "cachish.yml"), config(port));
    const url = `http://127.0.0.1:${port}`;
    const started = performance.now();
    const server = await launch([BINARY, "serve", "--config", join(dir, "cachish.yml")], `${url}/-/healthy`, "SIGTERM", Bun.file(join(dir, "log.txt")), `dist/cachish did not start within 60 s; see ${dir}/log.txt`, 60_000);
    return { url, ms: performance.now() - started, ...server };
  };
  const kB = (pid: number, field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) * 1024;
  const first = async (path: string) => {
    rmSync(join(dir, "store"), { recursive: true, force: true });
    const t = await start();
    await (await fetch(`${t.url}/-/healthy`)).arrayBuffer();
    await Bun.sleep(500);
    const idle = kB(t.pid, "VmRSS");
    writeFileSync(`/proc/${t.pid}/clear_refs`, "5"); // VmHWM := VmRSS
    let polling = true;
    let stall = 0;
    const poller = (async () => {
      while (polling) {
        const asked = performance.now();
        await (await fetch(`${t.url}/-/healthy`)).arrayBuffer();
        stall = Math.max(stall, performance.now() - asked);
        await Bun.sleep(5);
      }
    })();
    await Bun.sleep(20);
    console.error(`W9 ${path}...`);
    const asked = performance.now();
    const res = await fetch(`${t.url}${path}`);
    const size = (await res.arrayBuffer()).byteLength;
    const ms = performance.now() - asked;
    await Bun.sleep(100);
    polling = false;
    await poller;
    const peak = kB(t.pid, "VmHWM") - idle;
    await t.stop();
    if (res.status !== 200) throw new Error(`W9: ${path} answered ${res.status}`);
    return { ms, stall, peak, size };
  };
  const ip = await first("/ip-ranges");
  const big = await first("/big");
  add("W9 ~2 MB ip-ranges value, first request", "fetch to answer ms", "lower", ip.ms);
  add("W9 ~2 MB ip-ranges value, first request", "longest /-/healthy ms (target < 50)", "lower", ip.stall);
  add("W9 ~2 MB ip-ranges value, first request", "peak RSS over idle, x its size", "lower", ip.peak / ip.size);
  add("W9 16 MiB string value, first request", "fetch to answer ms", "lower", big.ms);
  add("W9 16 MiB string value, first request", "longest /-/healthy ms", "lower", big.stall);
  add("W9 16 MiB string value, first request", "peak RSS over idle MB", "lower", big.peak / MiB);
  add("W9 16 MiB string value, first request", "peak RSS over idle, x its size (target < 4)", "lower", big.peak / big.size);
  // Every item once, then starts with all of them stored.
  rmSync(join(dir, "store"), { recursive: true, force: true });
  let t = await start();
  for (const path of stored) await (await fetch(`${t.url}${path}`)).arrayBuffer();
  await t.stop();
  const starts: number[] = [];
  let startPeak = 0;
  for (let i = 0; i < 3; i++) {
    t = await start();
    starts.push(t.ms);
    startPeak = Math.max(startPeak, kB(t.pid, "VmHWM") / MiB);
    await t.stop();
  }
  add(`W9 start with ${storedMB.toFixed(0)} MB stored (${stored.length} items)`, "spawn to first 200 of /-/healthy ms, median of 3 (target < 1000)", "lower", percentiles(starts).p50);
  add(`W9 start with ${storedMB.toFixed(0)} MB stored (${stored.length} items)`, "peak RSS MB", "lower", startPeak);
  await large.stop(true);
}

// W14 (issue 17's W9; W9 was taken by large values): refresh: 1s over a value that does not
// change for 30 s, its upstream sending an ETag and answering 304, against one that sends none.
if (wanted("W14")) {
  console.error("W14 revalidation, 30 s...");
  const { valueBytes, etag, plain, counted } = await revalidationCost(join(work, "w14"), 30);
  const workload = (what: string) => `W14 refresh: 1s, a ${(valueBytes / 1000).toFixed(0)} kB value unchanged for 30 s, ${what}`;
  add(workload("upstream sends an ETag"), "body bytes the upstream sent after the first answer (target 0)", "lower", etag.bytesAfterFirst);
  add(workload("upstream sends an ETag"), "upstream requests", "lower", etag.requests);
  add(workload("upstream sends an ETag"), "conditional requests", "higher", etag.conditional);
  add(workload("upstream sends an ETag"), "304s (the upstream's count)", "higher", etag.notModified);
  add(workload("upstream sends an ETag"), "304s (cachish_upstream_not_modified_total)", "higher", counted);
  add(workload("upstream sends no validator"), "body bytes the upstream sent after the first answer", "lower", plain.bytesAfterFirst);
  add(workload("upstream sends no validator"), "upstream requests", "lower", plain.requests);
}

// W13 (issue 13): W1's hits with nobody reading the daemon's standard output (a journal under
// pressure, a pipe nobody reads), against the same run with a reader: the log must not grow the
// daemon's memory (at most 4 MiB of lines wait; the rest is dropped and counted).
if (wanted("W13")) {
  const run = async (reading: boolean) => {
    const t = await startCachish(join(work, "cachish", `w13-${reading ? "read" : "stalled"}`), UP, UP, "pipe");
    // Bun reads a child's pipe on its own, into memory, until a reader is taken: this one is
    // read from only when `drain` is called.
    const reader = t.stdout!.getReader();
    const drain = async () => {
      while (!(await reader.read()).done);
    };
    if (reading) void drain();
    await (await fetch(`${t.url}/hit`)).arrayBuffer();
    await Bun.sleep(300);
    const idle = memoryMB(t.pid);
    console.error(`W13 cachish, standard output ${reading ? "read" : "not read"}...`);
    const result = await load(`${t.url}/hit`);
    const after = memoryMB(t.pid);
    const dropped = Number(/^cachish_log_lines_dropped_total (\d+)$/m.exec(await (await fetch(`${t.url}/metrics`)).text())?.[1] ?? Number.NaN);
    // A daemon stops only once its log is written: the stalled reader reads at last.
    if (!reading) void drain();
    await t.stop();
    return { ...result, idle, after, dropped };
  };
  const read = await run(true);
  const stalled = await run(false);
  add("W13 W1 hits, standard output read", "requests/s", "higher", read.rps);
  add("W13 W1 hits, standard output not read", "requests/s", "higher", stalled.rps);
  add("W13 W1 hits, standard output read", "RSS idle MB", "lower", read.idle.rss);
  add("W13 W1 hits, standard output not read", "RSS idle MB", "lower", stalled.idle.rss);
  add("W13 W1 hits, standard output read", "RSS after the load MB", "lower", read.after.rss);
  add("W13 W1 hits, standard output not read", "RSS after the load MB", "lower", stalled.after.rss);
  add("W13 not read - read", "RSS after the load MB", "lower", stalled.after.rss - read.after.rss);
  add("W13 W1 hits, standard output not read", "log lines dropped", "lower", stalled.dropped);
  add("W13 W1 hits, standard output not read", "requests in the run", "higher", stalled.requests);
}

// W10 (issue 17): 2,000 clients long-polling one item: memory, delivery of a change, upstream fetches.
if (wanted("W10")) {
  const w = await longPoll(join(work, "w10"));
  const name = `W10 ${w.clients} clients long-polling one item`;
  add(name, "RSS over idle MB (target <= 20)", "lower", w.rssGrowthMB);
  add(name, "upstream's answer to the last client's new value ms (target <= 100)", "lower", w.lastClientMs);
  add(name, "upstream fetches per interval (target 1)", "lower", w.fetchesPerInterval);
  add(name, "clients without the new value", "lower", w.missed);
}

// ---------------------------------------------------------------- report

const against = [
  VS_NGINX ? Bun.spawnSync([NGINX!, "-v"]).stderr.toString().trim() : "",
  VS_FLOOR ? `a bare compiled Bun.serve (Bun ${Bun.version})` : "",
].filter(Boolean);
console.log(
  [
    `cachish ${JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version}${against.length ? ` vs ${against.join(" and ")}` : ""}; load by ${WRK ? "wrk" : "the built-in generator"}; ${navigator.hardwareConcurrency} cores; ${new Date().toISOString().slice(0, 10)}`,
    "",
    table(rows, { nginx: VS_NGINX, floor: VS_FLOOR }),
    "",
    "W2 for comparison: cachish 1.x answers about 550 requests/s on this kind of machine (issue 5).",
    VS_NGINX ? "`cachish ahead by`: nginx / cachish for times and counts, cachish / nginx for rates; above 1 means cachish does better." : "",
    VS_FLOOR ? "`cachish / bare`: cachish's rate over the bare server's (the bare server's time or size over cachish's); 1 would be the runtime's ceiling." : "",
  ].join("\n"),
);

await upstream.stop(true);
hanger.stop(true);
cleanup();
process.exit(0);
