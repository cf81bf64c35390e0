/**
 * SPEC 5.6: the log in bounded memory. dist/cachish serves hits while nobody reads its
 * standard output (a pipe this test stops reading), then the test reads again.
 */
import { afterAll, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BINARY } from "../support/cli";
import { parseLogfmt } from "../support/daemon";
import { tempDir } from "../support/temp";
import { Upstream } from "../support/upstream";

const upstream = new Upstream();
afterAll(() => upstream.close());
upstream.json("/value", { greeting: "hello" });

const TOKEN = "log-token-Wq7e2Rt9";
/** A long client name makes long request lines (about 1.2 KB): tens of MB of log from a bounded number of requests. */
const CLIENT = `reader-${"x".repeat(1000)}`;
const REQUESTS = 50_000;
const CONCURRENCY = 32;

/** VmRSS of a process, in MB. */
const rssMB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;

/** The lines of a stream, read only while `until` is being waited for. */
class Lines {
  readonly all: string[] = [];
  #reader: { read(): Promise<{ done: boolean; value?: Uint8Array }> };
  #decoder = new TextDecoder();
  #rest = "";
  constructor(
    stream: ReadableStream<Uint8Array>,
    readonly stderr: () => string,
  ) {
    this.#reader = stream.getReader();
  }
  /** Reads until a line satisfies `found` (at most `ms`), and returns that line's fields. */
  async until(found: (fields: Record<string, string>) => boolean, ms = 10_000): Promise<Record<string, string>> {
    const end = Date.now() + ms;
    for (let from = 0; ; ) {
      for (; from < this.all.length; from++) {
        const fields = parseLogfmt(this.all[from]!);
        if (found(fields)) return fields;
      }
      const left = end - Date.now();
      if (left <= 0) throw new Error(`no such line within ${ms} ms; the last lines:\n${this.all.slice(-5).join("\n").slice(0, 2000)}\nstandard error:\n${this.stderr()}`);
      const chunk = await Promise.race([this.#reader.read(), Bun.sleep(left).then(() => undefined)]);
      if (!chunk) continue;
      if (chunk.done) throw new Error(`standard output closed; standard error:\n${this.stderr()}; read ${this.all.length} lines, the last: ${this.all.at(-1)?.slice(0, 300)}`);
      const text = this.#rest + this.#decoder.decode(chunk.value, { stream: true });
      const lines = text.split("\n");
      this.#rest = lines.pop()!;
      this.all.push(...lines);
    }
  }
}

/** dist/cachish serving one item, its standard output a pipe that only `Lines` reads. */
function start() {
  const dir = tempDir();
  writeFileSync(
    join(dir, "cachish.yml"),
    `listen: 127.0.0.1:0
cache_dir: store
items:
  /value:
    module: JsonHttp
    ttl: 1h
    parameters: {url: "${upstream.url}/value"}
auth:
  ${CLIENT}: {token: ${TOKEN}, url: /value}
`,
  );
  return Bun.spawn([BINARY, "serve", "--config", join(dir, "cachish.yml")], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir },
    cwd: dir,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
}

test("a stalled reader of standard output: lines are dropped and counted, memory stays bounded, and one line tells how many once the reader is back", async () => {
  const child = start();
  let stderr = "";
  void (async () => {
    for await (const chunk of child.stderr) stderr += new TextDecoder().decode(chunk);
  })();
  try {
    const out = new Lines(child.stdout, () => stderr);
    const url = `http://${(await out.until((l) => l.msg === "ready")).listen}`;
    const get = async (path: string, headers: Record<string, string> = {}) => {
      const res = await fetch(`${url}${path}`, { headers });
      return { status: res.status, text: await res.text() };
    };
    const auth = { Authorization: `Bearer ${TOKEN}` };
    /** `n` hits, CONCURRENCY at a time; how many were answered 200. */
    const hits = async (n: number) => {
      let next = 0;
      let ok = 0;
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (next++ < n) if ((await get("/value", auth)).status === 200) ok++;
        }),
      );
      return ok;
    };
    // Warm: the value is stored, the daemon has answered.
    for (let i = 0; i < 20; i++) expect((await get("/value", auth)).status).toBe(200);
    await Bun.sleep(200);
    const idle = rssMB(child.pid);

    // From here on nobody reads standard output. (Lines took the stream's reader at once: without
    // one, Bun reads a child's pipe into memory on its own, without bound. With one, it takes a
    // MB or two into the stream, then stops.)
    let peak = idle;
    const sampler = setInterval(() => (peak = Math.max(peak, rssMB(child.pid))), 50);
    const started = performance.now();
    const ok = await hits(REQUESTS);
    const seconds = (performance.now() - started) / 1000;
    await Bun.sleep(200);
    clearInterval(sampler);
    peak = Math.max(peak, rssMB(child.pid));
    expect(ok).toBe(REQUESTS);
    const dropped = () => get("/metrics").then((m) => Number(/^cachish_log_lines_dropped_total (\d+)$/m.exec(m.text)![1]));
    const droppedWhileStalled = await dropped();
    console.error(`${REQUESTS} requests in ${seconds.toFixed(1)} s; RSS idle ${idle.toFixed(1)} MB, peak ${peak.toFixed(1)} MB; ${droppedWhileStalled} lines dropped`);
    // 4 MiB of lines at most, and what the load itself costs (about 15 MB, with a reader):
    // without the bound, the daemon kept every line (here +50 MB for 30,000 requests).
    expect(peak).toBeLessThan(idle + 40);
    expect(droppedWhileStalled).toBeGreaterThan(0);

    // The reader is back: it gets what the daemon kept, then the notice, then the lines of later requests.
    const notice = await out.until((l) => l.msg === "log lines dropped");
    expect(notice.level).toBe("warn");
    expect(Number(notice.lines)).toBeGreaterThan(0);
    for (let i = 0; i < 3; i++) expect((await get("/-/healthy")).status).toBe(200);
    let healthy = 0;
    await out.until((l) => l.path === "/-/healthy" && ++healthy === 3);
    const fields = out.all.map(parseLogfmt);
    const at = fields.findIndex((l) => l.msg === "log lines dropped");
    expect(fields.findIndex((l) => l.path === "/-/healthy")).toBeGreaterThan(at);
    // Every request line was written or counted as dropped, once; and every drop was told of.
    const notices = fields.filter((l) => l.msg === "log lines dropped").reduce((sum, l) => sum + Number(l.lines), 0);
    const total = await dropped();
    expect(notices).toBe(total);
    expect(fields.filter((l) => l.msg === "request" && l.path === "/value").length + total).toBe(REQUESTS + 20);
    expect(fields.every((l) => l.msg !== "request" || l.path !== "/value" || l.client === CLIENT)).toBe(true);

    // Stalled again, for fewer lines than the limit (about 2.4 MB): the whole limit is free
    // again, so none is dropped, and all arrive when the reader is back.
    expect(await hits(2000)).toBe(2000);
    for (let i = 0; i < 3; i++) expect((await get("/-/ready")).status).toBe(200);
    let ready = 0;
    await out.until((l) => l.path === "/-/ready" && ++ready === 3);
    expect(await dropped()).toBe(total);
    expect(out.all.map(parseLogfmt).filter((l) => l.msg === "request" && l.path === "/value").length + total).toBe(REQUESTS + 2020);
  } finally {
    child.kill("SIGKILL");
    await child.exited;
  }
});

test("SIGTERM with a stalled reader of standard output: the daemon still exits 0, its last lines given a second", async () => {
  const child = start();
  try {
    const out = new Lines(child.stdout, () => "");
    const url = `http://${(await out.until((l) => l.msg === "ready")).listen}`;
    // About 2.4 MB of request lines that nobody reads: more than the pipe and Bun's reading ahead take.
    for (let i = 0; i < 2000; i += 50) {
      await Promise.all(Array.from({ length: 50 }, () => fetch(`${url}/value`, { headers: { Authorization: `Bearer ${TOKEN}` } }).then((r) => r.text())));
    }
    const stopped = performance.now();
    child.kill("SIGTERM");
    // Before: it waited for the reader for ever (systemd's SIGKILL at TimeoutStopSec). A wide margin over the one second.
    const code = await Promise.race([child.exited, Bun.sleep(10_000).then(() => "still running")]);
    expect(code).toBe(0);
    expect(performance.now() - stopped).toBeLessThan(10_000);
  } finally {
    child.kill("SIGKILL");
    await child.exited;
  }
});
