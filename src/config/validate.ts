/**
 * Checks a YAML document against the description (keys.ts) and turns it into plain values:
 * strings, booleans, milliseconds, bytes, lists, Maps and records, with secret references
 * read and secrets wrapped. It never stops at a problem: each is recorded with its position
 * and the walk goes on, so that one run of check-config reports them all.
 */
import { isMap, isScalar, isSeq, type Lines, type MapNode, type PairNode, type SeqNode, type YamlNode } from "./nodes";
import { defaultValue, type ObjectShape, type Shape } from "./describe";
import { keyFormatProblem, stringProblem } from "./formats";
import type { Position, Problem } from "./problems";
import { resolveSecretRef, Secret, SECRET_REF_KINDS, type SecretRef } from "./secret";
import { didYouMean } from "./suggest";
import { formatSize, parseDuration, parseSize } from "./units";

/** Where a loaded value came from: its key and its value in the file. */
type Located = { key: Position; value: Position };

const DURATION_HELP = "write a number of seconds or a string such as `250ms`, `5s`, `10m`, `2h`, `7d`";
const SIZE_HELP = "write a number of bytes or a string such as `512KiB`, `16MiB`";

export class Validator {
  readonly problems: Problem[] = [];
  readonly #places = new WeakMap<object, Map<string | number, Located>>();

  constructor(
    private readonly lines: Lines,
    private readonly env: Record<string, string | undefined>,
    private readonly baseDir: string,
  ) {}

  positionOf(node: YamlNode | null | undefined): Position {
    return this.lines.position(node?.offset ?? 0);
  }

  error(at: Position, message: string): void {
    this.problems.push({ severity: "error", message, at });
  }

  warn(at: Position, message: string): void {
    this.problems.push({ severity: "warning", message, at });
  }

  /** The position of `container[key]`'s value (or of its key): where a later check points. */
  at(container: object, key: string | number, which: keyof Located = "value"): Position {
    return this.#places.get(container)?.get(key)?.[which] ?? { line: 1, column: 1 };
  }

  /** Whether `container[key]` was written in the file (even if its value was refused). */
  has(container: object, key: string | number): boolean {
    return this.#places.get(container)?.has(key) ?? false;
  }

  #remember(container: object, key: string | number, located: Located): void {
    let places = this.#places.get(container);
    if (!places) this.#places.set(container, (places = new Map()));
    places.set(key, located);
  }

  /** Checks `node` against `shape`; `name` is the key it stands under, for messages. */
  value(node: YamlNode | null, shape: Shape, name: string): unknown {
    const here = this.positionOf(node);
    switch (shape.type) {
      case "any":
        // Accepted and not looked into (only 1.x's `log_config`, which is ignored).
        return undefined;
      case "string":
        return this.#string(node, shape, name, here);
      case "boolean": {
        if (isScalar(node) && typeof node.value === "boolean") return node.value;
        this.error(here, `${q(name)} must be true or false`);
        return undefined;
      }
      case "duration":
      case "size": {
        const parse = shape.type === "duration" ? parseDuration : parseSize;
        const written = isScalar(node) ? node.value : undefined;
        const parsed = parse(written);
        if (parsed === undefined) {
          this.error(here, `${q(name)} is not a ${shape.type}; ${shape.type === "duration" ? DURATION_HELP : SIZE_HELP}`);
          return undefined;
        }
        if (shape.min !== undefined && parsed < shape.min) {
          this.error(here, `${q(name)} must be more than 0`);
          return undefined;
        }
        if (shape.type === "size" && shape.max !== undefined && parsed > shape.max) {
          this.error(here, `${q(name)} must be at most ${formatSize(shape.max)}`);
          return undefined;
        }
        return parsed;
      }
      case "enum": {
        const written = isScalar(node) ? node.value : undefined;
        if (typeof written === "string" && shape.values.includes(written)) return written;
        const options = shape.values.map((v) => `\`${v}\``).join(", ");
        const what = typeof written === "string" ? `unknown ${name}` : `${q(name)} must be one of ${options}`;
        const hint = typeof written === "string" ? didYouMean(written, shape.values) : "";
        const note = shape.caseSensitive && hint ? ` (${name}s are case-sensitive, as in 1.x)` : "";
        this.error(here, `${what}${hint || `; expected one of ${options}`}${note}`);
        return undefined;
      }
      case "one-or-list": {
        if (isSeq(node)) {
          if (node.items.length === 0) {
            if (shape.emptyAllowed) return [];
            if (shape.emptyWarning) {
              this.warn(here, `${q(name)} is an empty list: ${shape.emptyWarning}`);
              return [];
            }
            this.error(here, `${q(name)} is an empty list`);
            return undefined;
          }
          return this.#elements(node, () => shape.of, name);
        }
        const list = [this.value(node, shape.of, name)];
        this.#remember(list, 0, { key: here, value: here });
        return list;
      }
      case "list": {
        if (!isSeq(node)) {
          this.error(here, `${q(name)} must be a list`);
          return undefined;
        }
        if (node.items.length === 0) {
          this.error(here, `${q(name)} is an empty list`);
          return undefined;
        }
        return this.#elements(node, (index) => (index === 0 && shape.first) || shape.of, name);
      }
      case "map":
        return this.#map(node, shape, name, here);
      case "object":
        return this.object(node, shape, name, here);
      case "variant":
        throw new Error("a variant is walked by its object, which knows the discriminator");
    }
  }

  /** A sequence's elements, each checked against its shape and its position remembered. */
  #elements(node: SeqNode, shapeOf: (index: number) => Shape, name: string): unknown[] {
    const list: unknown[] = [];
    node.items.forEach((element, index) => {
      const position = this.positionOf(element);
      this.#remember(list, index, { key: position, value: position });
      list.push(this.value(element, shapeOf(index), name));
    });
    return list;
  }

  #string(node: YamlNode | null, shape: Extract<Shape, { type: "string" }>, name: string, here: Position): string | Secret | undefined {
    let text: string;
    let referenced = false;
    if (isScalar(node) && typeof node.value === "string") {
      text = node.value;
    } else if (shape.refs && isMap(node)) {
      const resolved = this.#secretRef(node, name, here);
      if (resolved === undefined) return undefined;
      text = resolved;
      referenced = true;
    } else {
      const found = isScalar(node) ? (node.value === null ? "nothing" : `a ${typeof node.value}`) : isSeq(node) ? "a list" : isMap(node) ? "a mapping" : "nothing";
      const refs = shape.refs ? " (or a secret reference: `{env: NAME}`, `{file: PATH}` or `{credential: NAME}`)" : "";
      const quote = isScalar(node) && node.value !== null && !shape.secret ? "; put it in quotes to make it a string" : "";
      this.error(here, `${q(name)} must be a string${refs}, found ${found}${quote}`);
      return undefined;
    }
    const problem = shape.format && stringProblem(text, shape.format, this.baseDir);
    if (problem) {
      this.error(here, `${q(name)}: ${problem}`);
      return undefined;
    }
    return shape.secret || (shape.refSecret && referenced) ? new Secret(text) : text;
  }

  #secretRef(node: MapNode, name: string, here: Position): string | undefined {
    const usage = "a secret reference is a map of one key: `{env: NAME}`, `{file: PATH}` or `{credential: NAME}`";
    const [pair, ...more] = node.items;
    const kind = isScalar(pair?.key) ? pair.key.value : undefined;
    const target = isScalar(pair?.value) ? pair.value.value : undefined;
    if (!pair || more.length > 0 || !SECRET_REF_KINDS.includes(kind as SecretRef["kind"])) {
      const hint = typeof kind === "string" && !more.length ? didYouMean(kind, SECRET_REF_KINDS) : "";
      this.error(here, `${q(name)}: ${usage}${hint}`);
      return undefined;
    }
    if (typeof target !== "string" || target === "") {
      this.error(this.positionOf(pair.value), `${q(name)}: \`${kind}:\` needs a ${kind === "file" ? "path" : "name"}`);
      return undefined;
    }
    const resolved = resolveSecretRef({ kind: kind as SecretRef["kind"], name: target }, this.env, this.baseDir);
    if (!resolved.ok) {
      this.error(this.positionOf(pair.value), `${q(name)}: ${resolved.problem}`);
      return undefined;
    }
    return resolved.value;
  }

  /**
   * The pairs of a mapping, with a warning for each key set twice (the later one wins, as in
   * PyYAML), and with YAML 1.1 merge keys (`<<: *anchor`) expanded: the mapping's own keys win
   * over merged ones, and an earlier merged mapping over a later one.
   */
  #pairs(node: MapNode, warnTwice = true): { key: string; pair: PairNode; keyAt: Position }[] {
    const seen = new Map<string, Position>();
    const own: { key: string; pair: PairNode; keyAt: Position }[] = [];
    const merged: { key: string; pair: PairNode; keyAt: Position }[] = [];
    for (const pair of node.items) {
      const keyNode = pair.key;
      const keyAt = this.positionOf(keyNode);
      if (isScalar(keyNode) && typeof keyNode.value === "symbol") {
        const value = pair.value;
        for (const map of isSeq(value) ? value.items : [value]) {
          if (isMap(map)) merged.push(...this.#pairs(map, false).filter((p) => !merged.some((m) => m.key === p.key)));
          else this.error(map ? this.positionOf(map) : keyAt, "`<<` merges only mappings (`<<: *anchor` or `<<: [*a, *b]`)");
        }
        continue;
      }
      if (!isScalar(keyNode) || keyNode.value === null || typeof keyNode.value === "object") {
        this.error(keyAt, "a key must be a plain word or path");
        continue;
      }
      const key = String(keyNode.value);
      const first = seen.get(key);
      if (first) {
        // The key is not named: in the pre-1.1 auth form a key is a token.
        if (warnTwice) this.warn(keyAt, `this key is set again here (first on line ${first.line}); the later one wins, as in 1.x`);
        own.splice(own.findIndex((p) => p.key === key), 1);
      }
      seen.set(key, keyAt);
      own.push({ key, pair, keyAt });
    }
    return [...merged.filter((m) => !seen.has(m.key)), ...own];
  }

  #map(node: YamlNode | null, shape: Extract<Shape, { type: "map" }>, name: string, here: Position): Map<string, unknown> | undefined {
    if (!isMap(node)) {
      this.error(here, `${q(name)} must be a mapping of ${shape.keyDoc}s to their settings`);
      return undefined;
    }
    const result = new Map<string, unknown>();
    for (const { key, pair, keyAt } of this.#pairs(node)) {
      const keyProblem = shape.keyFormat && keyFormatProblem(key, shape.keyFormat);
      if (keyProblem) this.error(keyAt, keyProblem);
      // Only an item is named by its key (a path): a client's name or a header's may be a token
      // (a 1.x `TOKEN: /path` entry half rewritten), and a key that is not what it should be may be
      // anything. The position shows which.
      const label = keyProblem ? "this entry" : shape.keyFormat === "item-path" ? `item \`${key}\`` : `this ${shape.keyDoc.replace(/ name$/, "")}`;
      const value = shape.values.type === "object" ? this.object(pair.value, shape.values, label, keyAt) : this.value(pair.value, shape.values, label);
      this.#remember(result, key, { key: keyAt, value: this.positionOf(pair.value) });
      // A key that is wrong, or whose value is, is still known to be there (as undefined):
      // globs that name it are not reported as matching nothing.
      result.set(key, keyProblem ? undefined : value);
    }
    return result;
  }

  /**
   * A record of the described fields, defaults filled in (except those that come from
   * `defaults:`, which the loader fills). `where` is the position of the key this object stands
   * under, where a missing key is reported.
   */
  object(node: YamlNode | null, shape: ObjectShape, name: string, where: Position): Record<string, unknown> | undefined {
    if (!isMap(node)) {
      const empty = !node || (isScalar(node) && node.value === null);
      const required = Object.entries(shape.fields).filter(([, f]) => f.required).map(([k]) => `\`${k}\``);
      // An entry that may be in the pre-1.1 auth form is not named: its key may be a token.
      const what = shape.notMappingHint ? "this entry" : `${q(name)}`;
      if (empty) this.error(where, `${what} is empty${required.length ? `; it needs ${required.join(" and ")}` : ""}`);
      else this.error(this.positionOf(node), shape.notMappingHint ?? `${q(name)} must be a mapping of keys (${Object.keys(shape.fields).join(", ")})`);
      return undefined;
    }
    const record: Record<string, unknown> = {};
    const pairs = this.#pairs(node);
    // A variant's fields depend on its discriminator, so the plain fields go first.
    const ordered = [...pairs.filter((p) => shape.fields[p.key]?.shape.type !== "variant"), ...pairs.filter((p) => shape.fields[p.key]?.shape.type === "variant")];
    for (const { key, pair, keyAt } of ordered) {
      const field = shape.fields[key];
      const valueNode = pair.value;
      this.#remember(record, key, { key: keyAt, value: this.positionOf(valueNode) });
      if (!field) {
        const where = name === "" ? "at the top level" : `in ${q(name)}`;
        // Not named: a key that is no key of ours may be a misplaced secret (a 1.x `TOKEN: /path` line indented wrongly).
        const message = `unknown key ${where}${didYouMean(key, Object.keys(shape.fields))}`;
        if (shape.unknown === "error") this.error(keyAt, message);
        else this.warn(keyAt, `${message} (ignored, as 1.x did)`);
        continue;
      }
      if (field.ignoredBecause) {
        this.warn(keyAt, field.ignoredBecause);
        continue;
      }
      if (valueNode === null || (isScalar(valueNode) && valueNode.value === null)) {
        if (field.nullable) record[key] = null;
        else this.error(keyAt, `\`${key}\` has no value`);
        continue;
      }
      const fieldShape = field.shape;
      if (fieldShape.type === "variant") {
        const chosen = record[fieldShape.discriminator];
        const variant = typeof chosen === "string" ? fieldShape.variants[chosen] : undefined;
        // Without a known module there is nothing to check the parameters against; the module's
        // own problem has been reported.
        if (variant) record[key] = this.object(valueNode, variant, `the parameters of \`${chosen}\``, keyAt);
        continue;
      }
      const value = fieldShape.type === "object" ? this.object(valueNode, fieldShape, key, keyAt) : this.value(valueNode, fieldShape, key);
      if (value !== undefined) record[key] = value;
    }
    const present = new Set(pairs.map((p) => p.key));
    for (const [key, field] of Object.entries(shape.fields)) {
      if (field.required && !present.has(key)) {
        const owner = name === "" ? "the configuration" : q(name);
        if (field.shape.type === "variant" && typeof record[field.shape.discriminator] === "string") {
          const variant = field.shape.variants[record[field.shape.discriminator] as string];
          const needed = Object.entries(variant?.fields ?? {}).filter(([, f]) => f.required).map(([k]) => `\`${k}\``);
          this.error(where, `missing \`${key}\` in ${owner}; \`${record[field.shape.discriminator]}\` needs ${needed.join(", ")}`);
        } else if (field.shape.type !== "variant" || !present.has(field.shape.discriminator)) {
          this.error(where, `missing \`${key}\` in ${owner}`);
        }
      } else if (!present.has(key) && field.default !== undefined && !field.inherits) {
        record[key] = defaultValue(field);
      }
    }
    for (const group of shape.exactlyOne ?? []) {
      const given = group.filter((k) => present.has(k));
      const options = group.map((k) => `\`${k}\``).join(" or ");
      if (given.length === 0) this.error(where, `${q(name)} needs ${options}`);
      if (given.length > 1) this.error(this.at(record, given[1]!, "key"), `${q(name)} has both ${given.map((k) => `\`${k}\``).join(" and ")}; keep one`);
    }
    return record;
  }
}

/** A key's name as messages show it; labels such as "item `/x`" or "this client" are shown as they are. */
const q = (name: string) => (/^[^\s`]+$/.test(name) ? `\`${name}\`` : name);
