/**
 * Who is asking, from the Authorization header, as SPEC 5.1 says: Bearer TOKEN, or Basic
 * whose user name is the token. A token is compared by its SHA-256 against every client's,
 * always all of them and each over all 32 bytes, so that timing tells nothing about tokens.
 * Which items a client may read was worked out from its globs when the configuration was loaded.
 */
import type { Client } from "../config/types";

export type Scheme = "bearer" | "basic" | "none";

export type AuthResult =
  | { ok: true; client: Client; scheme: Scheme }
  | { ok: false; status: 400 | 401 | 403; message: string; scheme: Scheme };

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const SPACE = /\s/;

const MISSING: AuthResult = { ok: false, status: 401, scheme: "none", message: "authentication required: send `Authorization: Bearer TOKEN`" };
const BAD_BEARER: AuthResult = { ok: false, status: 400, scheme: "bearer", message: "malformed Authorization header: Bearer needs one token" };
const BAD_BASIC: AuthResult = { ok: false, status: 400, scheme: "basic", message: "malformed Authorization header: Basic needs the base64 of UTF-8 user:password" };
const BAD_SCHEME: AuthResult = { ok: false, status: 400, scheme: "none", message: "unsupported Authorization scheme: use Bearer or Basic" };
// An unknown token and a token that may not read the path get the same answer.
const forbidden = (scheme: "bearer" | "basic"): AuthResult => ({ ok: false, status: 403, scheme, message: "forbidden: this token may not read this path" });
const FORBIDDEN = { bearer: forbidden("bearer"), basic: forbidden("basic") };

// ignoreBOM: a byte order mark is part of the value, as Werkzeug read it, not dropped.
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
/** The bytes as UTF-8 text, or undefined when they are not (a malformed Basic value, SPEC 5.1). */
function utf8(bytes: Uint8Array): string | undefined {
  try {
    return utf8Decoder.decode(bytes);
  } catch {
    return undefined;
  }
}

export function authenticate(header: string | null, path: string, clients: readonly Client[]): AuthResult {
  const value = header?.trim() ?? "";
  if (value === "") return MISSING;
  const space = value.search(SPACE);
  const word = (space < 0 ? value : value.slice(0, space)).toLowerCase();
  const rest = space < 0 ? "" : value.slice(space).trim();
  let token: string;
  let scheme: "bearer" | "basic";
  if (word === "bearer") {
    if (rest === "" || SPACE.test(rest)) return BAD_BEARER;
    token = rest;
    scheme = "bearer";
  } else if (word === "basic") {
    const decoded = BASE64.test(rest) && rest !== "" ? utf8(Buffer.from(rest, "base64")) : undefined;
    if (decoded === undefined) return BAD_BASIC;
    // The user name is the token; without a `:`, the whole value is, as 1.x read it.
    const colon = decoded.indexOf(":");
    token = colon < 0 ? decoded : decoded.slice(0, colon);
    scheme = "basic";
  } else {
    return BAD_SCHEME;
  }
  const client = findClient(token, clients);
  if (!client || !client.items.has(path)) return FORBIDDEN[scheme];
  return { ok: true, client, scheme };
}

function findClient(token: string, clients: readonly Client[]): Client | undefined {
  // Bun's one-shot SHA-256 is several times faster than node:crypto's.
  const digest = Bun.SHA256.hash(token) as Uint8Array;
  let found: Client | undefined;
  for (const client of clients) {
    const theirs = client.tokenSha256;
    let diff = 0;
    for (let i = 0; i < 32; i++) diff |= digest[i]! ^ theirs[i]!;
    if (diff === 0 && !found) found = client;
  }
  return found;
}
