/**
 * Outcomes and errors as HTTP answers (SPEC 5.2): the value with `X-Cache`, `Age` and
 * `Cache-Status` (RFC 9211), the 503 of 1.x, and one-line text/plain errors.
 */
import type { Outcome } from "../resolver";
import { VERSION } from "../version";

export const SERVER = `Cachish/${VERSION}`;
export const ALLOW = "GET, HEAD, OPTIONS";
const UPSTREAM_FAILURE = "Upstream failure";

const seconds = (ms: number) => Math.max(0, Math.floor(ms / 1000));

type ValueOutcome = Extract<Outcome, { kind: "hit" | "stale" }>;

/**
 * The `ttl` of Cache-Status for an answer from memory: the seconds of freshness left, or (a
 * negative number) how long ago it ended; undefined for a stale value where no ttl applies.
 */
function ttlOf(outcome: ValueOutcome, now: number): number | undefined {
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

export function answer(outcome: Outcome, now: number, head: boolean): Response {
  const headers: Record<string, string> = { Server: SERVER, "Cache-Status": cacheStatus(outcome, now) };
  if (outcome.kind === "unavailable") {
    headers["Content-Type"] = "text/plain; charset=utf-8";
    headers["X-Cache"] = "miss";
    if (outcome.retryAfter) headers["Retry-After"] = String(outcome.retryAfter);
    return new Response(head ? null : UPSTREAM_FAILURE, { status: 503, headers });
  }
  headers["Content-Type"] = "application/json";
  // 1.x's clients read X-Cache: `hit` for a value from the store, with its Age.
  if (outcome.kind === "fresh") {
    headers["X-Cache"] = "miss";
  } else {
    headers["X-Cache"] = "hit";
    headers.Age = String(seconds(now - outcome.fetchedAt));
  }
  if (head) headers["Content-Length"] = String(outcome.value.byteLength);
  return new Response(head ? null : outcome.value, { status: 200, headers });
}

/** One line of text saying what is wrong; never the token. */
export function problem(status: number, message: string, extra: Record<string, string> = {}): Response {
  return new Response(`${message}\n`, { status, headers: { Server: SERVER, "Content-Type": "text/plain; charset=utf-8", ...extra } });
}
