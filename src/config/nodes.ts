/**
 * A configuration file as the validator walks it: mappings, lists and scalars with the offset
 * each starts at, aliases already pointing at the nodes they name (yaml-doc.ts makes them).
 */

import type { Problem } from "./walk";

/** `[start, end of the value, end of the node with its comments]`, offsets in the source. */
export type Range = [number, number, number];

export type ScalarNode = {
  kind: "scalar";
  /** YAML 1.1's reading of it: a string, number, boolean, null, or what the yaml package makes of the rest (dates, a merge key's symbol). */
  value: unknown;
  range: Range;
};
export type MapNode = { kind: "map"; items: PairNode[]; range: Range };
export type SeqNode = { kind: "seq"; items: (YamlNode | null)[]; range: Range };
export type PairNode = { key: YamlNode | null; value: YamlNode | null };
export type YamlNode = ScalarNode | MapNode | SeqNode;

/**
 * A file as the parser read it: its contents (null for an empty file), and YAML syntax problems;
 * `refused` when it was not read at all (too large, too deep, too many aliases).
 */
export type Parsed = { contents: YamlNode | null; lines: Lines; problems: Problem[]; syntaxError: boolean; refused?: boolean };

/** Offsets to lines and columns, both from 1 (yaml's LineCounter counts the same way). */
export class Lines {
  /** `starts`: the offset each line starts at. */
  constructor(readonly starts: number[]) {}

  position(offset: number): { line: number; column: number } {
    // The last line that starts at or before `offset`.
    let low = 0;
    let high = this.starts.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (this.starts[mid]! <= offset) low = mid;
      else high = mid - 1;
    }
    return { line: low + 1, column: offset - (this.starts[low] ?? 0) + 1 };
  }
}

/** A node as plain data: mappings as objects (keys as strings), lists as arrays. */
export function toJS(node: YamlNode | null, seen = new Map<YamlNode, unknown>()): unknown {
  if (node === null) return null;
  if (node.kind === "scalar") return node.value;
  const done = seen.get(node);
  if (done !== undefined) return done; // an alias of an enclosing node
  if (node.kind === "seq") {
    const list: unknown[] = [];
    seen.set(node, list);
    for (const item of node.items) list.push(toJS(item, seen));
    return list;
  }
  const record: Record<string, unknown> = {};
  seen.set(node, record);
  for (const { key, value } of node.items) record[String(toJS(key, seen))] = toJS(value, seen);
  return record;
}

export const isScalar = (node: YamlNode | null | undefined): node is ScalarNode => node?.kind === "scalar";
export const isMap = (node: YamlNode | null | undefined): node is MapNode => node?.kind === "map";
export const isSeq = (node: YamlNode | null | undefined): node is SeqNode => node?.kind === "seq";
