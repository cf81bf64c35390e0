/**
 * The registry of modules (static: `bun build --compile` cannot bundle import paths chosen
 * at run time) and the one way an item's value is fetched.
 */
import { Secret } from "../config/secret";
import type { Item } from "../config/types";
import type { KeptValidators } from "../store/store";
import { VERSION } from "../version";
import type { Backend } from "./backend";
import { command } from "./command";
import { boundedFetch } from "./fetch";
import { hawk } from "./hawk";
import { heroku } from "./heroku";
import { jsonHttp } from "./json-http";
import { boundedRun } from "./run";
import { makeValueOffThread } from "./value";

const BACKENDS: { [M in Item["module"]]: Backend<Extract<Item, { module: M }>["parameters"]> } = {
  JsonHttp: jsonHttp,
  Heroku: heroku,
  Hawk: hawk,
  Command: command,
};

/**
 * What one fetch of an item gives: its value (JSON as 1.x wrote it) with the validators to
 * keep beside it, if the upstream sent any; or `not-modified`: the value whose validators were
 * sent is still the upstream's, and these are its validators now.
 */
export type Upstream = { kind: "value"; value: Uint8Array; validators?: KeptValidators } | { kind: "not-modified"; validators: KeptValidators };

/**
 * Fetches an item's value once, conditionally when `held` (the validators of the value held)
 * was obtained for the item as it is now; an UpstreamFailure says why not.
 */
export async function fetchItem(item: Item, now: number, held?: KeptValidators): Promise<Upstream> {
  const backend = BACKENDS[item.module] as Backend<Item["parameters"]>;
  const keys = backend.keys(item.parameters);
  const select = backend.select?.(item.parameters);
  // A program's output comes with no validators: every run is a whole fetch, and nothing is revalidated.
  if ("run" in backend) return { kind: "value", value: await makeValueOffThread(await boundedRun(backend.run(item.parameters), { timeout: item.policy.timeout, maxBody: item.policy.max_body }), keys, undefined, select) };
  const basis = basisOf(item);
  // Asked under another definition (another `field`, URL or module), a 304 would keep a value
  // this one does not make.
  const conditional = held?.basis === basis ? held : undefined;
  const request = { ...backend.request(item.parameters, now), ...(conditional ? { conditional } : {}) };
  const limits = { timeout: item.policy.timeout, maxBody: item.policy.max_body, ...(item.policy.proxy ? { proxy: item.policy.proxy.reveal() } : {}) };
  const fetched = await boundedFetch(request, limits);
  // A 304 comes only to a request that sent validators; those it gives replace the old ones.
  if (fetched.kind === "not-modified") return { kind: "not-modified", validators: { ...conditional, ...fetched.validators, basis } };
  const value = await makeValueOffThread(fetched.body, keys, fetched.charset, select);
  const { etag, lastModified } = fetched.validators;
  return { kind: "value", value, ...(etag || lastModified ? { validators: { ...fetched.validators, basis } } : {}) };
}

/**
 * A digest of what an item's value is made of: this cachish (which writes it), the module and
 * every parameter but the secrets, in an order that does not depend on the file's. A secret
 * (a token, a header's value) chooses whom the upstream answers, not which bytes it sends for
 * a validator it recognizes: the upstream decides. Left out, no digest of a secret, which a
 * weak one could be guessed from, is kept in the store.
 */
export function basisOf(item: Pick<Item, "module" | "parameters">): string {
  return new Bun.CryptoHasher("sha256").update(JSON.stringify([VERSION, item.module, canonical(item.parameters)])).digest("hex");
}

function canonical(value: unknown): unknown {
  if (value instanceof Secret) return "[secret]";
  if (value instanceof Map) return [...value].map(([key, v]) => [key, canonical(v)]).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === "object") return Object.keys(value).sort().map((key) => [key, canonical((value as Record<string, unknown>)[key])]);
  return value;
}
