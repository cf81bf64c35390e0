/**
 * SPEC 5.2.1, the rows where 2.x answers differently from 1.x on purpose, each asked of
 * dist/cachish as a client would ask it (raw bytes on a socket where an HTTP client would not
 * send them). The rows tested elsewhere name their test here.
 *
 * Tested elsewhere: the Server header, Bearer/Basic malformed (serve.test "each malformed
 * Authorization header"), 401's WWW-Authenticate, text/plain error bodies, `/x/` asked as `/x`
 * (serve.test "404 for a path that is no item"), two clients with one token
 * (config-validation.test), a corrupt stored value (serve.test), `timeout` and `max_backoff`
 * (policies.test), exit 1 at start (serve.test "lifecycle"), floats as written (json.test against
 * Python), `/a//b` (serve.test "runs of /").
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Daemon } from "../support/daemon";
import { exchange } from "../support/raw";
import { Upstream } from "../support/upstream";

const upstream = new Upstream();
upstream.json("/public", ["10.0.0.0/8"]);
upstream.json("/secret", { s: 1 });
const TOKEN = "differences-token-Qe4";


const statusLine = (answer: string) => answer.split("\r\n")[0] ?? "";

let daemon: Daemon;
let resets = 0;
let resetting: { stop(): void } | undefined;
beforeAll(async () => {
  // An upstream that answers the first request on each connection and resets the connection
  // when a second request comes on it (a keep-alive connection dropped by a server or a balancer).
  const answered = new WeakSet<object>();
  const listener = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(socket) {
        resets++;
        if (answered.has(socket)) return void socket.terminate();
        answered.add(socket);
        socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{"ok": 1}');
      },
    },
  });
  resetting = listener;
  daemon = await Daemon.start(`listen: 127.0.0.1:0
cache_dir: store
items:
  /public:
    module: JsonHttp
    disable_auth: true
    parameters: {url: "${upstream.url}/public"}
  /café:
    module: JsonHttp
    disable_auth: true
    parameters: {url: "${upstream.url}/public"}
  /b:
    module: JsonHttp
    parameters: {url: "${upstream.url}/secret"}
  /down:
    module: JsonHttp
    disable_auth: true
    parameters: {url: "${upstream.url}/down"}
  /reset:
    module: JsonHttp
    disable_auth: true
    max_backoff: 0s
    parameters: {url: "http://127.0.0.1:${listener.port}/"}
auth:
  app: {token: ${TOKEN}, url: /b}
`);
});
afterAll(async () => {
  await daemon.stop();
  resetting?.stop();
  await upstream.close();
});

describe("SPEC 5.2.1: where 2.x answers differently from 1.x, on purpose", () => {
  test("`Bearer tok extra`, and two Authorization headers: 400", async () => {
    const res = await daemon.fetch("/b", { headers: { Authorization: `Bearer ${TOKEN} extra` } });
    expect(res.status).toBe(400);
    const twice = await exchange(daemon.address, `GET /b HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`);
    expect(statusLine(twice)).toBe("HTTP/1.1 400 Bad Request");
    expect(twice).not.toContain(TOKEN);
  });

  test("dot segments are resolved, then matched and authorised as the path they name", async () => {
    expect((await daemon.fetch("/nothing/../public")).status).toBe(200);
    // `/public/../b` is `/b`: its own token is needed.
    expect((await daemon.fetch("/public/../b")).status).toBe(401);
    expect((await daemon.fetch("/public/../b", { token: TOKEN })).status).toBe(200);
  });

  test("Content-Type: text/plain on a 503, none on the empty OPTIONS answer", async () => {
    upstream.on("/down", { status: 500, body: "down" });
    const failed = await daemon.fetch("/down");
    expect({ status: failed.status, type: failed.headers.get("content-type"), body: await failed.text() }).toEqual({ status: 503, type: "text/plain; charset=utf-8", body: "Upstream failure" });
    const options = await daemon.fetch("/public", { method: "OPTIONS" });
    expect({ status: options.status, type: options.headers.get("content-type"), body: await options.text() }).toEqual({ status: 200, type: null, body: "" });
  });

  test("an upstream body starting with a UTF-8 BOM is the value", async () => {
    upstream.on("/public", { body: new Uint8Array([0xef, 0xbb, 0xbf, ...Buffer.from('["10.0.0.0/8"]')]) });
    try {
      const res = await daemon.fetch("/public");
      expect({ status: res.status, body: await res.text() }).toEqual({ status: 200, body: '["10.0.0.0/8"]' });
    } finally {
      upstream.json("/public", ["10.0.0.0/8"]);
    }
  });

  test("unknown or lowercase methods: the HTTP parser closes the connection", async () => {
    for (const method of ["FOO", "get"]) {
      expect({ method, answer: await exchange(daemon.address, `${method} /public HTTP/1.1\r\nHost: x\r\n\r\n`) }).toEqual({ method, answer: "" });
    }
  });

  test("`Bearer<TAB>token` is accepted like a space", async () => {
    expect((await daemon.fetch("/b", { headers: { Authorization: `Bearer\t${TOKEN}` } })).status).toBe(200);
  });

  test("non-ASCII item paths are UTF-8", async () => {
    const res = await daemon.fetch("/caf%C3%A9");
    expect({ status: res.status, body: await res.text() }).toEqual({ status: 200, body: '["10.0.0.0/8"]' });
    // The same character as Latin-1 (what 1.x matched) names no item.
    expect((await daemon.fetch("/caf%E9")).status).toBe(400);
  });

  test("undecodable percent-encoding: 400", async () => {
    for (const path of ["/%", "/%FC", "/a%zz"]) {
      const answer = await exchange(daemon.address, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      expect({ path, status: statusLine(answer) }).toEqual({ path, status: "HTTP/1.1 400 Bad Request" });
      expect(answer).toContain("bad request: the path is not valid percent-encoding");
    }
  });

  test("malformed request lines get the HTTP parser's answers", async () => {
    const answers = await Promise.all([
      exchange(daemon.address, "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n"),
      exchange(daemon.address, "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"),
      exchange(daemon.address, `GET /${"a".repeat(5000)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`),
    ]);
    expect(answers.map(statusLine)).toEqual(["HTTP/1.1 505 HTTP Version Not Supported", "HTTP/1.1 400 Bad Request", "HTTP/1.1 404 Not Found"]);
  });

  test("an upstream that resets a kept-alive connection: a second attempt, on a new one (the HTTP client retries a reset once)", async () => {
    expect((await daemon.fetch("/reset")).status).toBe(200);
    const before = resets;
    const res = await daemon.fetch("/reset");
    expect({ status: res.status, body: await res.text(), cache: res.headers.get("x-cache") }).toEqual({ status: 200, body: '{"ok": 1}', cache: "miss" });
    // The reset request and its retry. (A connection reset before it ever answered is not retried: a `connect` failure.)
    expect(resets - before).toBe(2);
  });
});
