/**
 * A fast path for reading the configuration: a small parser for the plain subset of YAML that
 * cachish.yml files are written in. It exists for the daemon's start and its heap: in the
 * compiled binary the `yaml` package's first parse of a 1-2 KB file takes 5-8 ms (interpreted,
 * once), and the package, once loaded, stays on the heap that every full garbage collection
 * marks (nodes.ts). This reads such a file in about 1 ms without loading it.
 *
 * It must give exactly what the yaml package gives (yaml-doc.ts), or nothing: the same nodes,
 * ranges and YAML 1.1 values. Anything outside the subset (anchors, tags, block scalars,
 * multi-line scalars or flow collections, `?` keys, merge keys, tabs, `\r`, document markers,
 * odd indentation, a plain value that YAML 1.1 might read as a number or time in any but the
 * plainest decimal form) returns undefined, and the caller asks the yaml package: falling back
 * is always correct, only slower. Comments count in the ranges exactly as yaml counts them.
 * The differential test (test/unit/fast-yaml.test.ts) holds the two together.
 */
import { Lines, type MapNode, type Parsed, type Range, type ScalarNode, type SeqNode, type YamlNode } from "./nodes";

type Line = { start: number; text: string; indent: number; kind: "blank" | "comment" | "content" };
/**
 * Comment lines left after a collection's last value, not yet owned by a node: yaml keeps them in
 * the innermost collection that closes with a comment at least as indented as itself (its
 * `range[2]` then reaches the next content), else hands them to the enclosing one.
 */
type Trail = { maxIndent: number; end: number } | undefined;
type Read = { node: YamlNode; next: number; trail: Trail };

const BAIL = Symbol("outside the subset");
function bail(): never {
  throw BAIL;
}

// Printable characters only, no tab, `\r`, BOM, NEL or Unicode line separators.
const PRINTABLE = /^[\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\u{10000}-\u{10ffff}]*$/u;
const NOT_PLAIN_START = new Set([..."-?:,[]{}#&*!|>'\"%@`"]);
const FLOW_CHARS = new Set([..."[]{},"]);

/** What the yaml package would read from `source`, or undefined when `source` is outside the subset. */
export function parseSimpleYaml(source: string): Parsed | undefined {
  try {
    return readSubset(source);
  } catch {
    // A bug of this fast path on a file nobody foresaw: the yaml package reads the file, so a
    // configuration never fails to load because of it.
    return undefined;
  }
}

/** parseSimpleYaml, except that a bug throws: what the differential test calls. */
export function readSubset(source: string): Parsed | undefined {
  if (!PRINTABLE.test(source)) return undefined;
  let reader: Reader;
  let top: Read;
  try {
    reader = new Reader(source);
    const first = reader.next(0);
    if (first === reader.lines.length || reader.lines[first]!.indent !== 0) return undefined;
    top = reader.block(first, 0);
    if (top.next !== reader.lines.length) return undefined;
  } catch (error) {
    if (error === BAIL) return undefined;
    throw error;
  }
  return { contents: top.node, lines: new Lines(reader.lines.map((line) => line.start)), problems: [], syntaxError: false };
}

class Reader {
  readonly lines: Line[] = [];

  constructor(readonly src: string) {
    for (let start = 0; ; ) {
      const nl = src.indexOf("\n", start);
      const text = src.slice(start, nl === -1 ? undefined : nl);
      let indent = 0;
      while (text[indent] === " ") indent++;
      const kind = indent === text.length ? "blank" : text[indent] === "#" ? "comment" : "content";
      // A directive or a document marker; the other cases fail the checks for a plain scalar.
      if (indent === 0 && (text[0] === "%" || ((text.startsWith("---") || text.startsWith("...")) && (text.length === 3 || text[3] === " ")))) bail();
      this.lines.push({ start, text, indent, kind });
      if (nl === -1) break;
      start = nl + 1;
    }
  }

  /** The index of the first content line at or after `i` (lines.length if none). */
  next(i: number): number {
    while (i < this.lines.length && this.lines[i]!.kind !== "content") i++;
    return i;
  }

  /** Where line `i`'s content starts (the end of the source past the last line). */
  #contentStart(i: number): number {
    const line = this.lines[i];
    return line ? line.start + line.indent : this.src.length;
  }

  /** The end of line `i`, past its newline. */
  #lineEnd(i: number): number {
    const line = this.lines[i]!;
    return Math.min(line.start + line.text.length + 1, this.src.length);
  }

  /** A block sequence or mapping whose first entry is at column `col` of line `i`. */
  block(i: number, col: number): Read {
    return isDash(this.lines[i]!.text, col) ? this.#seq(i, col) : this.#map(i, col);
  }

  #seq(first: number, indent: number): Read {
    const seq: SeqNode = { kind: "seq", items: [], range: [0, 0, 0], flow: false };
    const from = this.lines[first]!.start + indent;
    // Comment lines that the previous item left to this one, which they then precede.
    let before: Trail;
    for (let i = first; ; ) {
      const { text } = this.lines[i]!;
      let col = indent + 1;
      while (text[col] === " ") col++;
      let item: Read;
      if (col === text.length || text[col] === "#") item = this.#nested(i, col, indent, false, before !== undefined && before.maxIndent >= 0);
      else if (isDash(text, col)) bail();
      else if (keyColon(text, col) !== -1) item = this.#map(i, col);
      else item = this.#leaf(i, col, indent);
      seq.items.push(item.node);
      const next = this.lines[item.next];
      if (next?.indent === indent && isDash(next.text, indent)) [i, before] = [item.next, item.trail];
      else return this.#close(seq, from, indent, item, next);
    }
  }

  #map(first: number, indent: number): Read {
    const map: MapNode = { kind: "map", items: [], range: [0, 0, 0], flow: false };
    const from = this.lines[first]!.start + indent;
    for (let i = first, col = indent; ; col = indent) {
      const { text } = this.lines[i]!;
      const colon = keyColon(text, col);
      if (colon === -1 || colon - col > 1000) bail(); // yaml refuses an implicit key over 1024 characters
      const key = this.#flowScalar(i, col, colon, true);
      let at = colon + 1;
      while (text[at] === " ") at++;
      const value = at === text.length || text[at] === "#" ? this.#nested(i, at, indent, true, false) : this.#leaf(i, at, indent);
      map.items.push({ key, value: value.node });
      const next = this.lines[value.next];
      if (next?.indent === indent && !isDash(next.text, indent)) i = value.next;
      else return this.#close(map, from, indent, value, next);
    }
  }

  /**
   * What follows `key:` or `-` with nothing after it on line `i`: a block node on the next lines,
   * or an empty (null) scalar at `col`. If there is a comment among the lines yaml gives the empty
   * scalar, its range ends where they end: up to the next content, except that before a sibling key
   * a blank line ends them (see blockMap in yaml's parser), and for `-`, with the comments above it.
   */
  #nested(i: number, col: number, indent: number, inMap: boolean, commentedBefore: boolean): Read {
    const { text, start } = this.lines[i]!;
    const j = this.next(i + 1);
    const next = this.lines[j];
    if (next && (next.indent > indent || (inMap && next.indent === indent && isDash(next.text, indent)))) return this.block(j, next.indent);
    let [last, end] = [j - 1, this.#contentStart(j)];
    if (inMap && next?.indent === indent) {
      let reset = i;
      for (let k = i + 1; k < j; k++) if (this.lines[k]!.kind === "comment" && this.lines[k]!.indent > indent) reset = k;
      if (reset + 1 < j) [last, end] = [reset + 1, this.lines[reset + 1]!.start + this.lines[reset + 1]!.text.length];
    }
    const at = start + col;
    const commented = commentedBefore || text[col] === "#" || this.lines.slice(i + 1, last + 1).some((l) => l.kind === "comment");
    return { node: { kind: "scalar", value: null, range: [at, at, commented ? end : at] }, next: j, trail: undefined };
  }

  /** A scalar or flow collection that ends line `i`, in a collection indented by `indent`. */
  #leaf(i: number, col: number, indent: number): Read {
    const { text } = this.lines[i]!;
    let node: YamlNode;
    let end: number;
    if ("[{'\"".includes(text[col]!)) [node, end] = this.#flowItem(i, col);
    else {
      const plain = scanPlain(text, col, false);
      if (plain.stop === ":") bail(); // `key: a: b`, a mapping where yaml allows none
      [node, end] = [this.#flowScalar(i, col, plain.end, false), plain.end];
    }
    let rest = end;
    while (text[rest] === " ") rest++;
    if (rest < text.length && (text[rest] !== "#" || rest === end)) bail();
    // Comment lines more indented than the collection belong to this node, up to the first that is not.
    let nodeEnd = this.#lineEnd(i);
    let k = i + 1;
    let absorbing = true;
    let maxIndent = -1;
    for (; k < this.lines.length && this.lines[k]!.kind !== "content"; k++) {
      const line = this.lines[k]!;
      if (line.kind !== "comment") continue;
      if (absorbing && line.indent > indent) nodeEnd = this.#lineEnd(k);
      else [absorbing, maxIndent] = [false, Math.max(maxIndent, line.indent)];
    }
    node.range[2] = nodeEnd;
    return { node, next: k, trail: { maxIndent, end: this.#contentStart(k) } };
  }

  #close(coll: MapNode | SeqNode, start: number, indent: number, last: Read, next: Line | undefined): Read {
    if (next && next.indent > indent) bail();
    const end = last.node.range[2];
    coll.range = [start, end, end];
    let trail = last.trail;
    if (trail && indent !== 0 && trail.maxIndent >= indent) [coll.range[2], trail] = [trail.end, undefined];
    return { node: coll, next: last.next, trail };
  }

  /** A one-line flow collection at `col`; returns it and the column past its closing bracket. */
  #flow(i: number, col: number): [MapNode | SeqNode, number] {
    const { text, start } = this.lines[i]!;
    const close = text[col] === "{" ? "}" : "]";
    const coll: MapNode | SeqNode = close === "}" ? { kind: "map", items: [], range: [0, 0, 0], flow: true } : { kind: "seq", items: [], range: [0, 0, 0], flow: true };
    let k = skipSpaces(text, col + 1);
    while (text[k] !== close) {
      let key: ScalarNode | undefined;
      if (coll.kind === "map") {
        const keyEnd = flowScalarEnd(text, k);
        if (text[keyEnd] !== ":" || text[keyEnd + 1] !== " ") bail();
        key = this.#flowScalar(i, k, keyEnd, true);
        k = skipSpaces(text, keyEnd + 1);
      }
      const [node, end] = this.#flowItem(i, k);
      k = skipSpaces(text, end);
      node.range[2] = start + k;
      if (coll.kind === "map") coll.items.push({ key: key!, value: node });
      else coll.items.push(node);
      if (text[k] === ",") {
        k = skipSpaces(text, k + 1);
        if (text[k] === close) bail(); // a trailing comma
      } else if (text[k] !== close) bail();
    }
    coll.range = [start + col, start + k + 1, start + k + 1];
    return [coll, k + 1];
  }

  /** A value inside a flow collection, and the column past it. */
  #flowItem(i: number, col: number): [YamlNode, number] {
    const text = this.lines[i]!.text;
    if (text[col] === "[" || text[col] === "{") return this.#flow(i, col);
    const end = flowScalarEnd(text, col);
    return [this.#flowScalar(i, col, end, false), end];
  }

  /** The quoted or plain scalar in `[col, end)` of line `i`, read as YAML 1.1 reads it. */
  #flowScalar(i: number, col: number, end: number, atKey: boolean): ScalarNode {
    const { text, start } = this.lines[i]!;
    const raw = text.slice(col, end);
    if (raw === "") bail();
    const range: Range = [start + col, start + end, start + end];
    if (raw[0] === "'") return { kind: "scalar", value: raw.slice(1, -1).replaceAll("''", "'"), range };
    if (raw[0] === '"') return { kind: "scalar", value: raw.slice(1, -1), range };
    // `<<` as a key is a merge, which the walker expands: yaml's own path for that.
    if (atKey && raw === "<<") bail();
    return { kind: "scalar", value: plainValue(raw), range };
  }
}

/**
 * YAML 1.1's value of a plain scalar (yaml.org/type): null, a boolean, a plain decimal number,
 * else a string. Every other form YAML 1.1 may read as a number or a time (other bases, `_`,
 * exponents, sexagesimal `1:30`, `.inf`, dates, more than 15 digits) is left to the yaml package:
 * NUMBER_LIKE is wider than all of them together, yet a version, an address or a duration
 * (`1.2.3`, `127.0.0.1:2469`, `250ms`, `7d`) is text at once.
 */
const NULL = /^(?:~|null|Null|NULL)$/;
const TRUE = /^(?:y|Y|yes|Yes|YES|true|True|TRUE|on|On|ON)$/;
const FALSE = /^(?:n|N|no|No|NO|false|False|FALSE|off|Off|OFF)$/;
const INTEGER = /^[-+]?(?:0|[1-9][0-9]{0,14})$/;
const DECIMAL = /^[-+]?(?:0|[1-9][0-9]{0,14})\.[0-9]{1,15}$/;
const NUMBER_LIKE = /^[-+]?(?:[0-9_]*(?::[0-9_]*)*(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?|0[xXbBoO][0-9a-fA-F_]*|\.[a-zA-Z]+)$|^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}/;

function plainValue(text: string): unknown {
  if (NULL.test(text)) return null;
  if (TRUE.test(text)) return true;
  if (FALSE.test(text)) return false;
  if (INTEGER.test(text)) return Number(text);
  if (DECIMAL.test(text)) return Number.parseFloat(text);
  if (NUMBER_LIKE.test(text)) bail();
  return text;
}

function isDash(text: string, col: number): boolean {
  return text[col] === "-" && (col + 1 === text.length || text[col + 1] === " ");
}

function skipSpaces(text: string, col: number): number {
  while (text[col] === " ") col++;
  return col;
}

/** The column past the closing quote of the one-line quoted scalar at `col` (no escapes). */
function quoteEnd(text: string, col: number): number {
  const quote = text[col]!;
  let close = text.indexOf(quote, col + 1);
  // In single quotes, '' is a quote.
  while (quote === "'" && close !== -1 && text[close + 1] === "'") close = text.indexOf(quote, close + 2);
  if (close === -1 || (quote === '"' && text.lastIndexOf("\\", close) > col)) bail();
  return close + 1;
}

/** The column past the quoted or plain scalar at `col` of a flow collection. */
function flowScalarEnd(text: string, col: number): number {
  return text[col] === '"' || text[col] === "'" ? quoteEnd(text, col) : scanPlain(text, col, true).end;
}

/**
 * The end of the plain scalar at `col` (trailing spaces excluded) and what stopped it, as yaml's
 * lexer scans one: `: ` or a final `:`, ` #`, the end of the line, or in a flow collection a
 * flow indicator. A `:` inside a flow scalar, or a comment inside a one-line flow collection, is
 * left to yaml. (indexOf rather than a loop: this runs interpreted, once, at start-up.)
 */
function scanPlain(text: string, col: number, inFlow: boolean): { end: number; stop: string } {
  const first = text[col];
  const next = text[col + 1];
  if (first === undefined || (NOT_PLAIN_START.has(first) && !(first === "-" && next !== undefined && next !== " " && !FLOW_CHARS.has(next)))) bail();
  let stopAt = text.length;
  let stop = "";
  if (inFlow) {
    for (let k = col; k < text.length && stop === ""; k++) if (FLOW_CHARS.has(text[k]!) || text[k] === ":") [stopAt, stop] = [k, text[k]!];
    if (stop === ":" && text[stopAt + 1] !== " ") bail();
  } else {
    let colon = text.indexOf(": ", col);
    if (colon === -1 && text.endsWith(":") && text.length - 1 >= col) colon = text.length - 1;
    if (colon !== -1) [stopAt, stop] = [colon, ":"];
  }
  const hash = text.indexOf(" #", col);
  if (hash !== -1 && hash < stopAt) {
    if (inFlow) bail();
    [stopAt, stop] = [hash, "#"];
  }
  let end = stopAt;
  while (end > col && text[end - 1] === " ") end--;
  return { end, stop };
}

/** The column of the `:` of an implicit key at `col` (`key: ...` or `"key": ...`), else -1. */
function keyColon(text: string, col: number): number {
  if (text[col] === '"' || text[col] === "'") {
    const end = quoteEnd(text, col);
    return text[end] === ":" && (end + 1 === text.length || text[end + 1] === " ") ? end : -1;
  }
  if (text[col] === "[" || text[col] === "{") return -1;
  const plain = scanPlain(text, col, false);
  if (plain.stop !== ":") return -1;
  // `key : value`: yaml reads it, but it is not worth a rule here.
  return text[plain.end] === ":" ? plain.end : bail();
}
