/**
 * The registry of modules (static: `bun build --compile` cannot bundle import paths chosen
 * at run time) and the one way an item's value is fetched.
 */
import type { Item } from "../config/types";
import type { Backend } from "./backend";
import { boundedFetch } from "./fetch";
import { hawk } from "./hawk";
import { heroku } from "./heroku";
import { jsonHttp } from "./json-http";
import { makeValueOffThread } from "./value";

const BACKENDS: { [M in Item["module"]]: Backend<Extract<Item, { module: M }>["parameters"]> } = {
  JsonHttp: jsonHttp,
  Heroku: heroku,
  Hawk: hawk,
};

/**
 * Fetches an item's value once: the bytes to answer with (JSON as 1.x wrote it), or an
 * UpstreamFailure saying why not.
 */
export async function fetchItem(item: Item, now: number): Promise<Uint8Array> {
  const backend = BACKENDS[item.module] as Backend<Item["parameters"]>;
  const request = backend.request(item.parameters, now);
  const limits = { timeout: item.policy.timeout, maxBody: item.policy.max_body, ...(item.policy.proxy ? { proxy: item.policy.proxy.reveal() } : {}) };
  const { body, charset } = await boundedFetch(request, limits);
  return makeValueOffThread(body, backend.keys(item.parameters), charset);
}
