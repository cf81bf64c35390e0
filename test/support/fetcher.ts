/**
 * Fetchers the tests script in place of the backends (the resolver's seam). A test's fetcher
 * may give bytes alone, a value the upstream sent no validators with; the resolver itself only
 * ever gets what fetchItem gives.
 */
import type { Upstream } from "../../src/backends";
import type { Fetcher } from "../../src/resolver";

export type TestFetcher = (...args: Parameters<Fetcher>) => Promise<Uint8Array | Upstream>;

export function asFetcher(fetcher: TestFetcher): Fetcher {
  return async (...args) => {
    const got = await fetcher(...args);
    return got instanceof Uint8Array ? { kind: "value", value: got } : got;
  };
}
