import type { UpstreamRequest } from "./fetch";
import type { Run } from "./run";

/**
 * What a module knows: how to ask its upstream (an HTTP request, or a program to run), and
 * which part of the answer and which of its top-level keys make the value. Fetching, running,
 * limits, parsing and failures are shared (index.ts), so a new module is one small file and one
 * line in the registry.
 */
export type Backend<P> = HttpBackend<P> | CommandBackend<P>;

type Answer<P> = {
  /** The top-level keys the value keeps, in this order; undefined keeps the whole answer. */
  keys(params: P): readonly string[] | undefined;
  /** The JSON Pointer (RFC 6901) to the part of the answer that `keys` then pick from; undefined, or no method, takes the whole answer. */
  select?(params: P): string | undefined;
};

export type HttpBackend<P> = Answer<P> & {
  /** The request for one fetch; `now` (ms since the epoch) for protocols that sign with a timestamp. */
  request(params: P, now: number): UpstreamRequest;
};

export type CommandBackend<P> = Answer<P> & {
  /** The program to run for one fetch, its environment and the secrets it was given. */
  run(params: P): Run;
};
