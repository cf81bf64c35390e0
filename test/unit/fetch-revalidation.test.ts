/**
 * Conditional fetches (SPEC 5.8) in-process, through fetchItem and the bounded fetch, against
 * upstreams on 127.0.0.1 that answer 304 as RFC 9110 13.1 says: what each backend sends, what
 * a 304 gives, where the validators do not go (another origin, another definition of the item),
 * and a Hawk signature checked by the reference implementation with them in the request.
 */
import { afterAll, describe, expect, test } from "bun:test";
import Hawk from "@hapi/hawk";
import { basisOf, fetchItem, type Upstream as Fetched } from "../../src/backends";
import { UpstreamFailure } from "../../src/backends/failure";
import type { Item } from "../../src/config/types";
import type { KeptValidators } from "../../src/store/store";
import { check, yaml } from "../support/config";
import { conditional, type Resource, Upstream } from "../support/upstream";

/** The same resource at every request. */
const resource = (now: Resource) => conditional(() => now);

const home = new Upstream();
const elsewhere = new Upstream();
afterAll(() => Promise.all([home.close(), elsewhere.close()]));

const HAWK = { id: "hawk-id-R4", key: "hawk-key-T8m2" };
const LAST_MODIFIED = "Tue, 15 Nov 1994 12:45:26 GMT";

/** The items of one configuration; `json`: /json's parameters. */
function items(json = `url: "${home.url}/json"`): Map<string, Item> {
  const { config, problems } = check(
    yaml(
      "items:",
      "  /heroku:",
      "    module: Heroku",
      `    parameters: {api_url: "${home.url}/heroku", api_token: heroku-token-B2, app: my-app, config_key: DATABASE_URL}`,
      "  /hawk:",
      "    module: Hawk",
      `    parameters: {url: "${home.url}/hawk?q=1", secret_id: ${HAWK.id}, secret: ${HAWK.key}}`,
      "  /json:",
      "    module: JsonHttp",
      `    parameters: {${json}}`,
    ),
  );
  expect(problems.filter((p) => p.includes("error"))).toEqual([]);
  return config!.items;
}

const text = (fetched: Fetched) => (fetched.kind === "value" ? new TextDecoder().decode(fetched.value) : "not-modified");
/** The conditional headers of the last request that reached `path`. */
const asked = (upstream: Upstream, path: string) => {
  const { headers } = upstream.requests(path).at(-1)!;
  return { inm: headers["if-none-match"], ims: headers["if-modified-since"] };
};

async function failureOf(fetching: Promise<unknown>): Promise<string> {
  try {
    await fetching;
    return "no failure";
  } catch (error) {
    return error instanceof UpstreamFailure ? `${error.detail}: ${error.message}` : String(error);
  }
}

describe("conditional fetches, for each backend", () => {
  const cases = [
    { path: "/heroku", route: "/heroku/apps/my-app/config-vars", body: '{"DATABASE_URL": "postgres://a", "OTHER": 1}', value: '{"DATABASE_URL": "postgres://a"}' },
    { path: "/hawk", route: "/hawk", body: '{"h": 1}', value: '{"h": 1}' },
    { path: "/json", route: "/json", body: '{"j": 1}', value: '{"j": 1}' },
  ];
  for (const { path, route, body, value } of cases) {
    test(`${path}: the ETag as received goes back as If-None-Match; a 304 is not-modified, with the validators it sent`, async () => {
      const item = items().get(path)!;
      const basis = basisOf(item);
      home.on(route, resource({ body, etag: 'W/"v1"', on304: { ETag: '"v1-strong"' } }));
      const first = await fetchItem(item, Date.now());
      expect(first).toEqual({ kind: "value", value: new TextEncoder().encode(value), validators: { etag: 'W/"v1"', basis } });
      expect(asked(home, route)).toEqual({ inm: undefined, ims: undefined });
      const second = await fetchItem(item, Date.now(), (first as { validators: KeptValidators }).validators);
      expect(asked(home, route)).toEqual({ inm: 'W/"v1"', ims: undefined });
      expect(second).toEqual({ kind: "not-modified", validators: { etag: '"v1-strong"', basis } });
    });
  }

  test("Last-Modified alone goes back as If-Modified-Since; a 304 without validators keeps the old ones", async () => {
    const item = items().get("/json")!;
    home.on("/json", resource({ body: '{"j": 2}', lastModified: LAST_MODIFIED, on304: {} }));
    const first = await fetchItem(item, Date.now());
    expect(first).toMatchObject({ kind: "value", validators: { lastModified: LAST_MODIFIED, basis: basisOf(item) } });
    const second = await fetchItem(item, Date.now(), (first as { validators: KeptValidators }).validators);
    expect(asked(home, "/json")).toEqual({ inm: undefined, ims: LAST_MODIFIED });
    expect(second).toEqual({ kind: "not-modified", validators: { lastModified: LAST_MODIFIED, basis: basisOf(item) } });
  });

  test("both: both go back; a 304 with a new ETag replaces only the ETag", async () => {
    const item = items().get("/json")!;
    home.on("/json", resource({ body: '{"j": 3}', etag: '"e3"', lastModified: LAST_MODIFIED, on304: { ETag: '"e3b"' } }));
    const first = await fetchItem(item, Date.now());
    const second = await fetchItem(item, Date.now(), (first as { validators: KeptValidators }).validators);
    expect(asked(home, "/json")).toEqual({ inm: '"e3"', ims: LAST_MODIFIED });
    expect(second).toEqual({ kind: "not-modified", validators: { etag: '"e3b"', lastModified: LAST_MODIFIED, basis: basisOf(item) } });
  });

  test("a changed value: a 200 to the conditional request is the new value with its new validators", async () => {
    const item = items().get("/json")!;
    let version = 1;
    home.on("/json", conditional(() => ({ body: `{"version": ${version}}`, etag: `"${version}"` })));
    const first = await fetchItem(item, Date.now());
    version = 2;
    const second = await fetchItem(item, Date.now(), (first as { validators: KeptValidators }).validators);
    expect(asked(home, "/json")).toEqual({ inm: '"1"', ims: undefined });
    expect([text(second), second.validators?.etag]).toEqual(['{"version": 2}', '"2"']);
  });

  test("an answer without validators keeps none; a 304 to an unconditional request is a failure, status-304", async () => {
    const item = items().get("/json")!;
    home.json("/json", { plain: 1 });
    expect(await fetchItem(item, Date.now())).toEqual({ kind: "value", value: new TextEncoder().encode('{"plain": 1}') });
    home.on("/json", () => new Response(null, { status: 304, headers: { ETag: '"x"' } }));
    expect(await failureOf(fetchItem(item, Date.now()))).toBe("status-304: the upstream answered 304");
  });
});

describe("validators only where they belong", () => {
  test("kept for another definition of the item (another field, select, URL or header name), they are not sent", async () => {
    const item = items().get("/json")!;
    home.on("/json", resource({ body: '{"a": 1, "b": 2}', etag: '"ab"', lastModified: LAST_MODIFIED }));
    const { validators } = (await fetchItem(item, Date.now())) as { validators: KeptValidators };
    const url = `url: "${home.url}/json"`;
    for (const json of [`${url}, field: a`, `${url}, select: /a`, `url: "${home.url}/json?v=2"`, `${url}, headers: {Accept: text/json}`]) {
      const other = items(json).get("/json")!;
      expect(basisOf(other)).not.toBe(validators.basis);
      expect(text(await fetchItem(other, Date.now(), validators))).not.toBe("not-modified");
      expect({ json, ...asked(home, "/json") }).toEqual({ json, inm: undefined, ims: undefined });
    }
    // The same definition asks.
    expect(await fetchItem(items().get("/json")!, Date.now(), validators)).toMatchObject({ kind: "not-modified" });
  });

  test("the basis is the item's definition, not its policy, nor the order of the file's keys", () => {
    const [a, b, c] = [
      yaml("items:", "  /x: {module: JsonHttp, ttl: 5s, parameters: {url: 'http://h/x', field: [a, b], headers: {A: '1', B: {env: S}}}}"),
      yaml("items:", "  /x: {module: JsonHttp, refresh: 1s, parameters: {headers: {B: {env: S}, A: '1'}, field: [a, b], url: 'http://h/x'}}"),
      yaml("items:", "  /x: {module: JsonHttp, parameters: {url: 'http://h/x', field: [b, a], headers: {A: '1', B: {env: S}}}}"),
    ].map((source) => basisOf(check(source, { env: { S: "secret-1" } }).config!.items.get("/x")!));
    expect(a).toBe(b!);
    expect(c).not.toBe(a!);
    // A secret changed: the same basis (the upstream decides whether its answer changed), so the store keeps no digest of a secret.
    const d = basisOf(check(yaml("items:", "  /x: {module: JsonHttp, parameters: {url: 'http://h/x', field: [a, b], headers: {A: '1', B: {env: S}}}}"), { env: { S: "secret-2" } }).config!.items.get("/x")!);
    expect(d).toBe(a!);
    expect(a).toMatch(/^[0-9a-f]{64}$/);
  });

  test("a redirect within the origin keeps the conditional headers; one to another origin drops them, and its 304 is a failure", async () => {
    const item = items().get("/json")!;
    const held: KeptValidators = { etag: '"r1"', lastModified: LAST_MODIFIED, basis: basisOf(item) };
    home.on("/json", () => new Response(null, { status: 307, headers: { Location: "/json-moved" } }));
    home.on("/json-moved", resource({ body: '{"r": 1}', etag: '"r1"' }));
    expect(text(await fetchItem(item, Date.now(), held))).toBe("not-modified");
    expect(asked(home, "/json-moved")).toEqual({ inm: '"r1"', ims: LAST_MODIFIED });

    home.on("/json", () => new Response(null, { status: 302, headers: { Location: `${elsewhere.url}/landed` } }));
    elsewhere.on("/landed", resource({ body: '{"r": 2}', etag: '"r1"' }));
    expect(text(await fetchItem(item, Date.now(), held))).toBe('{"r": 2}');
    expect(asked(home, "/json")).toEqual({ inm: '"r1"', ims: LAST_MODIFIED });
    expect(asked(elsewhere, "/landed")).toEqual({ inm: undefined, ims: undefined });
    // Another origin that answers 304 all the same was asked nothing: not a revalidation.
    elsewhere.on("/landed", () => new Response(null, { status: 304 }));
    expect(await failureOf(fetchItem(item, Date.now(), held))).toBe("status-304: the upstream answered 304");
  });
});

test("Hawk: the reference implementation verifies a conditional request's signature (it covers no conditional header), and the 304 is not-modified", async () => {
  const item = items().get("/hawk")!;
  const verified: string[] = [];
  const hawkCheck = async (request: Request) => {
    const url = new URL(request.url);
    const req = { method: request.method, url: url.pathname + url.search, headers: Object.fromEntries(request.headers) };
    try {
      const { credentials, artifacts } = await Hawk.server.authenticate(req, (id) => (id === HAWK.id ? { id, key: HAWK.key, algorithm: "sha256" } : undefined));
      Hawk.server.authenticatePayload("", credentials, artifacts, "");
      verified.push(req.headers["if-none-match"] ?? "unconditional");
      return true;
    } catch {
      return false;
    }
  };
  const answer = resource({ body: '{"h": 2}', etag: '"h2"' });
  home.on("/hawk", async (request) => ((await hawkCheck(request)) ? answer(request) : new Response("unauthorized", { status: 401 })));
  const first = await fetchItem(item, Date.now());
  expect(text(first)).toBe('{"h": 2}');
  const second = await fetchItem(item, Date.now(), (first as { validators: KeptValidators }).validators);
  expect(second).toEqual({ kind: "not-modified", validators: { etag: '"h2"', basis: basisOf(item) } });
  expect(verified).toEqual(["unconditional", '"h2"']);
});
