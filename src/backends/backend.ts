import type { UpstreamRequest } from "./fetch";

/**
 * What a module knows: how to ask its upstream, and which part of the answer and which of its
 * top-level keys make the value. Fetching, limits, parsing and failures are shared (index.ts), so a new module is
 * one small file and one line in the registry.
 */
export type Backend<P> = {
  /** The request for one fetch; `now` (ms since the epoch) for protocols that sign with a timestamp. */
  request(params: P, now: number): UpstreamRequest;
  /** The top-level keys the value keeps, in this order; undefined keeps the whole answer. */
  keys(params: P): readonly string[] | undefined;
  /** The JSON Pointer (RFC 6901) to the part of the answer that `keys` then pick from; undefined, or no method, takes the whole answer. */
  select?(params: P): string | undefined;
};
