/**
 * The one bounded upstream fetch all backends use: a `GET` with our User-Agent, the whole
 * exchange (connect, headers, body) under one deadline, the body read in chunks and cut off
 * at `max_body` whatever Content-Length says, and every way it can go wrong turned into an
 * UpstreamFailure of a known kind. A fetch given the validators of the value it has asks
 * whether that value is still current (SPEC 5.8): a 304 answers yes, with no body.
 */
import { connectProblem } from "../error-text";
import { VERSION } from "../version";
import { UpstreamFailure } from "./failure";

export const USER_AGENT = `cachish/${VERSION}`;

/** What an upstream sent to tell a later fetch whether its value changed (RFC 9110 8.8), each as received. */
export type Validators = { etag?: string; lastModified?: string };

/** `conditional`: the validators of the value held, sent as `If-None-Match` and `If-Modified-Since`. */
export type UpstreamRequest = { url: string; headers: Record<string, string>; conditional?: Validators };
/** `proxy`: the item's `proxy` (SPEC 3); none from the environment (see src/environment.ts). */
export type Limits = { timeout: number; maxBody: number; proxy?: string };

/**
 * A body, the charset its `Content-Type` names (if any) and the validators that came with it;
 * or `not-modified`: a 304 to a conditional request, with the validators it sent (if any).
 */
export type Fetched = { kind: "body"; body: Uint8Array; charset: string | undefined; validators: Validators } | { kind: "not-modified"; validators: Validators };

export async function boundedFetch(request: UpstreamRequest, limits: Limits): Promise<Fetched> {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, limits.timeout);
  try {
    const { response, conditional } = await follow(request, controller.signal, () => timedOut, limits);
    // A 304 to a request that asked nothing answers no question: it is a failure like any status.
    if (response.status === 304 && conditional) {
      await response.body?.cancel().catch(() => {});
      return { kind: "not-modified", validators: validatorsOf(response) };
    }
    if (response.status < 200 || response.status > 299) {
      await response.body?.cancel().catch(() => {});
      throw new UpstreamFailure("status", `the upstream answered ${response.status}`, response.status);
    }
    const declared = Number(response.headers.get("content-length"));
    if (Number.isFinite(declared) && declared > limits.maxBody) {
      await response.body?.cancel().catch(() => {});
      throw new UpstreamFailure("too-large", `the body is ${declared} bytes, over max_body (${limits.maxBody})`);
    }
    // Bun decompresses what it reads, and the declared length is the compressed one: only an
    // uncompressed body's declared length bounds what `bytes()` makes of it.
    const whole = response.headers.has("content-length") && Number.isFinite(declared) && !response.headers.has("content-encoding");
    // As requests reads it: the last `charset` parameter, without quotes of either kind.
    const charset = [...(response.headers.get("content-type") ?? "").matchAll(/;\s*charset\s*=\s*["']?([^"';\s]+)/gi)].at(-1)?.[1];
    return { kind: "body", body: await readCapped(response, whole, limits.maxBody, () => timedOut, limits.timeout), charset, validators: validatorsOf(response) };
  } finally {
    clearTimeout(timer);
  }
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;

function validatorsOf(response: Response): Validators {
  const etag = response.headers.get("etag");
  const lastModified = response.headers.get("last-modified");
  return { ...(etag ? { etag } : {}), ...(lastModified ? { lastModified } : {}) };
}

function conditionalHeaders(validators: Validators | undefined): Record<string, string> {
  return { ...(validators?.etag ? { "If-None-Match": validators.etag } : {}), ...(validators?.lastModified ? { "If-Modified-Since": validators.lastModified } : {}) };
}

/**
 * Follows redirects as 1.x (Python requests) did, but by hand: a hop to another origin drops
 * every header the item configured (an API token, a Hawk signature), so that a redirect
 * cannot carry a credential to a host it was not meant for, and the conditional headers, which
 * name a value of the first origin. `conditional`: whether the last hop asked with them.
 */
async function follow(request: UpstreamRequest, signal: AbortSignal, timedOut: () => boolean, { timeout, proxy }: Limits): Promise<{ response: Response; conditional: boolean }> {
  let url = new URL(request.url);
  const asked = conditionalHeaders(request.conditional);
  let headers = { ...request.headers, ...asked };
  let conditional = Object.keys(asked).length > 0;
  for (let hop = 0; ; hop++) {
    let response: Response;
    try {
      response = await fetch(url.href, {
        method: "GET",
        headers: { ...headers, "User-Agent": USER_AGENT },
        signal,
        redirect: "manual",
        // Bun's own idle timer must not fire before the item's timeout.
        timeout: false,
        ...(proxy ? { proxy } : {}),
      } as RequestInit);
    } catch (error) {
      if (timedOut()) throw new UpstreamFailure("timeout", `no answer within ${timeout} ms`);
      throw new UpstreamFailure("connect", connectProblem(error));
    }
    const location = response.headers.get("location");
    if (!REDIRECTS.has(response.status) || !location) return { response, conditional };
    await response.body?.cancel().catch(() => {});
    if (hop >= MAX_REDIRECTS) throw new UpstreamFailure("status", `more than ${MAX_REDIRECTS} redirects`, response.status);
    const next = URL.canParse(location, url.href) ? new URL(location, url.href) : undefined;
    if (!next || (next.protocol !== "http:" && next.protocol !== "https:")) {
      throw new UpstreamFailure("status", "a redirect to an unusable location", response.status);
    }
    if (next.origin !== url.origin) {
      headers = {};
      conditional = false;
    }
    url = next;
  }
}

/**
 * The body, at most `maxBody` bytes. A body whose length was declared (and found within
 * `maxBody`) and that is not compressed is read by Bun in one piece: it costs its size once.
 * Any other (chunked, or compressed: its decompressed size is known only as it is read) is read
 * chunk by chunk into one buffer that grows in place (a resizable ArrayBuffer
 * reserves `maxBody` of address space, not of memory) and is cut off at `maxBody`: measured, it
 * costs about twice its size until its chunks are collected.
 */
async function readCapped(response: Response, whole: boolean, maxBody: number, timedOut: () => boolean, timeout: number): Promise<Uint8Array> {
  try {
    if (whole) return await response.bytes();
    const reader = response.body?.getReader();
    if (!reader) return new Uint8Array(0);
    const body = await readUpTo(reader, maxBody);
    if (!body) throw new UpstreamFailure("too-large", `the body is over max_body (${maxBody} bytes)`);
    return body;
  } catch (error) {
    if (error instanceof UpstreamFailure) throw error;
    if (timedOut()) throw new UpstreamFailure("timeout", `the body did not arrive within ${timeout} ms`);
    throw new UpstreamFailure("connect", `the connection broke while reading the body: ${connectProblem(error)}`);
  }
}

/** A stream's reader, as a Response's body and a child process's pipe each give one. */
export type ChunkReader = { read(): Promise<{ done: boolean; value?: Uint8Array }>; cancel(): Promise<void> };

/**
 * A stream read to its end into one buffer that grows in place (a resizable ArrayBuffer
 * reserves `maxBody` of address space, not of memory); undefined, and the stream cancelled, as
 * soon as it holds more than `maxBody`: the rest is never read.
 */
export async function readUpTo(reader: ChunkReader, maxBody: number): Promise<Uint8Array | undefined> {
  const buffer = new ArrayBuffer(0, { maxByteLength: maxBody });
  for (;;) {
    const { done, value } = await reader.read();
    if (done || !value) return new Uint8Array(buffer);
    const size = buffer.byteLength;
    if (size + value.byteLength > maxBody) {
      await reader.cancel().catch(() => {});
      return undefined;
    }
    buffer.resize(size + value.byteLength);
    new Uint8Array(buffer).set(value, size);
  }
}
