/** The configuration as the rest of cachish sees it: typed, resolved, every default filled in. */
import type { Secret } from "./secret";

/** Durations are milliseconds, sizes bytes; `null` is "none". */
export type Policy = {
  timeout: number;
  ttl: number;
  max_stale: number | null;
  stale_after: number | null;
  /** The failure kinds answered with the stored value (stale-on.ts); empty: none. */
  stale_on: string[];
  max_backoff: number;
  refresh: number | null;
  max_body: number;
  /** The proxy for the item's upstream requests (a URL that may hold credentials). */
  proxy: Secret | null;
};

/** A JSON Pointer: a Secret where a secret reference gave it, so that check-config does not print it. */
export type Select = string | Secret;

export type JsonHttpParams = { url: string; select?: Select; field?: string[]; headers?: Map<string, Secret> };
export type HerokuParams = { api_token: Secret; app: string; config_key: string[]; api_url: string };
export type HawkParams = { secret_id: Secret; secret: Secret; url: string; algorithm: "sha256" | "sha1"; select?: Select; field?: string[] };

/** `argv`: an element given by a secret reference is a Secret. `env`: besides PATH, the program's whole environment. */
export type CommandParams = { argv: (string | Secret)[]; env?: Map<string, Secret>; select?: Select; field?: string[] };

export type ItemSource =
  | { module: "JsonHttp"; parameters: JsonHttpParams }
  | { module: "Heroku"; parameters: HerokuParams }
  | { module: "Hawk"; parameters: HawkParams }
  | { module: "Command"; parameters: CommandParams };

export type Item = ItemSource & { path: string; disable_auth: boolean; policy: Policy };

export type Client = {
  name: string;
  /** SHA-256 of the token: what `token_sha256` gives, and what a presented token is hashed to. */
  tokenSha256: Uint8Array;
  /** The configured item paths its globs (`url`) reach, in configuration order: matched once, at load. */
  items: ReadonlySet<string>;
};

export type Listen = { kind: "tcp"; host: string; port: number } | { kind: "unix"; path: string };

export type SharedStore = { url: Secret; key: Secret; timeout: number };

export type Config = {
  /** The file it was read from, absolute. */
  file: string;
  listen: Listen;
  cache_dir: string;
  log: { format: "logfmt" | "json"; level: "debug" | "info" | "warn" | "error" };
  metrics: boolean;
  /** In configuration order. */
  items: Map<string, Item>;
  clients: Client[];
  /** The fleet's PostgreSQL tier, when configured. */
  shared_store?: SharedStore;
};
