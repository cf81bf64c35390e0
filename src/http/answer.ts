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

type ValueOutcome = Extract<Outcome, { kind: "hit" | "stale" }>;

/**
 * The headers of an answer from memory (a hit, or a stale value while the upstream fails)
 * change at most once a second (Age, the ttl left or past), so each value keeps the last set
 * it was answered with and what it was built from: building a Headers object is most of the
 * cost of such an answer.
 */
type KeptHeaders = { kind: string; age: number; ttl: number; detail: string; collapsed: boolean; head: boolean; headers: Headers };
const keptHeaders = new WeakMap<Uint8Array, KeptHeaders>();

function valueHeaders(outcome: ValueOutcome, now: number, head: boolean): Headers {
  const age = seconds(now - outcome.fetchedAt);
  const stale = outcome.kind === "stale";
  // What the Cache-Status ttl says: the freshness left, or how long ago it ended.
  const ttl = stale ? (outcome.ttl > 0 ? -seconds(now - outcome.fetchedAt - outcome.ttl) : 0) : Math.max(0, Math.ceil((outcome.fetchedAt + outcome.ttl - now) / 1000));
  const detail = stale ? outcome.detail : "";
  const collapsed = stale && outcome.collapsed;
  const kept = keptHeaders.get(outcome.value);
  if (kept !== undefined && kept.age === age && kept.ttl === ttl && kept.kind === outcome.kind && kept.detail === detail && kept.collapsed === collapsed && kept.head === head) return kept.headers;
  const headers = new Headers({ Server: SERVER, "Cache-Status": cacheStatus(outcome, now), "Content-Type": "application/json", "X-Cache": "hit", Age: String(age) });
  if (head) headers.set("Content-Length", String(outcome.value.byteLength));
  keptHeaders.set(outcome.value, { kind: outcome.kind, age, ttl, detail, collapsed, head, headers });
  return headers;
}

export function answer(outcome: Outcome, now: number, head: boolean): Response {
  if (outcome.kind === "hit" || outcome.kind === "stale") return new Response(head ? null : outcome.value, { status: 200, headers: valueHeaders(outcome, now, head) });
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
