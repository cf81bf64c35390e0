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

/** The `Cache-Status` entry of cachish for an outcome (concatenated: it is built for every answer). */
export function cacheStatus(outcome: Outcome, now: number): string {
  let text: string;
  switch (outcome.kind) {
    case "hit":
      return `cachish; hit; ttl=${Math.max(0, Math.ceil((outcome.fetchedAt + outcome.ttl - now) / 1000))}`;
    case "fresh":
      text = outcome.replaced ? "cachish; fwd=stale; fwd-status=200; stored" : "cachish; fwd=miss; fwd-status=200; stored";
      break;
    case "stale":
      // A negative ttl says how long ago the value stopped being fresh, where a ttl applies.
      text = outcome.ttl > 0 ? `cachish; hit; ttl=${-seconds(now - outcome.fetchedAt - outcome.ttl)}; detail=${outcome.detail}` : `cachish; hit; detail=${outcome.detail}`;
      break;
    case "unavailable":
      text = `cachish; fwd=miss${outcome.status !== undefined ? `; fwd-status=${outcome.status}` : ""}; detail=${outcome.detail}`;
      break;
  }
  return outcome.collapsed ? `${text}; collapsed` : text;
}

/**
 * The headers of a hit change at most once a second (Age, the ttl left), so each value keeps
 * the last set it was answered with: building a Headers object is most of the cost of an answer.
 */
const hitHeaders = new WeakMap<Uint8Array, { key: string; headers: Headers }>();

function headersOfHit(outcome: Extract<Outcome, { kind: "hit" }>, now: number, head: boolean): Headers {
  const age = String(seconds(now - outcome.fetchedAt));
  const status = cacheStatus(outcome, now);
  const key = `${age}|${status}|${head}`;
  const kept = hitHeaders.get(outcome.value);
  if (kept?.key === key) return kept.headers;
  const headers = new Headers({ Server: SERVER, "Cache-Status": status, "Content-Type": "application/json", "X-Cache": "hit", Age: age });
  if (head) headers.set("Content-Length", String(outcome.value.byteLength));
  hitHeaders.set(outcome.value, { key, headers });
  return headers;
}

export function answer(outcome: Outcome, now: number, head: boolean): Response {
  if (outcome.kind === "hit") return new Response(head ? null : outcome.value, { status: 200, headers: headersOfHit(outcome, now, head) });
  const headers: Record<string, string> = { Server: SERVER, "Cache-Status": cacheStatus(outcome, now) };
  if (outcome.kind === "unavailable") {
    headers["Content-Type"] = "text/plain; charset=utf-8";
    headers["X-Cache"] = "miss";
    if (outcome.retryAfter) headers["Retry-After"] = String(outcome.retryAfter);
    return new Response(head ? null : UPSTREAM_FAILURE, { status: 503, headers });
  }
  headers["Content-Type"] = "application/json";
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
