/**
 * Reads cachish.yml into a Config, or into the list of everything wrong with it. The validator
 * (validate.ts) checks each key on its own; this file adds what needs the whole file at once:
 * defaults cascading into items, tokens shared by two clients, globs that reach no item.
 */
import { closeSync, openSync, readSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { startEnvironment } from "../environment";
import { systemProblem } from "../error-text";
import { globToRegExp } from "../glob";
import { defaultValue, type Field, type ObjectShape } from "./describe";
import { MAX_BYTES, parseYaml } from "./yaml-doc";
import { LOG, POLICY_FIELDS, TOP } from "./keys";
import { parseListen } from "./listen";
import type { Secret } from "./secret";
import type { Client, Config, Item, Listen, Policy } from "./types";
import type { Problem } from "./problems";
import { Validator } from "./validate";

export type LoadResult = {
  /** The file as it was named, for messages. */
  file: string;
  /** Present when there is no error (warnings may remain). */
  config?: Config;
  problems: Problem[];
};

export const DEFAULT_CACHE_DIR = "/var/cache/cachish";

type Env = Record<string, string | undefined>;

export function loadConfig(file: string, env: Env = startEnvironment): LoadResult {
  let source: string;
  try {
    source = readCapped(file, MAX_BYTES + 1);
  } catch (error) {
    return { file, problems: [{ severity: "error", message: `cannot read the configuration: ${systemProblem(error)}` }] };
  }
  return parseConfig(source, file, env);
}

/** The file's first `limit` bytes as text: `--config /dev/zero` or a huge file costs no more than that. */
function readCapped(file: string, limit: number): string {
  const fd = openSync(file, "r");
  try {
    const buffer = Buffer.alloc(limit);
    let size = 0;
    while (size < limit) {
      const n = readSync(fd, buffer, size, limit - size, null);
      if (n === 0) break;
      size += n;
    }
    return buffer.toString("utf8", 0, size);
  } finally {
    closeSync(fd);
  }
}

/** The same as loadConfig, from text already read; `file` anchors relative paths. */
export function parseConfig(source: string, file: string, env: Env = startEnvironment): LoadResult {
  const parsed = parseYaml(source);
  const baseDir = dirname(resolve(file));
  const validator = new Validator(parsed.lines, env, baseDir);
  const syntax = parsed.problems;
  // The parser recovers from a syntax error as best it can, but what it makes of the rest
  // is a guess: checking that guess would report problems that are not in the file.
  if (parsed.refused) return { file, problems: parsed.problems };
  if (parsed.syntaxError) {
    const note: Problem = { severity: "error", message: "the rest of the file is checked once its YAML syntax is fixed" };
    return { file, problems: [...syntax, note] };
  }
  // An empty file is an empty configuration: 1.x started with it, serving nothing (build() warns).
  const contents = parsed.contents ?? { kind: "map", items: [], offset: 0 };
  const top = validator.object(contents, TOP, "", { line: 1, column: 1 });
  const config = top ? build(top, validator, resolve(file), baseDir, env) : undefined;
  const problems = [...syntax, ...validator.problems].sort((a, b) => (a.at?.line ?? 0) - (b.at?.line ?? 0) || (a.at?.column ?? 0) - (b.at?.column ?? 0));
  const valid = !problems.some((p) => p.severity === "error");
  return { file, problems, ...(valid && config ? { config } : {}) };
}

function build(top: Record<string, unknown>, w: Validator, file: string, baseDir: string, env: Env): Config | undefined {
  // A key that failed its check is missing from `top`; the checks across keys go on without
  // it, and parseConfig hands out no Config while any error stands.
  const listen = (typeof top.listen === "string" ? parseListen(top.listen, baseDir) : undefined) as Listen;
  const written = (top.cache_dir as string | undefined) ?? env.CACHE_DIRECTORY?.split(":")[0] ?? DEFAULT_CACHE_DIR;
  const cache_dir = isAbsolute(written) ? written : resolve(baseDir, written);
  const log = (top.log as Config["log"] | undefined) ?? (withDefaults(LOG) as Config["log"]);
  const defaults = (top.defaults as Record<string, unknown> | undefined) ?? {};

  const itemsMap = (top.items as Map<string, Record<string, unknown> | undefined> | null | undefined) ?? new Map();
  // No items, or `items:` empty: a warning. Not when `items` was written but refused: its error says enough.
  if (itemsMap.size === 0 && (top.items !== undefined || !w.has(top, "items"))) {
    w.warn(w.has(top, "items") ? w.at(top, "items", "key") : { line: 1, column: 1 }, "no item is configured: the daemon serves nothing (1.x started with such a file)");
  }
  const items = new Map<string, Item>();
  for (const [path, raw] of itemsMap) {
    if (!raw || !raw.parameters) continue;
    const policy = policyOf(raw, defaults, w);
    items.set(path, { path, module: raw.module, parameters: raw.parameters, disable_auth: raw.disable_auth, policy } as Item);
  }

  const clients: Client[] = [];
  const owners = new Map<string, string>();
  const authMap = (top.auth as Map<string, Record<string, unknown> | undefined> | undefined) ?? new Map();
  for (const [name, raw] of authMap) {
    // A glob that failed its check is undefined in the list; its problem is reported already.
    const patterns = raw?.url as (string | undefined)[] | undefined;
    if (!raw || !patterns || patterns.some((p) => typeof p !== "string")) continue;
    const globs = (patterns as string[]).map(globToRegExp);
    globs.forEach((glob, index) => {
      if (![...itemsMap.keys()].some((path) => glob.test(path))) w.warn(w.at(patterns, index), "this glob matches no item");
    });
    const digest = raw.token ? sha256((raw.token as Secret).reveal()) : raw.token_sha256 ? Buffer.from(raw.token_sha256 as string, "hex") : undefined;
    if (!digest) continue;
    const hex = digest.toString("hex");
    const owner = owners.get(hex);
    if (owner !== undefined) {
      const key = raw.token ? "token" : "token_sha256";
      w.error(w.at(raw, key), `client \`${name}\` has the same token as client \`${owner}\`; give each client its own token (1.x let the last one win, which silently locked the other out)`);
      continue;
    }
    owners.set(hex, name);
    const reach = new Set([...items.keys()].filter((path) => globs.some((glob) => glob.test(path))));
    clients.push({ name, tokenSha256: new Uint8Array(digest), items: reach });
  }

  // With a client that did not load, who may read what is not known: no guess is reported.
  const allClientsLoaded = clients.length === authMap.size && (top.auth !== undefined || !w.has(top, "auth"));
  for (const item of items.values()) {
    if (allClientsLoaded && !item.disable_auth && !clients.some((c) => c.items.has(item.path))) {
      w.warn(w.at(itemsMap, item.path, "key"), `no client may read item \`${item.path}\`: no glob in \`auth\` matches it, and it does not have \`disable_auth: true\``);
    }
  }

  const shared = top.shared_store as Config["shared_store"] | undefined;
  return { file, listen, cache_dir, log, metrics: top.metrics as boolean, items, clients, ...(shared ? { shared_store: shared } : {}) };
}

/** An item's policy: its own keys, else those of `defaults:`, else the built-in defaults. */
function policyOf(item: Record<string, unknown>, defaults: Record<string, unknown>, w: Validator): Policy {
  const policy: Record<string, unknown> = {};
  const setAt: Record<string, ReturnType<Validator["at"]>> = {};
  for (const [key, field] of Object.entries(POLICY_FIELDS) as [string, Field][]) {
    if (item[key] !== undefined) [policy[key], setAt[key]] = [item[key], w.at(item, key)];
    else if (defaults[key] !== undefined) [policy[key], setAt[key]] = [defaults[key], w.at(defaults, key)];
    else policy[key] = defaultValue(field);
  }
  const p = policy as Policy;
  // Each warning is given once, where the key was written, though many items may inherit it.
  if (p.stale_after !== null && p.stale_after >= p.timeout && setAt.stale_after) {
    warnOnce(w, setAt.stale_after, "`stale_after` is not shorter than `timeout`, so it never takes effect");
  }
  if (p.stale_on.length > 1 && p.stale_on.includes("any") && setAt.stale_on) {
    warnOnce(w, setAt.stale_on, "`stale_on` holds `any`, which already lets every failure be answered stale: the other kinds add nothing");
  }
  if (p.max_stale !== null && p.ttl > p.max_stale && setAt.ttl) {
    warnOnce(w, setAt.ttl, "`ttl` is longer than `max_stale`: a value becomes unservable before it is due for a refresh");
  }
  return p;
}

function warnOnce(w: Validator, at: { line: number; column: number }, message: string): void {
  if (!w.problems.some((p) => p.message === message && p.at?.line === at.line && p.at.column === at.column)) w.warn(at, message);
}

function withDefaults(shape: ObjectShape): Record<string, unknown> {
  return Object.fromEntries(Object.entries(shape.fields).map(([key, field]) => [key, defaultValue(field)]));
}

function sha256(text: string): Buffer {
  return new Bun.CryptoHasher("sha256").update(text).digest();
}
