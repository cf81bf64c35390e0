/**
 * The yaml package's reading of a configuration, for what the fast path leaves to it (anchors
 * and aliases, tags, block scalars, values over several lines, merge keys, anything unusual)
 * and for reporting YAML syntax errors. Loaded when first needed: a daemon whose file is plain
 * never loads it (see nodes.ts for why that matters).
 */
import type * as YAML from "yaml";
import { Lines, type MapNode, type PairNode, type Parsed, type Range, type SeqNode, type YamlNode } from "./nodes";
import type { Problem } from "./walk";

const yaml = (): typeof YAML => require("yaml");

export function parseWithYaml(source: string): Parsed {
  const { LineCounter, parseDocument, isAlias, isMap, isPair, isScalar, isSeq } = yaml();
  const counter = new LineCounter();
  // 1.x read its file with PyYAML, which speaks YAML 1.1: `yes`, `on` and `True` are booleans
  // there, and a 1.x file must mean the same here. Duplicate keys are the walker's to report.
  const doc = parseDocument(source, { version: "1.1", lineCounter: counter, prettyErrors: false, uniqueKeys: false, merge: true });
  const lines = new Lines(counter.lineStarts.length > 0 ? [...counter.lineStarts] : [0]);
  const problems: Problem[] = [...doc.errors, ...doc.warnings].map((e) => {
    const { line, column } = lines.position(e.pos[0]);
    const severity = doc.errors.includes(e as never) ? "error" : "warning";
    return { severity, message: `YAML: ${e.message.split("\n")[0]}`, at: { line, column } };
  });

  // An alias becomes the node it names (as the walker took it before), once per node: a node
  // may be named from within itself.
  const made = new Map<unknown, YamlNode>();
  const convert = (node: unknown): YamlNode | null => {
    const target = isAlias(node) ? node.resolve(doc) : node;
    if (target === undefined || target === null) return null;
    const known = made.get(target);
    if (known) return known;
    const range = ((target as { range?: Range }).range ?? [0, 0, 0]).slice(0, 3) as Range;
    if (isMap(target)) {
      const map: MapNode = { kind: "map", items: [], range, flow: Boolean(target.flow) };
      made.set(target, map);
      for (const pair of target.items) if (isPair(pair)) map.items.push({ key: convert(pair.key), value: convert(pair.value) } satisfies PairNode);
      return map;
    }
    if (isSeq(target)) {
      const seq: SeqNode = { kind: "seq", items: [], range, flow: Boolean(target.flow) };
      made.set(target, seq);
      for (const item of target.items) seq.items.push(convert(item));
      return seq;
    }
    if (isScalar(target)) {
      const scalar: YamlNode = { kind: "scalar", value: target.value, range };
      made.set(target, scalar);
      return scalar;
    }
    return null;
  };
  return { contents: convert(doc.contents), lines, problems, syntaxError: doc.errors.length > 0 };
}
