/**
 * Who is asking, from the Authorization header, as SPEC 5.1 says: Bearer TOKEN, or Basic
 * whose user name is the token. A token is compared by its SHA-256 against every client's,
 * always all of them and each in constant time, so that timing tells nothing about tokens.
 */
import { timingSafeEqual } from "node:crypto";
import { globMatches } from "../fnmatch";
import type { Client } from "../config/types";

export type Scheme = "bearer" | "basic" | "none";

export type AuthResult =
  | { ok: true; client: Client; scheme: Scheme }
  | { ok: false; status: 400 | 401 | 403; message: string; scheme: Scheme };

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function authenticate(header: string | null, path: string, clients: readonly Client[]): AuthResult {
  const value = header?.trim() ?? "";
  if (value === "") return { ok: false, status: 401, scheme: "none", message: "authentication required: send `Authorization: Bearer TOKEN`" };
  const space = value.search(/\s/);
  const word = (space < 0 ? value : value.slice(0, space)).toLowerCase();
  const rest = space < 0 ? "" : value.slice(space).trim();
  let token: string;
  if (word === "bearer") {
    if (rest === "" || /\s/.test(rest)) return { ok: false, status: 400, scheme: "bearer", message: "malformed Authorization header: Bearer needs one token" };
    token = rest;
  } else if (word === "basic") {
    const decoded = BASE64.test(rest) && rest !== "" ? Buffer.from(rest, "base64").toString("utf8") : undefined;
    if (decoded === undefined || !decoded.includes(":")) {
      return { ok: false, status: 400, scheme: "basic", message: "malformed Authorization header: Basic needs the base64 of user:password" };
    }
    token = decoded.slice(0, decoded.indexOf(":"));
  } else {
    return { ok: false, status: 400, scheme: "none", message: "unsupported Authorization scheme: use Bearer or Basic" };
  }
  const scheme = word as Scheme;
  const client = findClient(token, clients);
  // An unknown token and a token whose globs miss the path get the same answer.
  if (!client || !client.globs.some((glob) => globMatches(glob, path))) {
    return { ok: false, status: 403, scheme, message: "forbidden: this token may not read this path" };
  }
  return { ok: true, client, scheme };
}

export function findClient(token: string, clients: readonly Client[]): Client | undefined {
  // Bun's one-shot SHA-256 is several times faster than node:crypto's on this hot path.
  const digest = Bun.SHA256.hash(token) as Uint8Array;
  let found: Client | undefined;
  for (const client of clients) {
    if (timingSafeEqual(digest, client.tokenSha256) && !found) found = client;
  }
  return found;
}
