/**
 * The registry of modules (static: `bun build --compile` cannot bundle import paths chosen
 * at run time) and the one way an item's value is fetched.
 */
import type { Item } from "../config/types";
import { JsonSyntaxError, type JsonValue, parseJson, pickKeys, stringifyJson } from "../json";
import type { Backend } from "./backend";
import { UpstreamFailure } from "./failure";
import { boundedFetch } from "./fetch";
import { hawk } from "./hawk";
import { heroku } from "./heroku";
import { jsonHttp } from "./json-http";

const BACKENDS: { [M in Item["module"]]: Backend<Extract<Item, { module: M }>["parameters"]> } = {
  JsonHttp: jsonHttp,
  Heroku: heroku,
  Hawk: hawk,
};

const utf8 = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

/**
 * The next turn of the event loop. A value is read, picked, written and encoded in steps, each
 * linear in its size, with other clients answered between them: a large body blocks them for
 * the longest step, not for the sum (SPEC 5.3).
 */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Fetches an item's value once: the bytes to answer with (JSON as 1.x wrote it), or an
 * UpstreamFailure saying why not.
 */
export async function fetchItem(item: Item, now: number): Promise<Uint8Array> {
  const backend = BACKENDS[item.module] as Backend<Item["parameters"]>;
  const request = backend.request(item.parameters, now);
  // The body is not kept in a variable: once decoded, it is garbage.
  const text = decode(await boundedFetch(request, { timeout: item.policy.timeout, maxBody: item.policy.max_body }));
  await nextTurn();
  let parsed = parse(text);
  const keys = backend.keys(item.parameters);
  if (keys) {
    const picked = pickKeys(parsed, keys);
    if (!picked.ok) {
      const what = parsed.type === "object" ? `has no ${picked.missing.map((k) => JSON.stringify(k)).join(", ")}` : `is not an object`;
      throw new UpstreamFailure("missing-field", `the answer ${what}`);
    }
    parsed = picked.value;
  }
  await nextTurn();
  const json = stringifyJson(parsed);
  await nextTurn();
  return encoder.encode(json);
}

function decode(body: Uint8Array): string {
  try {
    return utf8.decode(body);
  } catch {
    throw new UpstreamFailure("invalid-json", "the answer is not JSON: the body is not UTF-8");
  }
}

function parse(text: string): JsonValue {
  try {
    return parseJson(text);
  } catch (error) {
    if (error instanceof JsonSyntaxError) throw new UpstreamFailure("invalid-json", `the answer is not JSON: ${error.message}`);
    throw error;
  }
}
