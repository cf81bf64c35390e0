/**
 * A configuration file read by the yaml package, as PyYAML (1.x) read it, turned into the
 * nodes the validator walks (nodes.ts). Two promises are kept here, before anything else sees
 * the file:
 *
 * - A YAML syntax problem is reported by its kind and position only. The yaml package's own
 *   messages quote the text they stumbled on, and after one stray `]` that is every later
 *   scalar of the file: API tokens, Hawk secrets, client tokens.
 * - A file that would be costly to read is refused at once, with the reason: too large, nested
 *   too deeply (the yaml package slows down sharply on thousands of open `[`), or expanding,
 *   through aliases, to more values than any configuration holds. A reload with such a file
 *   then costs the running daemon no stall.
 */
import { CST, type ErrorCode, isAlias, isMap, isScalar, isSeq, Lexer, parseDocument, type YAMLError } from "yaml";
import { Lines, type MapNode, type Parsed, type SeqNode, type YamlNode } from "./nodes";
import type { Problem } from "./problems";

/**
 * PyYAML's SafeLoader (1.x's reader) resolves plain scalars by its own regular expressions, which
 * differ from the yaml package's YAML 1.1 in forms a 1.x file may hold: `y`, `Y`, `n`, `N` are
 * strings (so `field: [x, y]` names two keys), a float needs a dot and its exponent a sign (`1e3`,
 * `12e45`, `1.5e3` are strings), `089` and `+.5` are strings, a sexagesimal int starts with 1-9,
 * a date alone has two-digit month and day. The yaml package's tags are kept, each given PyYAML's
 * expression (resolver.py in PyYAML 6): its reading of what matches is the same.
 */
const PYYAML: Record<string, RegExp> = {
  true: /^(?:yes|Yes|YES|true|True|TRUE|on|On|ON)$/,
  false: /^(?:no|No|NO|false|False|FALSE|off|Off|OFF)$/,
  int: /^[-+]?(?:0|[1-9][0-9_]*)$/,
  intTime: /^[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+$/,
  float: /^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?)$/,
  timestamp: /^(?:[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)$/,
};

type Tag = { tag: string; format?: string; test?: RegExp; resolve?: unknown };

function asPyYaml(tags: Tag[]): Tag[] {
  const named = (t: Tag) => {
    const kind = t.tag.replace("tag:yaml.org,2002:", "");
    if (kind === "bool") return t.test?.test("yes") ? "true" : "false";
    if ((kind === "int" || kind === "float") && t.format === "TIME") return `${kind}Time`;
    if (kind === "float" && t.test?.test(".inf")) return "floatNaN";
    return t.format ? `${kind}${t.format}` : kind;
  };
  return tags.flatMap((t) => {
    const name = named(t);
    // A float written with an exponent and no dot is a string to PyYAML.
    if (name === "floatEXP") return [];
    // `0_` is an octal of no digits: 0 to PyYAML, NaN to the yaml package.
    if (name === "intOCT" && typeof t.resolve === "function") {
      const resolve = t.resolve as (...args: unknown[]) => unknown;
      return [
        {
          ...t,
          resolve: (...args: unknown[]) => {
            const value = resolve(...args);
            return Number.isNaN(value) ? 0 : value;
          },
        },
      ];
    }
    const test = PYYAML[name];
    return test && t.test ? [{ ...t, test }] : [t];
  });
}

/** Far more than any configuration needs (a 1.x file with a few thousand items is ~200 KiB), and read in well under a second. */
export const MAX_BYTES = 256 * 1024;
/** Mappings and lists inside one another; a configuration uses five or six. */
export const MAX_DEPTH = 64;
/** Values once every alias is expanded: what the validator walks at most. */
export const MAX_VALUES = 100_000;
/** Beyond the first few, the parser's guesses after a syntax error say nothing new. */
const MAX_SYNTAX_PROBLEMS = 10;

/** What each kind of YAML problem is, in words that quote nothing of the file. */
const KINDS: Record<ErrorCode, string> = {
  ALIAS_PROPS: "an alias cannot have an anchor or a tag",
  BAD_ALIAS: "an alias names no anchor defined before it",
  BAD_COLLECTION_TYPE: "the tag does not fit this kind of collection",
  BAD_DIRECTIVE: "a `%` directive is not understood",
  BAD_DQ_ESCAPE: "a double-quoted string holds an invalid `\\` escape",
  BAD_INDENT: "the indentation does not line up with the enclosing mapping or list",
  BAD_PROP_ORDER: "an anchor or tag is out of place",
  BAD_SCALAR_START: "a plain value cannot start with this character; put the value in quotes",
  BLOCK_AS_IMPLICIT_KEY: "a nested mapping or list cannot be a key",
  BLOCK_IN_FLOW: "an indented mapping or list cannot stand inside `[...]` or `{...}`",
  DUPLICATE_KEY: "a key is set twice",
  IMPOSSIBLE: "this cannot be read as YAML",
  KEY_OVER_1024_CHARS: "a key is longer than 1024 characters",
  MISSING_CHAR: "a closing quote, bracket or brace is missing",
  MULTILINE_IMPLICIT_KEY: "a key cannot span several lines (is a `:` or a quote missing on the line before?)",
  MULTIPLE_ANCHORS: "a value has two anchors",
  MULTIPLE_DOCS: "the file holds more than one YAML document (`---`); keep one",
  MULTIPLE_TAGS: "a value has two tags",
  NON_STRING_KEY: "a key is not a string",
  RESOURCE_EXHAUSTION: "the file is too costly to read",
  TAB_AS_INDENT: "a tab is used for indentation; indent with spaces",
  TAG_RESOLVE_FAILED: "a tag is not understood",
  UNEXPECTED_TOKEN: "unexpected character here (a stray bracket, brace, colon, dash or quote?)",
};

/**
 * The yaml package's messages that are fixed text: these are shown as they are. Any other
 * message may quote the file (`Unexpected scalar token in YAML stream: "<a token>"`), so only
 * its kind is shown. Matched whole, so nothing of the file can pass.
 */
const FIXED_MESSAGES = new Set([
  "A block sequence may not be used as an implicit map key",
  "A node can have at most one anchor",
  "A node can have at most one tag",
  "Alias cannot be an empty string",
  "All sequence items must start at the same column",
  "An alias node must not specify any properties",
  "Anchor cannot be an empty string",
  "Block scalar header not found",
  "Comments must be separated from other tokens by white space characters",
  "Implicit keys need to be on a single line",
  "Implicit keys of flow sequence pairs need to be on a single line",
  "Implicit map keys need to be followed by map values",
  'Missing closing "quote',
  "Missing closing 'quote",
  "Nested mappings are not allowed in compact mappings",
  "Sequence item without - indicator",
  "Tabs are not allowed as indentation",
  "Tags and anchors must be separated from the next token by white space",
]);

/** A YAML problem in words that quote nothing of the file. */
function syntaxProblem(error: YAMLError, severity: Problem["severity"], lines: Lines): Problem {
  const message = FIXED_MESSAGES.has(error.message) ? error.message : (KINDS[error.code] ?? "this cannot be read as YAML");
  return { severity, message: `YAML: ${message}`, at: lines.position(error.pos[0]) };
}

/** Where each line starts; counted here, since the yaml package's count stops where parsing gave up. */
function lineStarts(source: string): Lines {
  const starts = [0];
  for (let at = source.indexOf("\n"); at >= 0; at = source.indexOf("\n", at + 1)) starts.push(at + 1);
  return new Lines(starts);
}

/** A file that is not read further: one problem, and nothing for the validator to walk. */
const refused = (lines: Lines, message: string, offset = 0): Parsed => ({ contents: null, lines, problems: [{ severity: "error", message, at: lines.position(offset) }], syntaxError: true, refused: true });
const TOO_DEEP = `YAML: mappings and lists nested more than ${MAX_DEPTH} deep; the file is not read further`;

/** Tokens the yaml package's lexer yields of its own (a document's start, a scalar's): not in the source. */
const LEXER_MARKERS = new Set([CST.DOCUMENT, CST.FLOW_END, CST.SCALAR]);

/**
 * The offset where `[` and `{` first nest deeper than MAX_DEPTH, by the yaml package's own
 * lexer: its tokens tell brackets from text inside quotes. It stops there, so a file of
 * thousands of `[` costs a few tokens, not the parser's seconds.
 */
function tooDeepFlow(source: string): number | undefined {
  let depth = 0;
  let offset = 0;
  for (const token of new Lexer().lex(source)) {
    if (token === "[" || token === "{") depth++;
    else if (token === "]" || token === "}") depth = Math.max(0, depth - 1);
    if (depth > MAX_DEPTH) return offset;
    if (!LEXER_MARKERS.has(token)) offset += token.length;
  }
  return undefined;
}

export function parseYaml(source: string): Parsed {
  const lines = lineStarts(source);
  if (Buffer.byteLength(source) > MAX_BYTES) {
    return refused(lines, `the file is larger than ${MAX_BYTES / 1024} KiB, far more than a configuration needs; it is not read`);
  }
  const deepAt = tooDeepFlow(source);
  if (deepAt !== undefined) {
    return refused(lines, TOO_DEEP, deepAt);
  }
  // 1.x read its file with PyYAML, which speaks YAML 1.1: `yes`, `on` and `True` are booleans
  // there, and a 1.x file must mean the same here (PYYAML above). Duplicate keys are the validator's to report.
  // The schema is named too: a `%YAML 1.2` directive in the file would otherwise switch the
  // yaml package to 1.2's, where PyYAML still reads 1.1.
  const doc = parseDocument(source, { version: "1.1", schema: "yaml-1.1", prettyErrors: false, uniqueKeys: false, merge: true, customTags: (tags) => asPyYaml(tags as Tag[]) as typeof tags });
  const problems = [...doc.errors.map((e) => syntaxProblem(e, "error", lines)), ...doc.warnings.map((e) => syntaxProblem(e, "warning", lines))];
  if (problems.length > MAX_SYNTAX_PROBLEMS) {
    const more = problems.length - MAX_SYNTAX_PROBLEMS;
    problems.splice(MAX_SYNTAX_PROBLEMS, more, { severity: "error", message: `YAML: ${more} more problems after these, most of them the parser's guesses after the first; fix the first and check again` });
  }

  // An alias becomes the node its anchor names: the latest anchor of that name before it, as
  // YAML says. Anchors are met in the order of the file (an alias may name an enclosing node),
  // so one pass finds them; the yaml package's own lookup searches the whole document per alias.
  const anchors = new Map<string, YamlNode>();
  let tooDeep: number | undefined;
  const convert = (node: unknown, depth: number): YamlNode | null => {
    if (isAlias(node)) return anchors.get(node.source) ?? null;
    const offset = (node as { range?: number[] } | null | undefined)?.range?.[0] ?? 0;
    if (depth > MAX_DEPTH) {
      tooDeep ??= offset;
      return null;
    }
    if (isScalar(node)) return anchored(node, { kind: "scalar", value: node.value, offset });
    if (isMap(node)) {
      const map = anchored<MapNode>(node, { kind: "map", items: [], offset });
      for (const pair of node.items) map.items.push({ key: convert(pair.key, depth + 1), value: convert(pair.value, depth + 1) });
      return map;
    }
    if (isSeq(node)) {
      const seq = anchored<SeqNode>(node, { kind: "seq", items: [], offset });
      for (const item of node.items) seq.items.push(convert(item, depth + 1));
      return seq;
    }
    return null;
  };
  /** Named by its anchor before its children are made: an alias among them may name it. */
  const anchored = <T extends YamlNode>(node: { anchor?: string }, made: T): T => {
    if (node.anchor) anchors.set(node.anchor, made);
    return made;
  };
  const contents = convert(doc.contents, 0);
  if (tooDeep !== undefined) {
    return refused(lines, TOO_DEEP, tooDeep);
  }
  const values = expandedSize(contents);
  if (values > MAX_VALUES) {
    const why = anchors.size > 0 ? `its aliases expand to more than ${MAX_VALUES} values` : `it holds more than ${MAX_VALUES} values`;
    const fix = anchors.size > 0 ? " (write the repeated parts out, or use fewer `*` aliases)" : "";
    return refused(lines, `the file is not read: ${why}, more than any configuration holds${fix}`);
  }
  return { contents, lines, problems, syntaxError: doc.errors.length > 0 };
}

/**
 * How many values the validator would meet with every alias expanded, counted without
 * expanding: each node's count once, from its children's. A node inside itself counts once.
 * Stops counting past MAX_VALUES.
 */
function expandedSize(root: YamlNode | null): number {
  const sizes = new Map<YamlNode, number>();
  const size = (node: YamlNode | null): number => {
    if (node === null) return 1;
    const known = sizes.get(node);
    if (known !== undefined) return known;
    sizes.set(node, 1); // while it is being counted: an alias of an enclosing node
    let total = 1;
    if (node.kind === "map") for (const pair of node.items) total += size(pair.key) + size(pair.value);
    else if (node.kind === "seq") for (const item of node.items) total += size(item);
    total = Math.min(total, MAX_VALUES + 1);
    sizes.set(node, total);
    return total;
  };
  return size(root);
}
