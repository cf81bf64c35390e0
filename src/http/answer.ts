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

/** The `Cache-Status` entry of cachish for an outcome (concatenated: it is built for every answer). */
export function cacheStatus(outcome: Outcome, now: number): string {
  let text: string;
  switch (outcome.kind) {
    case "hit":
      return `cachish; hit; ttl=${ttlOf(outcome, now)}`;
    case "fresh":
      text = outcome.replaced ? "cachish; fwd=stale; fwd-status=200" : "cachish; fwd=miss; fwd-status=200";
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
 * An answer from memory (a hit, or a stale value while the upstream fails) changes at most
 * once a second (Age, the ttl left or past), so each value keeps the last answer it was given
 * as, and what that was built from; each request gets a clone of it. Building the headers is
 * most of the cost of such an answer, and a clone is cheaper than a new Response.
 */
type Kept = { kind: string; age: number; ttl: number | undefined; detail: string; collapsed: boolean; head: boolean; response: Response };
const kept = new WeakMap<Uint8Array, Kept>();

function valueAnswer(outcome: ValueOutcome, now: number, head: boolean): Response {
  const age = seconds(now - outcome.fetchedAt);
  const stale = outcome.kind === "stale";
  const ttl = ttlOf(outcome, now);
  const detail = stale ? outcome.detail : "";
  const collapsed = stale && outcome.collapsed;
  const last = kept.get(outcome.value);
  if (last !== undefined && last.age === age && last.ttl === ttl && last.kind === outcome.kind && last.detail === detail && last.collapsed === collapsed && last.head === head) return last.response.clone() as Response;
  const headers = new Headers({ Server: SERVER, "Cache-Status": cacheStatus(outcome, now), "Content-Type": "application/json", "X-Cache": "hit", Age: String(age) });
  if (head) headers.set("Content-Length", String(outcome.value.byteLength));
  const response = new Response(head ? null : outcome.value, { status: 200, headers });
  kept.set(outcome.value, { kind: outcome.kind, age, ttl, detail, collapsed, head, response });
  return response.clone() as Response; // (typed as undici's Response by @types/node)
}

export function answer(outcome: Outcome, now: number, head: boolean): Response {
  if (outcome.kind === "hit" || outcome.kind === "stale") return valueAnswer(outcome, now, head);
  const headers: Record<string, string> = { Server: SERVER, "Cache-Status": cacheStatus(outcome, now) };
  if (outcome.kind === "unavailable") {
    headers["Content-Type"] = "text/plain; charset=utf-8";
    headers["X-Cache"] = "miss";
    if (outcome.retryAfter) headers["Retry-After"] = String(outcome.retryAfter);
    return new Response(head ? null : UPSTREAM_FAILURE, { status: 503, headers });
  }
  headers["Content-Type"] = "application/json";
  headers["X-Cache"] = "miss";
  if (head) headers["Content-Length"] = String(outcome.value.byteLength);
  return new Response(head ? null : outcome.value, { status: 200, headers });
}

/** One line of text saying what is wrong; never the token. */
export function problem(status: number, message: string, extra: Record<string, string> = {}): Response {
  return new Response(`${message}\n`, { status, headers: { Server: SERVER, "Content-Type": "text/plain; charset=utf-8", ...extra } });
}
