/**
 * `select` as clients see it: `dist/cachish serve` against an upstream on 127.0.0.1 that
 * answers as Vault's KV v2 HTTP API does (the secret nested at `data.data`).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { Daemon } from "../support/daemon";
import { Upstream } from "../support/upstream";

const upstream = new Upstream();
afterAll(() => upstream.close());

const TOKEN = "web-Vk2s9Qe4";
const DATABASE_URL = "postgres://app:s3cret-Pw7@db.internal:5432/app";

/** What `GET /v1/secret/data/app` answers (its `metadata` shortened), as its bytes: numbers and key order as Vault writes them. */
const kvV2 = (data: string) =>
  `{"request_id":"6f1a0e9c-2d4b-4c1e-9a57-0c3d1f7b8e21","lease_id":"","renewable":false,"lease_duration":0,` +
  `"data":{"data":${data},"metadata":{"created_time":"2025-05-20T10:12:31.5Z","custom_metadata":null,"deletion_time":"","destroyed":false,"version":3}},` +
  `"wrap_info":null,"warnings":null,"auth":null,"mount_type":"kv"}`;

const config = `
listen: 127.0.0.1:0
cache_dir: store
defaults: {max_backoff: 0s}
items:
  /database-url:
    module: JsonHttp
    parameters:
      url: ${upstream.url}/v1/secret/data/app
      headers: {X-Vault-Token: hvs.test-token}
      select: /data/data
      field: DATABASE_URL
  /app-secret:
    module: Hawk
    parameters:
      url: ${upstream.url}/v1/secret/data/app
      secret_id: id
      secret: key
      select: /data/data
  /version:
    module: JsonHttp
    parameters: {url: "${upstream.url}/v1/secret/data/app", select: /data/metadata/version}
  /nothing:
    module: JsonHttp
    parameters: {url: "${upstream.url}/v1/secret/data/app", select: /data/secret/data}
auth:
  web: {token: ${TOKEN}, url: "/*"}
`;

describe("select over a Vault KV v2 answer", () => {
  test("the part it points at, served exactly; field picks from that part; a pointer that finds nothing is missing-field; a stored value is served stale", async () => {
    let body = kvV2(`{"DATABASE_URL":"${DATABASE_URL}","PORT":5432.0,"10":"Zoë"}`);
    upstream.on("/v1/secret/data/app", () => new Response(body, { headers: { "Content-Type": "application/json" } }));
    const daemon = await Daemon.start(config);
    const get = async (path: string) => {
      const res = await daemon.fetch(path, { token: TOKEN });
      return { status: res.status, body: await res.text(), cache: res.headers.get("cache-status"), type: res.headers.get("content-type") };
    };

    expect(await get("/database-url")).toEqual({ status: 200, body: `{"DATABASE_URL": "${DATABASE_URL}"}`, cache: "cachish; fwd=miss; fwd-status=200; stored", type: "application/json" });
    expect(await get("/app-secret")).toEqual({
      status: 200,
      body: `{"DATABASE_URL": "${DATABASE_URL}", "PORT": 5432.0, "10": "Zo\\u00eb"}`,
      cache: "cachish; fwd=miss; fwd-status=200; stored",
      type: "application/json",
    });
    expect(await get("/version")).toEqual({ status: 200, body: "3", cache: "cachish; fwd=miss; fwd-status=200; stored", type: "application/json" });
    expect(upstream.requests("/v1/secret/data/app").filter((r) => r.headers["x-vault-token"] === "hvs.test-token").length).toBe(1);

    // Nothing stored: 503.
    expect(await get("/nothing")).toEqual({ status: 503, body: "Upstream failure", cache: "cachish; fwd=miss; detail=missing-field", type: "text/plain; charset=utf-8" });

    // The secret deleted (Vault's answer keeps `data` with `data: null`): the stored value is served, and says why.
    body = kvV2("null");
    expect(await get("/database-url")).toEqual({ status: 200, body: `{"DATABASE_URL": "${DATABASE_URL}"}`, cache: "cachish; hit; detail=missing-field", type: "application/json" });
    // The secret's path gone from the answer: the same.
    body = '{"errors":[]}';
    expect(await get("/app-secret")).toEqual({
      status: 200,
      body: `{"DATABASE_URL": "${DATABASE_URL}", "PORT": 5432.0, "10": "Zo\\u00eb"}`,
      cache: "cachish; hit; detail=missing-field",
      type: "application/json",
    });

    await daemon.stop();
    const failures = daemon.logs("upstream failure").map((l) => [l.item, l.failure, l.reason]);
    expect(failures).toEqual([
      ["/nothing", "missing-field", "nothing in the answer is where `select` points: its 2nd reference token names no member of an object"],
      ["/database-url", "missing-field", "the part of the answer `select` points at is not an object"],
      ["/app-secret", "missing-field", "nothing in the answer is where `select` points: its 1st reference token names no member of an object"],
    ]);
    // Neither the answer's content nor the configuration's pointer is logged.
    expect(daemon.lines.join("\n")).not.toContain("s3cret");
    expect(daemon.lines.join("\n")).not.toContain("/data/secret");
  });
});
