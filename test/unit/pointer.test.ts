/**
 * JSON Pointer (src/pointer.ts) against RFC 6901's own examples, and against Python's
 * `jsonpointer` module over generated documents and pointers.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { parseJson, stringifyJson } from "../../src/json";
import { pointerProblem, resolvePointer } from "../../src/pointer";
import { askPython, PYTHON_WITH_JSONPOINTER } from "../support/python";

/** What `pointer` selects in `text`, as cachish writes it; `none` where it resolves to nothing, `invalid` where it is no pointer. */
function select(text: string, pointer: string): string {
  if (pointerProblem(pointer) !== undefined) return "invalid";
  const found = resolvePointer(parseJson(text), pointer);
  return found.ok ? stringifyJson(found.value) : "none";
}

// RFC 6901 section 5 (the URI fragment forms of section 6 are not pointers cachish takes).
const RFC_DOCUMENT = String.raw`{
  "foo": ["bar", "baz"],
  "": 0,
  "a/b": 1,
  "c%d": 2,
  "e^f": 3,
  "g|h": 4,
  "i\\j": 5,
  "k\"l": 6,
  " ": 7,
  "m~n": 8
}`;

describe("RFC 6901 section 5", () => {
  test("its twelve pointers give the values it lists", () => {
    const expected: [string, string][] = [
      ["", String.raw`{"foo": ["bar", "baz"], "": 0, "a/b": 1, "c%d": 2, "e^f": 3, "g|h": 4, "i\\j": 5, "k\"l": 6, " ": 7, "m~n": 8}`],
      ["/foo", '["bar", "baz"]'],
      ["/foo/0", '"bar"'],
      ["/", "0"],
      ["/a~1b", "1"],
      ["/c%d", "2"],
      ["/e^f", "3"],
      ["/g|h", "4"],
      ["/i\\j", "5"],
      ['/k"l', "6"],
      ["/ ", "7"],
      ["/m~0n", "8"],
    ];
    expect(expected.map(([pointer]) => [pointer, select(RFC_DOCUMENT, pointer)])).toEqual(expected);
  });
});

describe("what RFC 6901 section 4 says of evaluation", () => {
  test("`~1` is decoded before `~0`: `~01` is `~1`, not `/`", () => {
    expect(select('{"~1": "tilde-one", "/": "slash"}', "/~01")).toBe('"tilde-one"');
    expect(select('{"~1": "tilde-one", "/": "slash"}', "/~1")).toBe('"slash"');
    expect(select('{"~": "tilde"}', "/~0")).toBe('"tilde"');
  });

  test("an array index is `0` or digits without a leading zero; `-` names no element", () => {
    const list = '{"a": [10, 11, 12]}';
    expect(["/a/0", "/a/2"].map((p) => select(list, p))).toEqual(["10", "12"]);
    for (const pointer of ["/a/3", "/a/-", "/a/01", "/a/00", "/a/+1", "/a/-1", "/a/ 1", "/a/1.0", "/a/1e0", "/a/", "/a/99999999999999999999", "/a/\u0661"]) {
      expect([pointer, select(list, pointer)]).toEqual([pointer, "none"]);
    }
  });

  test("a member name is matched exactly: `/0` on an object is the key \"0\", and a key given twice has its last value", () => {
    expect(select('{"0": "zero", "00": "double"}', "/0")).toBe('"zero"');
    expect(select('{"0": "zero"}', "/00")).toBe("none");
    expect(select('{"1": "one"}', "/1")).toBe('"one"');
    expect(select('{"a": 1, "b": 2, "a": 3}', "/a")).toBe("3");
    expect(select('{"A": 1}', "/a")).toBe("none");
  });

  test("the part selected keeps the upstream's numbers, key order and escapes", () => {
    expect(select('{"data": {"data": {"z": 1.0, "10": 12345678901234567890, "a": "Zo\\u00eb"}}}', "/data/data")).toBe('{"z": 1.0, "10": 12345678901234567890, "a": "Zo\\u00eb"}');
  });

  test("where it stops: the reference token (from 1) and the type it could not look into", () => {
    const document = parseJson('{"a": {"b": [1, "x", null]}}');
    expect(resolvePointer(document, "/a/c")).toEqual({ ok: false, step: 2, within: "object" });
    expect(resolvePointer(document, "/a/b/3")).toEqual({ ok: false, step: 3, within: "array" });
    expect(resolvePointer(document, "/a/b/1/0")).toEqual({ ok: false, step: 4, within: "string" });
    expect(resolvePointer(document, "/a/b/0/x")).toEqual({ ok: false, step: 4, within: "number" });
    expect(resolvePointer(document, "/a/b/2/x")).toEqual({ ok: false, step: 4, within: "literal" });
  });

  test("a pointer is empty or starts with `/`, and has `~` only as `~0` or `~1`; the problem never quotes it", () => {
    for (const good of ["", "/", "//", "/a~0~1b", "/~01", "/0/-"]) expect([good, pointerProblem(good)]).toEqual([good, undefined]);
    const start = "a JSON Pointer is empty (the whole answer) or starts with `/`, e.g. `/data/data`";
    expect(pointerProblem("data/secret")).toBe(start);
    expect(pointerProblem("#/data/secret")).toBe(`${start} (the URI fragment form, \`#/...\`, is not taken: drop the \`#\`)`);
    const tilde = (n: string) => `a \`~\` in a JSON Pointer (its ${n} character) stands only as \`~0\` (for \`~\`) or \`~1\` (for \`/\`): write a key holding \`~\` or \`/\` with them, \`a/b\` as \`/a~1b\``;
    expect(pointerProblem("/secret~2")).toBe(tilde("8th"));
    expect(pointerProblem("/secret~")).toBe(tilde("8th"));
    expect(pointerProblem("/~0~")).toBe(tilde("4th"));
  });
});

/**
 * Documents to point into: keys that a pointer must escape (`/`, `~`, `~0`, `~1`), the empty
 * key, keys that look like indexes (`0`, `01`, `-`), keys written with `\u` escapes, keys given
 * twice; numbers Python would rewrite; arrays and strings to look into.
 */
type Tree = { object: [string, Tree][] } | { array: Tree[] } | { leaf: string };
const keyText = fc.oneof(
  fc.constantFrom("a", "b", "", "/", "~", "~0", "~1", "~01", "a/b", "m~n", "0", "1", "01", "10", "-", " ", "é", "😀", "%25", "\\"),
  fc.string({ unit: fc.constantFrom("a", "/", "~", "0", "1", "-"), maxLength: 4 }),
);
const leaf = fc.constantFrom("1", "1.0", "-0", "1E5", "12345678901234567890", "true", "false", "null", '"x"', '"0"', '"/"', '"~"', '"\\u00e9"', "[]", "{}");
const { tree } = fc.letrec<{ tree: Tree }>((tie) => ({
  tree: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    leaf.map((text) => ({ leaf: text })),
    fc.array(tie("tree"), { maxLength: 4 }).map((items) => ({ array: items })),
    fc.array(fc.tuple(keyText, tie("tree")), { maxLength: 5 }).map((entries) => ({ object: entries })),
  ),
}));

/** A key as JSON text: sometimes with its `/` and `~` as `\u` escapes, which the reader must decode before matching. */
const keyJson = (key: string, escaped: boolean) => (escaped ? JSON.stringify(key).replaceAll("/", "\\u002f").replaceAll("~", "\\u007E") : JSON.stringify(key));
function render(t: Tree, escaped: boolean): string {
  if ("leaf" in t) return t.leaf;
  if ("array" in t) return `[${t.array.map((item) => render(item, escaped)).join(", ")}]`;
  return `{${t.object.map(([key, value]) => `${keyJson(key, escaped)}: ${render(value, escaped)}`).join(", ")}}`;
}

/** Every path into the tree, as its tokens. */
function paths(t: Tree, prefix: string[] = []): string[][] {
  const here = [prefix];
  if ("array" in t) t.array.forEach((item, i) => here.push(...paths(item, [...prefix, String(i)])));
  if ("object" in t) for (const [key, value] of t.object) here.push(...paths(value, [...prefix, key]));
  return here;
}
const escapeToken = (token: string) => token.replaceAll("~", "~0").replaceAll("/", "~1");
const pointerOf = (tokens: string[]) => tokens.map((token) => `/${escapeToken(token)}`).join("");

/**
 * A document with pointers into it: each path that exists, and each spoiled so that it may
 * not: a token added or changed (an index out of range, `-`, a leading zero, a key in another
 * case), a `/` or `~` left unescaped or escaped in the wrong order, or text that is no pointer
 * (no leading `/`, the URI fragment form, a `~` not followed by `0` or `1`).
 */
const spoil = fc.constantFrom("", "/-", "/01", "/00", "/0", "/1", "/9", "/10", "/x", "/A", "/~1", "/~0", "/~01", "/~10", "/", "/ ");
const sample = fc
  .tuple(tree, fc.boolean(), fc.array(fc.tuple(fc.nat(), spoil, fc.constantFrom("append", "replace", "raw", "wrong-order", "no-slash", "fragment", "bad-tilde")), { maxLength: 12 }))
  .map(([t, escaped, spoils]) => {
    const all = paths(t);
    const pointers = all.map(pointerOf);
    for (const [n, piece, how] of spoils) {
      const tokens = all[n % all.length]!;
      const last = tokens.length - 1;
      if (how === "append") pointers.push(pointerOf(tokens) + piece);
      else if (how === "replace") pointers.push(pointerOf(tokens.slice(0, last)) + piece);
      else if (how === "raw") pointers.push(tokens.map((token) => `/${token}`).join(""));
      else if (how === "wrong-order") pointers.push(tokens.map((token) => `/${token.replaceAll("/", "~1").replaceAll("~", "~0")}`).join(""));
      else if (how === "no-slash") pointers.push(pointerOf(tokens).slice(1));
      else if (how === "fragment") pointers.push(`#${pointerOf(tokens)}`);
      else pointers.push(`${pointerOf(tokens)}/~${piece.slice(1, 2)}`);
    }
    return { text: render(t, escaped), pointers };
  });

/**
 * What Python's `jsonpointer` selects, written by `json.dumps` with each number as the text the
 * upstream wrote (as in json.test.ts: Python would rewrite `1E5` as `100000.0`, cachish keeps
 * it). Where the module goes past RFC 6901 it is held to the RFC: it indexes into a string (a
 * Python sequence), returns a marker for `-`, and before 3.0 took `01` for an index (its
 * `re.match`; Debian 12 ships 2.3).
 */
const PYTHON = String.raw`
import json, re, sys
from jsonpointer import EndOfList, JsonPointer, JsonPointerException
mark = lambda text: "\x00NUM" + text + "\x00"
INDEX = re.compile("0|[1-9][0-9]*")
class Rfc(JsonPointer):
    def walk(self, doc, part):
        if isinstance(doc, str) or (isinstance(doc, list) and not INDEX.fullmatch(part)):
            raise JsonPointerException("no such element")
        found = super().walk(doc, part)
        if isinstance(found, EndOfList):
            raise JsonPointerException("past the end")
        return found
out = []
for case in json.load(sys.stdin):
    doc = json.loads(case["text"], parse_int=mark, parse_float=mark, parse_constant=mark)
    answers = []
    for pointer in case["pointers"]:
        try:
            pointer = Rfc(pointer)
        except JsonPointerException:
            answers.append("invalid")
            continue
        try:
            found = pointer.resolve(doc)
        except JsonPointerException:
            answers.append("none")
            continue
        answers.append(re.sub(r'"\\u0000NUM([^"\\]*)\\u0000"', r"\1", json.dumps(found)))
    out.append(answers)
json.dump(out, sys.stdout)
`;

describe("JSON Pointer against Python's jsonpointer", () => {
  test("generated documents and pointers: the same pointers are refused, the same resolve, to the same bytes", async () => {
    const cases = fc.sample(sample, { numRuns: 600, seed: 6901 });
    const expected = await askPython<string[][]>(PYTHON, cases, PYTHON_WITH_JSONPOINTER);
    const compared = cases.flatMap((c, i) => c.pointers.map((pointer, j) => ({ text: c.text, pointer, python: expected[i]![j], cachish: select(c.text, pointer) })));
    // Every outcome is exercised, many times.
    const counts = (answer: (c: (typeof compared)[number]) => boolean) => compared.filter(answer).length;
    expect(counts((c) => c.python === "invalid")).toBeGreaterThan(100);
    expect(counts((c) => c.python === "none")).toBeGreaterThan(500);
    expect(counts((c) => c.python !== "none" && c.python !== "invalid")).toBeGreaterThan(2000);
    expect(counts((c) => /~[01]/.test(c.pointer) && c.python !== "none" && c.python !== "invalid")).toBeGreaterThan(100);
    expect(compared.filter((c) => c.python !== c.cachish).slice(0, 5)).toEqual([]);
  });
});
