/**
 * Outcomes and errors as HTTP answers (SPEC 5.2, 5.8): the value with `X-Cache`, `Age`,
 * `Cache-Status` (RFC 9211) and `ETag`, a 304 that describes it without its bytes, the 503 of
 * 1.x, and one-line text/plain errors.
 */
import type { Outcome } from "../resolver";
import { VERSION } from "../version";

export const SERVER = `Cachish/${VERSION}`;
export const ALLOW = "GET, HEAD, OPTIONS";
const UPSTREAM_FAILURE = "Upstream failure";

const seconds = (ms: number) => Math.max(0, Math.floor(ms / 1000));

/** An outcome with a value to send: what a 200 or a 304 describes. */
export type ValueOutcome = Exclude<Outcome, { kind: "unavailable" }>;

/**
 * The value's strong validator (RFC 9110 8.8.3): its SHA-256, computed once where the value
 * was made or read, written as base64url between quotes (every character of it an `etagc`).
 */
export const etagOf = (sha256: Uint8Array): string => `"${Buffer.from(sha256.buffer, sha256.byteOffset, sha256.byteLength).toString("base64url")}"`;

/**
 * The `ttl` of Cache-Status for an answer from memory: the seconds of freshness left, or (a
 * negative number) how long ago it ended; undefined for a stale value where no ttl applies.
 */
function ttlOf(outcome: Extract<Outcome, { kind: "hit" | "stale" }>, now: number): number | undefined {
  if (outcome.kind === "hit") return Math.max(0, Math.ceil((outcome.fetchedAt + outcome.ttl - now) / 1000));
  return outcome.ttl > 0 ? -seconds(now - outcome.fetchedAt - outcome.ttl) : undefined;
}

/** The `Cache-Status` entry of cachish for an outcome. */
export function cacheStatus(outcome: Outcome, now: number): string {
  let text: string;
  switch (outcome.kind) {
    case "hit":
      return `cachish; hit; ttl=${ttlOf(outcome, now)}`;
    case "fresh":
      text = outcome.revalidated ? "cachish; fwd=stale; fwd-status=304" : outcome.replaced ? "cachish; fwd=stale; fwd-status=200" : "cachish; fwd=miss; fwd-status=200";
      // Only a value the store really wrote is `stored` (RFC 9211): a failed write is not.
      if (outcome.stored) text += "; stored";
      break;
    case "stale": {
      const ttl = ttlOf(outcome, now);
      text = ttl !== undefined ? `cachish; hit; ttl=${ttl}; detail=${outcome.detail}` : `cachish; hit; detail=${outcome.detail}`;
      break;
    }
    case "unavailable":
      text = `cachish; fwd=miss${outcome.status !== undefined ? `; fwd-status=${outcome.status}` : ""}; detail=${outcome.detail}`;
      break;
  }
  return outcome.collapsed ? `${text}; collapsed` : text;
}

/**
 * The headers that describe a value, the same on its 200 and its 304 (RFC 9110 15.4.5): where
 * it came from, its age, its ETag; not those of a body.
 */
function described(outcome: ValueOutcome, now: number, extra: Record<string, string>): Record<string, string> {
  const headers: Record<string, string> = { Server: SERVER, "Cache-Status": cacheStatus(outcome, now), ETag: etagOf(outcome.sha256), ...extra };
  // 1.x's clients read X-Cache: `hit` for a value from the store, with its Age.
  if (outcome.kind === "fresh") {
    headers["X-Cache"] = "miss";
  } else {
    headers["X-Cache"] = "hit";
    headers.Age = String(seconds(now - outcome.fetchedAt));
  }
  return headers;
}

/** The outcome as a 200 with the value (a HEAD: without its bytes), or the 503 of 1.x; `extra` headers go on a 200. */
export function answer(outcome: Outcome, now: number, head: boolean, extra: Record<string, string> = {}): Response {
  if (outcome.kind === "unavailable") {
    const headers: Record<string, string> = { Server: SERVER, "Cache-Status": cacheStatus(outcome, now), "Content-Type": "text/plain; charset=utf-8", "X-Cache": "miss" };
    if (outcome.retryAfter) headers["Retry-After"] = String(outcome.retryAfter);
    return new Response(head ? null : UPSTREAM_FAILURE, { status: 503, headers });
  }
  const headers = described(outcome, now, extra);
  headers["Content-Type"] = "application/json";
  if (head) headers["Content-Length"] = String(outcome.value.byteLength);
  return new Response(head ? null : outcome.value, { status: 200, headers });
}

/** 304: the client's copy is the current value (SPEC 5.8); the headers a 200 would have had, no body. */
export function notModified(outcome: ValueOutcome, now: number, extra: Record<string, string> = {}): Response {
  return new Response(null, { status: 304, headers: described(outcome, now, extra) });
}

/** One line of text saying what is wrong; never the token. */
export function problem(status: number, message: string, extra: Record<string, string> = {}): Response {
  return new Response(`${message}\n`, { status, headers: { Server: SERVER, "Content-Type": "text/plain; charset=utf-8", ...extra } });
}
