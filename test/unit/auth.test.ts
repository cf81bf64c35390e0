import { describe, expect, test } from "bun:test";
import Hawk from "@hapi/hawk";
import { hawkHeader } from "../../src/backends/hawk";
import { Secret } from "../../src/config/secret";
import { authenticate } from "../../src/http/auth";
import { check, yaml } from "../support/config";

const { config } = check(
  yaml(
    "items:",
    "  /a: {module: JsonHttp, parameters: {url: 'http://x/a'}}",
    "  /b/c: {module: JsonHttp, parameters: {url: 'http://x/b'}}",
    "auth:",
    "  web: {token: tok-web, url: /a}",
    `  api: {token_sha256: ${new Bun.CryptoHasher("sha256").update("tok-api").digest("hex")}, url: "/b/*"}`,
  ),
);
const clients = config!.clients;
const basic = (s: string) => `Basic ${Buffer.from(s).toString("base64")}`;

describe("authenticate", () => {
  test("Bearer and Basic (the user name is the token), schemes in any case", () => {
    for (const header of ["Bearer tok-web", "bearer tok-web", "BEARER  tok-web ", basic("tok-web:pw"), basic("tok-web:"), `bAsIc ${Buffer.from("tok-web:x").toString("base64")}`]) {
      const result = authenticate(header, "/a", clients);
      expect({ header, ok: result.ok, client: result.ok ? result.client.name : undefined }).toEqual({ header, ok: true, client: "web" });
    }
  });

  test("token_sha256 clients and globs that span slashes", () => {
    const result = authenticate("Bearer tok-api", "/b/c", clients);
    expect(result.ok && result.client.name).toBe("api");
  });

  test("token_sha256: a digest that differs from the token's in any one byte, first, middle or last, is refused", () => {
    // No token is known whose digest shares half of another's, but with token_sha256 the
    // configuration chooses the digest: each client below holds the real digest of
    // `tok-near` with one byte changed, so only a comparison of all 32 bytes refuses them all.
    const real = new Bun.CryptoHasher("sha256").update("tok-near").digest();
    const near = Array.from({ length: 32 }, (_, i) => {
      const digest = Buffer.from(real);
      digest[i] = digest[i]! ^ 0x01;
      return `  near-${i}: {token_sha256: ${digest.toString("hex")}, url: /a}`;
    });
    const { config: nearConfig, problems } = check(yaml("items:", "  /a: {module: JsonHttp, parameters: {url: 'http://x/a'}}", "  /b: {module: JsonHttp, parameters: {url: 'http://x/b'}}", "auth:", ...near, `  exact: {token_sha256: ${real.toString("hex")}, url: /b}`));
    expect(problems).toEqual([]);
    const byName = new Map(nearConfig!.clients.map((c) => [c.name, c]));
    const accepted = [];
    for (let i = 0; i < 32; i++) {
      for (const header of ["Bearer tok-near", basic("tok-near:pw")]) {
        const result = authenticate(header, "/a", [byName.get(`near-${i}`)!]);
        if (result.ok || result.status !== 403) accepted.push({ byte: i, header: header.slice(0, 6), status: result.ok ? 200 : result.status });
      }
    }
    expect(accepted).toEqual([]);
    // All of them at once, and the right digest (whose globs miss /a) among them: still 403.
    expect(authenticate("Bearer tok-near", "/a", nearConfig!.clients)).toMatchObject({ ok: false, status: 403 });
    // The exact digest is accepted, so the refusals above are the digest's doing.
    const exact = authenticate("Bearer tok-near", "/b", nearConfig!.clients);
    expect(exact.ok && exact.client.name).toBe("exact");
  });

  test("401, 400 and 403 as SPEC 5.1 orders them", () => {
    const status = (header: string | null, path = "/a") => {
      const r = authenticate(header, path, clients);
      return r.ok ? 200 : r.status;
    };
    expect(status(null)).toBe(401);
    expect(status("")).toBe(401);
    expect(status("   ")).toBe(401);
    expect(status("Bearer")).toBe(400);
    expect(status("Basic")).toBe(400);
    expect(status("Basic not*base64")).toBe(400);
    // A Basic value without a `:` is the token as a whole, as 1.x read it (SPEC 5.1).
    expect(status(basic("no-colon"))).toBe(403);
    expect(status(basic("tok-web"))).toBe(200);
    // A byte order mark is part of the user name, as Werkzeug read it: not the token.
    expect(status(basic("\ufefftok-web:x"))).toBe(403);
    // Valid base64 that is not UTF-8 is malformed, not a wrong token.
    expect(status(`Basic ${Buffer.from([0xff, 0xfe, 0x3a, 0x78]).toString("base64")}`)).toBe(400);
    expect(status("Negotiate abc")).toBe(400);
    expect(status("Bearer nope")).toBe(403);
    expect(status("Bearer tok-web", "/b/c")).toBe(403);
    expect(status(basic(":tok-web"))).toBe(403);
  });

  test("a refusal never holds the token", () => {
    for (const header of ["Bearer tok-secret-1", basic("tok-secret-1:x"), "Bearer tok-secret-1 x", "Weird tok-secret-1"]) {
      const result = authenticate(header, "/a", clients);
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.message).not.toContain("tok-secret-1");
    }
  });
});

describe("the Hawk header", () => {
  test("verifies with the reference implementation, for sha256 and sha1, with the query in the resource", async () => {
    for (const algorithm of ["sha256", "sha1"] as const) {
      const params = { secret_id: new Secret("id-1"), secret: new Secret("key-1"), url: "https://api.example.com:8443/path/x?a=1&b=2", algorithm };
      const header = hawkHeader(params, Date.now());
      const req = { method: "GET", url: "/path/x?a=1&b=2", headers: { host: "api.example.com:8443", authorization: header } };
      const { credentials, artifacts } = await Hawk.server.authenticate(req, (id) => (id === "id-1" ? { id, key: "key-1", algorithm } : undefined));
      expect(artifacts.resource).toBe("/path/x?a=1&b=2");
      expect(() => Hawk.server.authenticatePayload("", credentials, artifacts, "")).not.toThrow();
    }
  });

  test("a wrong key does not verify", async () => {
    const params = { secret_id: new Secret("id-1"), secret: new Secret("other"), url: "http://h/p", algorithm: "sha256" as const };
    const req = { method: "GET", url: "/p", headers: { host: "h", authorization: hawkHeader(params, Date.now()) } };
    await expect(Hawk.server.authenticate(req, (id) => ({ id, key: "key-1", algorithm: "sha256" }))).rejects.toThrow();
  });
});
