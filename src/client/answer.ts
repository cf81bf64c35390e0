/**
 * What `cachish get` got, whether it asked a daemon over HTTP or resolved the item itself
 * (`--config`): one shape, so that output, warnings and exit codes are decided once.
 */
import type { Outcome } from "../resolver";

export type Answer =
  /**
   * A value; `stale` names why it came from the store after a failure (a failure kind); `etag`
   * is the daemon's validator of its bytes (SPEC 5.8), what a watcher waits on.
   */
  | { kind: "value"; body: string; ageSeconds: number; stale?: string; etag?: string }
  /** 304: the value still has the bytes of the ETag asked with (a long poll that timed out). */
  | { kind: "unchanged" }
  /** No value now: 503, or the daemon cannot be reached. Worth waiting for. */
  | { kind: "unavailable"; why: string }
  /** 401 or 403: the token is missing, unknown, or not allowed this path. */
  | { kind: "refused"; why: string }
  /** Anything else: no such item, a malformed request, an answer we cannot read. */
  | { kind: "error"; why: string };

const decoder = new TextDecoder();

export function fromOutcome(outcome: Outcome, now: number): Answer {
  if (outcome.kind === "unavailable") {
    return { kind: "unavailable", why: `the upstream failed (${outcome.detail}) and no value is stored` };
  }
  const ageSeconds = outcome.kind === "fresh" ? 0 : Math.max(0, Math.floor((now - outcome.fetchedAt) / 1000));
  return { kind: "value", body: decoder.decode(outcome.value), ageSeconds, ...(outcome.kind === "stale" ? { stale: outcome.detail } : {}) };
}

/** The `detail=` of cachish's `Cache-Status`: why the value is stale, or why there is none. */
const detailOf = (response: Response) => /(?:^|;)\s*detail=([^;\s]+)/.exec(response.headers.get("cache-status") ?? "")?.[1];

/** The daemon's answer, read as SPEC 5.2 writes it. */
export async function fromResponse(response: Response, path: string): Promise<Answer> {
  const body = await response.text();
  const firstLine = body.split("\n")[0]!.slice(0, 200);
  switch (response.status) {
    case 200: {
      const detail = detailOf(response);
      const stale = response.headers.get("x-cache") === "hit" && detail ? detail : undefined;
      const etag = response.headers.get("etag");
      return { kind: "value", body, ageSeconds: Number(response.headers.get("age") ?? 0) || 0, ...(stale ? { stale } : {}), ...(etag ? { etag } : {}) };
    }
    case 304:
      return { kind: "unchanged" };
    case 503: {
      const detail = detailOf(response);
      return { kind: "unavailable", why: `the daemon answered 503: the upstream failed${detail ? ` (${detail})` : ""} and no value is stored` };
    }
    case 401:
      return { kind: "refused", why: `the daemon wants a token for ${path} (401); give one with --token, $CACHISH_TOKEN or --token-file` };
    case 403:
      return { kind: "refused", why: `the daemon refused this token for ${path} (403): it is unknown, or its client may not read this path` };
    case 404:
      return { kind: "error", why: `the daemon has no item ${path} (404)` };
    default:
      return { kind: "error", why: `the daemon answered ${response.status}: ${firstLine}` };
  }
}
