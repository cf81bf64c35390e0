/**
 * Outcomes as HTTP answers (src/http/answer.ts) in-process: a HEAD and a GET of one value in
 * the same second have the same headers, and only the GET a body; a fetched value's
 * Cache-Status tells a new value, a replaced one and a revalidated one apart; a 304 carries
 * the headers of the 200 that describe the value, and its ETag.
 */
import { createHash } from "node:crypto";
import { describe, expect, test } from "bun:test";
import { answer, etagOf, notModified, type ValueOutcome } from "../../src/http/answer";
import type { Outcome } from "../../src/resolver";
import { storedOf } from "../../src/store/store";

const NOW = 1_700_000_000_000;
const BODY = '{"v": "the value"}';

/** A hit and a stale answer of one value each. */
const outcomes = (): Record<"hit" | "stale", ValueOutcome> => ({
  hit: { kind: "hit", ...storedOf(new TextEncoder().encode(BODY), NOW - 1500), ttl: 60_000 },
  stale: { kind: "stale", ...storedOf(new TextEncoder().encode(BODY), NOW - 1500), detail: "backoff", collapsed: false, ttl: 0 },
});

async function seen(response: Response) {
  return { status: response.status, length: response.headers.get("content-length"), age: response.headers.get("age"), body: await response.text() };
}

describe("answers from memory, HEAD and GET", () => {
  for (const kind of ["hit", "stale"] as const) {
    test(`${kind}: a HEAD, then GETs of the same value in the same second, get the whole body`, async () => {
      const outcome = outcomes()[kind];
      const head = await seen(answer(outcome, NOW, true));
      expect(head).toEqual({ status: 200, length: String(BODY.length), age: "1", body: "" });
      for (let n = 0; n < 2; n++) {
        const get = answer(outcome, NOW, false);
        expect((await seen(get)).body).toBe(BODY);
        // No Content-Length of a bodiless answer may stand beside the body.
        expect([null, String(BODY.length)]).toContain(get.headers.get("content-length"));
      }
    });

    test(`${kind}: a GET, then HEADs of the same value in the same second, get no body`, async () => {
      const outcome = outcomes()[kind];
      expect((await seen(answer(outcome, NOW, false))).body).toBe(BODY);
      for (let n = 0; n < 2; n++) {
        const head = answer(outcome, NOW, true);
        expect(head.body).toBeNull();
        expect(await seen(head)).toEqual({ status: 200, length: String(BODY.length), age: "1", body: "" });
      }
    });
  }
});

describe("a fetched value's Cache-Status (RFC 9211)", () => {
  const fresh = (more: Partial<Extract<Outcome, { kind: "fresh" }>>): Outcome => ({ kind: "fresh", ...storedOf(new TextEncoder().encode(BODY), NOW), collapsed: false, replaced: true, stored: true, upstreamMs: 3, revalidated: false, ...more });
  const cases: [string, Outcome, string][] = [
    ["nothing was stored", fresh({ replaced: false }), "cachish; fwd=miss; fwd-status=200; stored"],
    ["a stored value was replaced", fresh({}), "cachish; fwd=stale; fwd-status=200; stored"],
    ["the stored value was revalidated (a 304)", fresh({ revalidated: true }), "cachish; fwd=stale; fwd-status=304; stored"],
    ["revalidated, the store's write failed", fresh({ revalidated: true, stored: false }), "cachish; fwd=stale; fwd-status=304"],
    ["revalidated, for a request that joined the fetch", fresh({ revalidated: true, collapsed: true }), "cachish; fwd=stale; fwd-status=304; stored; collapsed"],
  ];
  for (const [what, outcome, status] of cases) {
    test(`${what}: ${status}, X-Cache miss, no Age`, async () => {
      const response = answer(outcome, NOW + 400, false);
      expect([response.status, response.headers.get("cache-status"), response.headers.get("x-cache"), response.headers.get("age"), await response.text()]).toEqual([200, status, "miss", null, BODY]);
    });
  }
});

describe("ETag and 304 (SPEC 5.8)", () => {
  test("the ETag is the SHA-256 of the bytes, base64url between quotes, from a digest in any buffer", () => {
    for (const body of ["", BODY, "\u00e9".repeat(1000)]) {
      const digest = createHash("sha256").update(body).digest();
      const expected = `"${digest.toString("base64url")}"`;
      // A digest read from the store may sit inside a larger buffer.
      const inside = new Uint8Array(64);
      inside.set(digest, 16);
      expect([etagOf(digest), etagOf(new Uint8Array(digest)), etagOf(inside.subarray(16, 48))]).toEqual([expected, expected, expected]);
      expect(expected).toMatch(/^"[\x21\x23-\x7e]{43}"$/);
    }
  });

  for (const kind of ["hit", "stale"] as const) {
    test(`${kind}: a 304 has the 200's headers but those of its body, and no body; extra headers go on both`, async () => {
      const outcome = outcomes()[kind];
      const extra = { "Preference-Applied": "wait=5" };
      const full = answer(outcome, NOW, false, extra);
      const none = notModified(outcome, NOW, extra);
      const { "content-type": type, ...describing } = Object.fromEntries(full.headers);
      expect(type).toBe("application/json");
      expect(describing["preference-applied"]).toBe("wait=5");
      expect(describing.etag).toBe(`"${createHash("sha256").update(BODY).digest("base64url")}"`);
      expect({ status: none.status, headers: Object.fromEntries(none.headers), body: await none.text() }).toEqual({ status: 304, headers: describing, body: "" });
    });
  }
});
