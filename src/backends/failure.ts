/**
 * Why an upstream fetch failed, as one small taxonomy: logs, `Cache-Status` `detail`,
 * metrics labels and `cachish get` all name these kinds. A failure never carries the
 * response body or a secret, only its kind, the upstream's status and a sentence of ours.
 */
import { messageOf } from "../error-text";

export type FailureKind =
  /** No connection: refused, reset, DNS, TLS. */
  | "connect"
  /** The whole fetch took longer than the item's `timeout`. */
  | "timeout"
  /** A non-2xx answer. */
  | "status"
  | "invalid-json"
  /** A body over `max_body`. */
  | "too-large"
  /** A `field`/`config_key` missing from the answer. */
  | "missing-field"
  /** A program (`Command`) that could not be started, exited with another status than 0, or was killed by a signal. */
  | "command"
  /** Another host of the fleet holds the item's lease and its value did not arrive in time. */
  | "lease"
  /** A bug of ours, or something no other kind describes. */
  | "internal";

export class UpstreamFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = "UpstreamFailure";
  }

  /** The kind as `Cache-Status` `detail` and metrics name it: `status-503`, `timeout`, ... */
  get detail(): string {
    return this.kind === "status" && this.status !== undefined ? `status-${this.status}` : this.kind;
  }
}

export function asFailure(error: unknown): UpstreamFailure {
  if (error instanceof UpstreamFailure) return error;
  return new UpstreamFailure("internal", messageOf(error));
}
