/**
 * What the formats of the description (describe.ts) accept: a string's (a URL, a listen
 * address, a key) and a map key's (an item path, a header name). Each check gives a sentence
 * saying what is wrong, or undefined; the sentence never quotes the text, which may be a secret.
 */
import { pointerProblem } from "../pointer";
import type { KeyFormat, StringFormat } from "./describe";
import { RESERVED_PATHS } from "./keys";
import { parseListen } from "./listen";
import { staleKindProblem } from "../stale-on";

/** `baseDir` anchors a relative `unix:` socket path. */
export function stringProblem(text: string, format: StringFormat, baseDir: string): string | undefined {
  if (format === "http-url") {
    // The URL itself is not shown: it may carry credentials or come from a secret reference.
    const url = URL.canParse(text) ? new URL(text) : undefined;
    if (!url) return "not a valid URL; write it in full, e.g. `https://api.example.com/path`";
    if (url.protocol !== "http:" && url.protocol !== "https:") return "the URL's scheme is not supported; use `http:` or `https:`";
    if (!url.hostname) return "the URL has no host";
  } else if (format === "listen") {
    const listen = parseListen(text, baseDir);
    if (typeof listen === "string") return listen;
  } else if (format === "postgres-url") {
    // Not shown: it holds a password.
    const url = URL.canParse(text) ? new URL(text) : undefined;
    if (!url || (url.protocol !== "postgres:" && url.protocol !== "postgresql:")) return "must be a `postgres://` or `postgresql://` URL, e.g. `postgres://cachish:PASSWORD@db.internal:5432/cachish`";
    if (!url.hostname && !url.searchParams.get("host")) return "the URL has no host";
  } else if (format === "aes-256-key") {
    const bytes = /^[A-Za-z0-9+/]+={0,2}$/.test(text) ? Buffer.from(text, "base64") : undefined;
    if (!bytes || bytes.length !== 32) return "must be 32 bytes in base64 (make one with `openssl rand -base64 32`)";
  } else if (format === "json-pointer") {
    return pointerProblem(text);
  } else if (format === "stale-kind") {
    return staleKindProblem(text);
  } else if (format === "program") {
    // Run with `/` as its working folder (src/backends/run.ts), a relative path would name a file there, not beside the configuration.
    if (text === "") return "the program (the first element) is empty";
    if (text.includes("/") && !text.startsWith("/")) return "the program (the first element) must be a name looked up in PATH or an absolute path";
  } else if (format === "sha256-hex") {
    if (!/^[0-9a-fA-F]{64}$/.test(text)) return "must be 64 hexadecimal digits (the output of `printf %s TOKEN | sha256sum`)";
  }
  return undefined;
}

export function keyFormatProblem(key: string, format: KeyFormat): string | undefined {
  if (format === "item-path") {
    // Any other character is allowed, spaces included, as in 1.x. The path is not quoted: a key
    // that is not a path may be a misplaced secret.
    if (!key.startsWith("/")) return "an item path must start with `/`";
    if (/[?#]/.test(key)) return "an item path must not hold `?` or `#`: the daemon ignores the query string and never sees a fragment";
    // A request's path has runs of `/` counted as one and dot segments resolved: such an item could never be asked for.
    if (/\/\/|\/\.\.?(?:\/|$)/.test(key)) return "an item path must not hold `//`, `/./` or `/../`: a request's path is normalised, so it could never be asked for";
    if (RESERVED_PATHS.exact.includes(key) || key.startsWith(RESERVED_PATHS.prefix) || `${key}/` === RESERVED_PATHS.prefix) {
      return "this item path is the daemon's own (`/metrics` and everything under `/-/` are reserved); choose another path";
    }
  } else if (format === "header-name") {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(key)) return "not a valid HTTP header name";
  } else if (format === "env-name") {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) return "not a valid environment variable name (letters, digits and `_`, not starting with a digit)";
  }
  return undefined;
}
