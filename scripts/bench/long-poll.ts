/**
 * W10 (issue 17): many clients long-polling one item of dist/cachish, all on 127.0.0.1. What it
 * costs the daemon to hold them (RSS over idle), how soon after the upstream's answer that
 * brought a new value the last of them has it, and how often the upstream is asked meanwhile.
 *
 * The clients are raw sockets of this process, one connection each, sending the request a
 * `cachish get --watch` sends: cheap enough for thousands, and each answer timed as it lands.
 * cachish is started under `ulimit -n` raised for them; this process needs as many descriptors,
 * and uses fewer clients (and says so) when its own limit is lower.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Socket } from "bun";
import { memoryMB } from "./load";
import { BINARY, freePort, launch } from "./servers";

/** The refresh interval while clients wait: the item's ttl. */
const INTERVAL_MS = 1000;
/** How many connections are opened at once: more would overflow the listen backlog. */
const BATCH = 200;

export type LongPoll = { clients: number; rssGrowthMB: number; lastClientMs: number; fetchesPerInterval: number; missed: number };

/** One waiting client: what it received, when its last bytes came, and (read once they all came) its answer. */
type Client = { socket?: Socket; text: string; at?: number; status?: number; body?: string };

/** This process's limit on open files (a child of it has the same). */
const fileLimit = () => Number(Bun.spawnSync(["sh", "-c", "ulimit -n"]).stdout.toString().trim());

/** Whether `client.text` holds a whole HTTP answer; if so, reads its status and body. */
function whole(client: Client): boolean {
  if (client.status !== undefined) return true;
  const end = client.text.indexOf("\r\n\r\n");
  if (end < 0) return false;
  const length = Number(/\r\ncontent-length: (\d+)/i.exec(client.text.slice(0, end))?.[1] ?? 0);
  if (client.text.length - end - 4 < length) return false;
  client.status = Number(client.text.slice(9, 12));
  client.body = client.text.slice(end + 4, end + 4 + length);
  return true;
}

async function openClient(port: number, request: string): Promise<Client> {
  const client: Client = { text: "" };
  client.socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      open: (socket) => void socket.write(request),
      // Only the time and the bytes here: this process reads thousands of answers at once, and
      // its own work would be counted in the delivery time.
      data: (_socket, data) => {
        client.at = performance.now();
        client.text += data.toString();
      },
    },
  });
  return client;
}

async function until(check: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms;
  while (!(await check())) {
    if (performance.now() > end) throw new Error(`W10: ${what} within ${ms} ms`);
    await Bun.sleep(10);
  }
}

export async function longPoll(dir: string, wanted = 2000): Promise<LongPoll> {
  const clients = Math.min(wanted, fileLimit() - 200);
  if (clients < wanted) console.error(`W10: ${clients} clients, not ${wanted}: this process may open ${fileLimit()} files (raise it with \`ulimit -n\`)`);
  let value = 1;
  let fetches = 0;
  /** When the upstream answered with the new value for the first time. */
  let answeredAt = Number.NaN;
  const upstream = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    fetch() {
      fetches++;
      if (value === 2 && Number.isNaN(answeredAt)) answeredAt = performance.now();
      return new Response(JSON.stringify({ value, padding: "x".repeat(200) }), { headers: { "Content-Type": "application/json" } });
    },
  });
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  writeFileSync(
    join(dir, "cachish.yml"),
    [`listen: 127.0.0.1:${port}`, "cache_dir: store", "items:", "  /watched:", "    module: JsonHttp", "    disable_auth: true", `    ttl: ${INTERVAL_MS}ms`, `    parameters: {url: "http://127.0.0.1:${upstream.port}/value"}`, ""].join("\n"),
  );
  // `exec`: the pid measured is cachish's, under a limit raised for its connections.
  const args = ["sh", "-c", `ulimit -n ${clients + 1000} 2>/dev/null; exec "$0" "$@"`, BINARY, "serve", "--config", join(dir, "cachish.yml")];
  const daemon = await launch(args, `${url}/-/ready`, "SIGTERM", Bun.file(join(dir, "log.txt")), `dist/cachish did not start; see ${dir}/log.txt`);
  const all: Client[] = [];
  try {
    const first = await fetch(`${url}/watched`);
    const etag = first.headers.get("etag")!;
    await first.arrayBuffer();
    await Bun.sleep(500);
    const idle = memoryMB(daemon.pid).rss;
    console.error(`W10 ${clients} clients long-polling one item...`);
    const request = `GET /watched HTTP/1.1\r\nHost: 127.0.0.1\r\nIf-None-Match: ${etag}\r\nPrefer: wait=120\r\n\r\n`;
    for (let opened = 0; opened < clients; opened += BATCH) {
      all.push(...(await Promise.all(Array.from({ length: Math.min(BATCH, clients - opened) }, () => openClient(port, request)))));
    }
    const gauge = async () => Number(/^cachish_waiting_clients\{item="\/watched"\} (\d+)$/m.exec(await (await fetch(`${url}/metrics`)).text())?.[1] ?? 0);
    await until(async () => (await gauge()) === clients, 30_000, `${clients} clients did not all wait`);
    // The upstream asked while they wait, over a few intervals.
    const before = fetches;
    const started = performance.now();
    await Bun.sleep(5 * INTERVAL_MS);
    const fetchesPerInterval = (fetches - before) / ((performance.now() - started) / INTERVAL_MS);
    const rssGrowthMB = memoryMB(daemon.pid).rss - idle;
    // The next refresh brings the new value to every one of them.
    value = 2;
    await until(() => all.every(whole), 10_000, "not every client had an answer");
    const lastClientMs = Math.max(...all.map((c) => c.at!)) - answeredAt;
    const missed = all.filter((c) => c.status !== 200 || !c.body!.startsWith('{"value": 2')).length;
    return { clients, rssGrowthMB, lastClientMs, fetchesPerInterval, missed };
  } finally {
    for (const client of all) client.socket?.end();
    await daemon.stop();
    await upstream.stop(true);
  }
}
