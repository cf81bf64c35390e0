/**
 * The bounded upstream fetch (src/backends/fetch.ts) in-process, against upstreams on
 * 127.0.0.1: what a redirect may carry to where, and `max_body` as the largest body accepted,
 * whether the upstream declares its length or streams it in chunks.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { lookup } from "node:dns/promises";
import { fetchItem } from "../../src/backends";
import { UpstreamFailure } from "../../src/backends/failure";
import { boundedFetch } from "../../src/backends/fetch";
import type { Item } from "../../src/config/types";
import { check, yaml } from "../support/config";
import { Upstream } from "../support/upstream";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** Where the redirects start, and another origin (another port) they may lead to. */
const home = new Upstream();
const elsewhere = new Upstream();
afterAll(() => Promise.all([home.close(), elsewhere.close()]));

const SECRETS = { heroku: "heroku-token-R7v2", hawkId: "hawk-id-P3", hawkKey: "hawk-key-W9x1", header: "json-header-secret-K5" };

/** The items of one configuration, each fetched as the daemon would. */
function items(): Map<string, Item> {
  const { config, problems } = check(
    yaml(
      "items:",
      "  /heroku:",
      "    module: Heroku",
      `    parameters: {api_url: "${home.url}/heroku", api_token: ${SECRETS.heroku}, app: my-app, config_key: DATABASE_URL}`,
      "  /hawk:",
      "    module: Hawk",
      `    parameters: {url: "${home.url}/hawk", secret_id: ${SECRETS.hawkId}, secret: ${SECRETS.hawkKey}}`,
      "  /json:",
      "    module: JsonHttp",
      `    parameters: {url: "${home.url}/json", headers: {Authorization: "Token ${SECRETS.header}", X-Api-Key: ${SECRETS.header}}}`,
    ),
  );
  expect(problems.filter((p) => p.includes("error"))).toEqual([]);
  return config!.items;
}

/** Whether the name `localhost` leads to 127.0.0.1 here: tests talk to nothing else. */
const localhostIsLoopback = await lookup("localhost", { family: 4 }).then(
  (found) => found.address === "127.0.0.1",
  () => false,
);

const redirect = (status: number, location: string) => () => new Response(null, { status, headers: { Location: location } });

/** Every header a request of the item carries that a request without the item's credentials would not. */
const credentialsIn = (headers: Record<string, string>) => Object.keys(headers).filter((name) => ["authorization", "x-api-key"].includes(name.toLowerCase()));

describe("redirects", () => {
  // Each backend whose request carries a credential: where it starts, what it sends, how it is redirected.
  const cases = [
    { path: "/heroku", from: "/heroku/apps/my-app/config-vars", status: 302, body: { DATABASE_URL: "postgres://x" }, sent: ["authorization"] },
    { path: "/hawk", from: "/hawk", status: 307, body: { a: 1 }, sent: ["authorization"] },
    { path: "/json", from: "/json", status: 301, body: { b: 2 }, sent: ["authorization", "x-api-key"] },
  ];

  for (const { path, from, status, body, sent } of cases) {
    test(`${path}: a hop within the origin keeps the item's headers; a hop to another port drops them all`, async () => {
      const item = items().get(path)!;
      // Home -> home (same origin: the credential goes along) -> another port (it must not).
      home.on(from, redirect(status, `${from}-again`));
      home.on(`${from}-again`, redirect(status, `${elsewhere.url}/landed${path}`));
      elsewhere.json(`/landed${path}`, body);
      const fetched = await fetchItem(item, Date.now());
      expect(fetched.kind === "value" && text(fetched.value)).toBe(JSON.stringify(body).replace(/":/g, '": '));
      expect(credentialsIn(home.requests(from).at(-1)!.headers).sort()).toEqual(sent);
      expect(credentialsIn(home.requests(`${from}-again`).at(-1)!.headers).sort()).toEqual(sent);
      const landed = elsewhere.requests(`/landed${path}`).at(-1)!;
      expect(credentialsIn(landed.headers)).toEqual([]);
      expect(JSON.stringify(landed.headers)).not.toMatch(/heroku-token|hawk-id|json-header-secret|Hawk /);
      expect(landed.headers["user-agent"]).toMatch(/^cachish\//);
    });
  }

  test.skipIf(!localhostIsLoopback)("`localhost` is another origin than 127.0.0.1, on the same port: the headers are dropped", async () => {
    const port = home.server.port;
    for (const { path, from, status, body } of cases) {
      const item = items().get(path)!;
      home.on(from, redirect(status, `http://localhost:${port}/by-name${path}`));
      home.on(`/by-name${path}`, () => Response.json(body));
      const before = home.requests(`/by-name${path}`).length;
      await fetchItem(item, Date.now());
      const landed = home.requests(`/by-name${path}`);
      expect({ path, arrived: landed.length - before }).toEqual({ path, arrived: 1 });
      expect({ path, credentials: credentialsIn(landed.at(-1)!.headers) }).toEqual({ path, credentials: [] });
    }
  });
});

const upstream = new Upstream();
afterAll(() => upstream.close());

const MAX_BODY = 1000;
const bytes = (n: number) => new Uint8Array(n).fill(0x37); // "7777..."
/** The same bytes as a stream of uneven chunks, without Content-Length. */
const chunked = (n: number) => () =>
  new Response(
    new ReadableStream({
      start(controller) {
        for (let at = 0; at < n; at += 333) controller.enqueue(bytes(Math.min(333, n - at)));
        controller.close();
      },
    }),
  );

async function fetchBody(path: string, maxBody = MAX_BODY): Promise<Uint8Array | string> {
  try {
    const fetched = await boundedFetch({ url: `${upstream.url}${path}`, headers: {} }, { timeout: 5000, maxBody });
    return fetched.kind === "body" ? fetched.body : fetched.kind;
  } catch (error) {
    return error instanceof UpstreamFailure ? error.kind : String(error);
  }
}

describe("max_body", () => {
  test("a body of exactly max_body bytes is read whole, declared or chunked", async () => {
    upstream.on("/exact", { body: bytes(MAX_BODY) });
    upstream.on("/exact-chunked", chunked(MAX_BODY));
    expect(await fetchBody("/exact")).toEqual(bytes(MAX_BODY));
    expect(await fetchBody("/exact-chunked")).toEqual(bytes(MAX_BODY));
  });

  test("one byte more is too-large, declared or chunked", async () => {
    upstream.on("/over", { body: bytes(MAX_BODY + 1) });
    upstream.on("/over-chunked", chunked(MAX_BODY + 1));
    expect(await fetchBody("/over")).toBe("too-large");
    expect(await fetchBody("/over-chunked")).toBe("too-large");
  });

  test("a compressed body is held to max_body once decompressed, whatever length it declares", async () => {
    // 16 MiB once inflated, about 16 KB on the wire, under this max_body of 64 KiB (a gzip bomb, or just a CDN).
    const gzip = (n: number) => () => new Response(Bun.gzipSync(bytes(n)), { headers: { "Content-Encoding": "gzip" } });
    upstream.on("/gzip-over", gzip(16 * 1024 * 1024));
    upstream.on("/gzip-exact", gzip(64 * 1024));
    expect(await fetchBody("/gzip-over", 64 * 1024)).toBe("too-large");
    expect(await fetchBody("/gzip-exact", 64 * 1024)).toEqual(bytes(64 * 1024));
  });

  test("an empty body and a small one are read as they are", async () => {
    upstream.on("/empty", { body: "" });
    upstream.on("/small", { body: '{"a": 1}' });
    expect(await fetchBody("/empty")).toEqual(new Uint8Array());
    expect(new TextDecoder().decode((await fetchBody("/small")) as Uint8Array)).toBe('{"a": 1}');
  });
});
