/**
 * A configuration file as the validator walks it: mappings, lists and scalars with the offset
 * each starts at, aliases already pointing at the nodes they name (yaml-doc.ts makes them).
 */
import type { Problem } from "./problems";

export type ScalarNode = {
  kind: "scalar";
  /** YAML 1.1's reading of it: a string, number, boolean, null, or what the yaml package makes of the rest (dates, a merge key's symbol). */
  value: unknown;
  offset: number;
};
export type MapNode = { kind: "map"; items: PairNode[]; offset: number };
export type SeqNode = { kind: "seq"; items: (YamlNode | null)[]; offset: number };
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

export const isScalar = (node: YamlNode | null | undefined): node is ScalarNode => node?.kind === "scalar";
export const isMap = (node: YamlNode | null | undefined): node is MapNode => node?.kind === "map";
export const isSeq = (node: YamlNode | null | undefined): node is SeqNode => node?.kind === "seq";
