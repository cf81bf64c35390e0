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

/** The `Cache-Status` entry of cachish for an outcome. */
export function cacheStatus(outcome: Outcome, now: number): string {
  const parts = ["cachish"];
  switch (outcome.kind) {
    case "hit":
      parts.push("hit", `ttl=${Math.max(0, Math.ceil((outcome.fetchedAt + outcome.ttl - now) / 1000))}`);
      break;
    case "fresh":
      parts.push(`fwd=${outcome.replaced ? "stale" : "miss"}`, "fwd-status=200", "stored");
      break;
    case "stale":
      parts.push("hit");
      // A negative ttl says how long ago the value stopped being fresh, where a ttl applies.
      if (outcome.ttl > 0) parts.push(`ttl=${-seconds(now - outcome.fetchedAt - outcome.ttl)}`);
      parts.push(`detail=${outcome.detail}`);
      break;
    case "unavailable":
      parts.push("fwd=miss");
      if (outcome.status !== undefined) parts.push(`fwd-status=${outcome.status}`);
      parts.push(`detail=${outcome.detail}`);
      break;
  }
  if (outcome.kind !== "hit" && outcome.collapsed) parts.push("collapsed");
  return parts.join("; ");
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
