/**
 * The watcher's loop (src/client/watch.ts) asking over real HTTP (askDaemon) a server written
 * here that speaks SPEC 5.8's long poll, or misbehaves as an older daemon or a restart would:
 * what is delivered (once per change of the output, never for a 304 or the same output), what
 * is asked (the last ETag), and how often a daemon that does not wait is asked. The real
 * daemon's side is test/e2e/get-watch.test.ts.
 */
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Server } from "bun";
import { askDaemon } from "../../src/client/ask";
import { type Watch, WAIT_SECONDS, watch } from "../../src/client/watch";

/** A daemon's long poll, as SPEC 5.8 says, over a value the test sets. */
class LongPoll {
  value = '{"A": "1", "B": "x"}';
  /** false: answers 200 at once, as a daemon without conditional requests does. */
  waits = true;
  /** Answers this status to every request, when set. */
  status: number | undefined;
  readonly seen: { ifNoneMatch: string | null; prefer: string | null }[] = [];
  #waiting = new Set<(status: 200 | 304) => void>();
  server: Server<unknown>;

  constructor(port = 0) {
    this.server = this.#listen(port);
  }

  #listen(port: number): Server<unknown> {
    return Bun.serve({
      hostname: "127.0.0.1",
      port,
      idleTimeout: 0,
      fetch: async (request) => {
        this.seen.push({ ifNoneMatch: request.headers.get("if-none-match"), prefer: request.headers.get("prefer") });
        if (this.status) return new Response("no", { status: this.status });
        if (this.waits && request.headers.get("if-none-match") === this.etag) {
          if (!request.headers.get("prefer")) return new Response(null, { status: 304 });
          const status = await new Promise<200 | 304>((resolve) => {
            this.#waiting.add(resolve);
            request.signal.addEventListener("abort", () => resolve(304));
          });
          if (status === 304) return new Response(null, { status: 304 });
        }
        return new Response(this.value, { headers: { ETag: this.etag } });
      },
    });
  }

  /** Questions held now, waiting for a change. */
  get held(): number {
    return this.#waiting.size;
  }

  get etag(): string {
    return `"${Bun.hash(this.value).toString(16)}"`;
  }

  get url(): string {
    return `http://127.0.0.1:${this.server.port}`;
  }

  set(value: string): void {
    this.value = value;
    this.release(200);
  }

  /** 304: a reload or a stop, every waiting client answered at once; 200: the same bytes again. */
  release(status: 200 | 304 = 304): void {
    for (const answer of this.#waiting) answer(status);
    this.#waiting.clear();
  }

  async restart(): Promise<void> {
    const port = this.server.port!;
    this.release();
    await this.server.stop(true);
    await Bun.sleep(300);
    this.server = this.#listen(port);
  }
}

let daemon: LongPoll;
const stoppers: AbortController[] = [];
afterEach(async () => {
  // A test that failed leaves no watcher asking the next test's server.
  for (const stopper of stoppers.splice(0)) stopper.abort("SIGTERM");
  daemon.release();
  await daemon.server.stop(true);
});

/** Runs the loop against `daemon`, delivering `field` of the value (or the whole body), and collects what it does. */
function watching(field?: string, options: Partial<Watch> = {}) {
  const delivered: string[] = [];
  const reports: string[] = [];
  const stopper = new AbortController();
  stoppers.push(stopper);
  const check: Watch["check"] = (value) => ({ ok: true, text: field ? String(JSON.parse(value.body)[field]) : value.body });
  const first = check({ kind: "value", body: daemon.value, ageSeconds: 0 }) as { text: string };
  const ended = watch(
    { etag: daemon.etag, text: first.text },
    {
      path: "/p",
      ask: (etag, wait) => askDaemon(daemon.url, "/p", undefined, 10_000, etag === undefined ? undefined : { etag, ...(wait ? { waitSeconds: WAIT_SECONDS } : {}) }, stopper.signal),
      check,
      deliver: async (text) => void delivered.push(text),
      report: (text) => void reports.push(text),
      stop: stopper.signal,
      ...options,
    },
  );
  return { delivered, reports, ended, stop: () => stopper.abort("SIGTERM") };
}

const until = async (condition: () => boolean, ms = 8000) => {
  const end = Date.now() + ms;
  while (!condition() && Date.now() < end) await Bun.sleep(10);
  expect(condition()).toBe(true);
};

// Some waits below are the watcher's own pauses (1 s, 2 s, ...).
setDefaultTimeout(20_000);

describe("what is delivered", () => {
  test("each change once; nothing for a 304 or for a 200 of the same bytes; the last ETag is asked with", async () => {
    daemon = new LongPoll();
    const w = watching();
    await until(() => daemon.held === 1);
    expect(daemon.seen[0]).toEqual({ ifNoneMatch: daemon.etag, prefer: `wait=${WAIT_SECONDS}` });
    daemon.set('{"A": "2", "B": "x"}');
    await until(() => w.delivered.length === 1 && daemon.held === 1);
    // A reload's 304, then a 200 that brings the bytes already delivered.
    daemon.release(304);
    await until(() => daemon.seen.length === 3 && daemon.held === 1);
    daemon.release(200);
    await until(() => daemon.seen.length === 4 && daemon.held === 1);
    daemon.set('{"A": "3", "B": "x"}');
    await until(() => w.delivered.length === 2 && daemon.held === 1);
    daemon.set('{"A": "4", "B": "x"}');
    await until(() => w.delivered.length === 3);
    await Bun.sleep(200);
    expect(w.delivered).toEqual(['{"A": "2", "B": "x"}', '{"A": "3", "B": "x"}', '{"A": "4", "B": "x"}']);
    expect(daemon.seen.at(-1)!.ifNoneMatch).toBe(daemon.etag);
    w.stop();
    expect(await w.ended).toBeUndefined();
    expect(w.reports).toEqual([]);
  });

  test("what is compared is the output: a change of another key than the one delivered delivers nothing", async () => {
    daemon = new LongPoll();
    const w = watching("A");
    await until(() => daemon.held === 1);
    daemon.set('{"A": "1", "B": "y"}');
    await until(() => daemon.seen.length === 2 && daemon.held === 1);
    daemon.set('{"A": "2", "B": "y"}');
    await until(() => w.delivered.length === 1);
    expect(w.delivered).toEqual(["2"]);
    w.stop();
    await w.ended;
  });

  test("a delivery that fails is said and tried again, asked without a validator so the value comes back; once it is out, never again", async () => {
    daemon = new LongPoll();
    let failures = 1;
    const tried: string[] = [];
    const w = watching(undefined, { deliver: async (text) => (tried.push(text), failures-- > 0 ? "cannot write F: no space left" : undefined) });
    await until(() => daemon.held === 1);
    daemon.set('{"A": "2"}');
    await until(() => tried.length === 2 && daemon.held === 1);
    expect(tried).toEqual(['{"A": "2"}', '{"A": "2"}']);
    expect(w.reports).toEqual(["/p: cannot write F: no space left; trying again"]);
    expect(daemon.seen.map((s) => s.ifNoneMatch !== null)).toEqual([true, false, true]);
    w.stop();
    await w.ended;
  });

  test("a value that gives no output (a field gone) is said, and the next good one delivered", async () => {
    daemon = new LongPoll();
    const w = watching(undefined, { check: (v) => (v.body.includes("A") ? { ok: true, text: v.body } : { ok: false, why: "the value of /p has no field \"A\"" }) });
    await until(() => daemon.held === 1);
    daemon.set('{"B": "1"}');
    await until(() => w.reports.length === 1 && daemon.held === 1);
    daemon.set('{"A": "3"}');
    await until(() => w.delivered.length === 1);
    expect({ delivered: w.delivered, reports: w.reports }).toEqual({ delivered: ['{"A": "3"}'], reports: ['the value of /p has no field "A"'] });
    w.stop();
    await w.ended;
  });
});

describe("the daemon", () => {
  test("one that answers at once without waiting (no long poll) is asked again after growing pauses, not in a tight loop", async () => {
    daemon = new LongPoll();
    daemon.waits = false;
    const w = watching();
    // Pauses of 1, 2 and 4 s: questions at 0, 1, 3 and 7 s (a tight loop asks thousands).
    await Bun.sleep(5000);
    expect(daemon.seen.length).toBe(3);
    // A change is still seen at the next question.
    daemon.set('{"A": "2"}');
    await until(() => w.delivered.length === 1);
    w.stop();
    await w.ended;
  });

  test("lost and back (a restart): said once each way, nothing delivered for the same value, the next change delivered", async () => {
    daemon = new LongPoll();
    const w = watching();
    await until(() => daemon.held === 1);
    await daemon.restart();
    await until(() => w.reports.length === 2 && daemon.held === 1);
    expect(w.reports[0]).toMatch(/^\/p: the daemon at http:\/\/127\.0\.0\.1:\d+ cannot be reached \((ECONNRESET|ECONNREFUSED)\); waiting for it$/);
    expect(w.reports[1]).toBe("/p: the daemon answers again; watching");
    // The question that found it back did not wait; the next one does, with the same ETag.
    expect(daemon.seen.slice(-2)).toEqual([
      { ifNoneMatch: daemon.etag, prefer: null },
      { ifNoneMatch: daemon.etag, prefer: `wait=${WAIT_SECONDS}` },
    ]);
    daemon.set('{"A": "2"}');
    await until(() => w.delivered.length === 1);
    expect(w.delivered).toEqual(['{"A": "2"}']);
    w.stop();
    await w.ended;
  });

  test("503 is waited for as a lost daemon; 403 and 404 end the watch with that answer", async () => {
    daemon = new LongPoll();
    daemon.status = 503;
    const w = watching();
    await until(() => daemon.seen.length >= 3);
    expect(w.reports).toEqual(["/p: the daemon answered 503: the upstream failed and no value is stored; waiting for it"]);
    daemon.status = 403;
    expect(await w.ended).toEqual({ kind: "refused", why: "the daemon refused this token for /p (403): it is unknown, or its client may not read this path" });
    daemon.status = 404;
    expect(await watching().ended).toEqual({ kind: "error", why: "the daemon has no item /p (404)" });
  });

  test("a stop ends the watch at once, while a question waits", async () => {
    daemon = new LongPoll();
    const w = watching();
    await until(() => daemon.held === 1);
    const started = performance.now();
    w.stop();
    expect(await w.ended).toBeUndefined();
    expect(performance.now() - started).toBeLessThan(1000);
  });
});
