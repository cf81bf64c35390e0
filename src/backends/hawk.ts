/**
 * `GET url` signed with a Hawk 1.1 `Authorization` header: id, ts, nonce, the payload hash of
 * the empty body with an empty content type, and the MAC over Hawk's normalized request string.
 */
import { revealed } from "../config/secret";
import type { HawkParams } from "../config/types";
import type { Backend } from "./backend";

// Bun's own hashers: node:crypto would cost the daemon 7 MB of memory just to load.
export function hawkHeader(params: HawkParams, now: number, nonce = Buffer.from(crypto.getRandomValues(new Uint8Array(6))).toString("base64url").slice(0, 8)): string {
  const url = new URL(params.url);
  const ts = Math.floor(now / 1000).toString();
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  const hash = new Bun.CryptoHasher(params.algorithm).update("hawk.1.payload\n\n\n").digest("base64");
  // Hawk's normalized string: one field a line, ext (empty here) included, ending with a newline.
  const normalized = ["hawk.1.header", ts, nonce, "GET", `${url.pathname}${url.search}`, url.hostname.toLowerCase(), port, hash, "", ""].join("\n");
  const mac = new Bun.CryptoHasher(params.algorithm, params.secret.reveal()).update(normalized).digest("base64");
  return `Hawk id="${params.secret_id.reveal()}", ts="${ts}", nonce="${nonce}", hash="${hash}", mac="${mac}"`;
}

export const hawk: Backend<HawkParams> = {
  request: (params, now) => ({ url: params.url, headers: { Authorization: hawkHeader(params, now) } }),
  keys: (params) => params.field,
  select: (params) => revealed(params.select),
};
