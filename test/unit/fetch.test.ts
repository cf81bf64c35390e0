/**
 * The bounded upstream fetch against a real HTTP server on 127.0.0.1: `max_body` is the
 * largest body accepted, whether the upstream declares its length or streams it in chunks.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { UpstreamFailure } from "../../src/backends/failure";
import { boundedFetch } from "../../src/backends/fetch";
import { Upstream } from "../support/upstream";

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

async function fetchBody(path: string): Promise<Uint8Array | string> {
  try {
    return await boundedFetch({ url: `${upstream.url}${path}`, headers: {} }, { timeout: 5000, maxBody: MAX_BODY });
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

  test("an empty body and a small one are read as they are", async () => {
    upstream.on("/empty", { body: "" });
    upstream.on("/small", { body: '{"a": 1}' });
    expect(await fetchBody("/empty")).toEqual(new Uint8Array());
    expect(new TextDecoder().decode((await fetchBody("/small")) as Uint8Array)).toBe('{"a": 1}');
  });
});
