/**
 * Globs (src/glob.ts) against Python's own `fnmatch.fnmatchcase`, which 1.x matched `auth.*.url`
 * with, over generated patterns and paths.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { globToRegExp } from "../../src/glob";
import { askPython } from "../support/python";

const matches = (pattern: string, path: string) => globToRegExp(pattern).test(path);

describe("globs", () => {
  test.each([
    ["/database-url", "/database-url", true],
    ["/database-url", "/database-ur", false],
    ["/ip-*", "/ip-ranges", true],
    ["/ip-*", "/ip-", true],
    ["*", "/a/b/c", true],
    ["/a/*", "/a/b/c", true],
    ["/a?c", "/abc", true],
    ["/a?c", "/ac", false],
    ["/[abc]", "/b", true],
    ["/[!abc]", "/b", false],
    ["/[!abc]", "/d", true],
    ["/[a-c]x", "/bx", true],
    ["/[z-a]", "/m", false],
    ["/[", "/[", true],
    ["/[]]", "/]", true],
    ["/[!]]", "/]", false],
    ["/[!]]", "/x", true],
    ["/[!]", "/[!]", true],
    ["/[]-]", "/-", true],
    ["/[!x-a]", "/y", true],
    ["/[!--a]", "/1", false],
    ["/[a-a]", "/a", true],
    ["/a.c", "/abc", false],
    ["/*1*2", "/x1y2", true],
    ["/?", "/😀", true],
    ["/*", "/a\nb", true],
    ["/DB", "/db", false],
  ])("%p against %p is %p", (pattern, path, expected) => {
    expect(matches(pattern, path)).toBe(expected);
  });

  test("agree with Python's fnmatch.fnmatchcase on generated patterns and paths", async () => {
    // Patterns are built from pieces so that sets (ranges, `!`, `]`, hyphens next to ranges,
    // unclosed brackets) and a RegExp's own syntax come up often, not by the chance of random text.
    const text = (alphabet: string, maxLength: number) => fc.array(fc.constantFrom(...Array.from(alphabet)), { maxLength }).map((cs) => cs.join(""));
    const piece = fc.oneof(
      fc.constant("*"),
      fc.constant("?"),
      fc.tuple(text("ab-cz!]^\\é[😀", 6), fc.boolean()).map(([inside, closed]) => `[${inside}${closed ? "]" : ""}`),
      text("ab-/z!]^é.+($|{1\n😀", 2),
    );
    const pattern = fc.array(piece, { minLength: 1, maxLength: 5 }).map((pieces) => pieces.join(""));
    const path = text("abc-/z[]!^\\é.+(1\n😀", 6);
    const cases = fc.sample(fc.tuple(pattern, path), { numRuns: 4000, seed: 20261125 });
    const python = await askPython<(boolean | null)[]>(
      ["import fnmatch, json, sys", "out = []", "for pat, path in json.load(sys.stdin):", "    try: out.append(fnmatch.fnmatchcase(path, pat))", "    except Exception: out.append(None)", "json.dump(out, sys.stdout)"].join("\n"),
      cases,
    );
    const disagreements = cases.map(([pattern, path], n) => ({ pattern, path, python: python[n], ours: matches(pattern, path) })).filter((c) => c.python !== null && c.python !== c.ours);
    expect(disagreements.slice(0, 10)).toEqual([]);
    // Patterns Python itself cannot compile are few; they must not hide the comparison.
    expect(python.filter((p) => p === null).length).toBeLessThan(40);
  }, 30_000);

  test("a glob of many stars against a long path costs time linear in the path", () => {
    // A plain `.*` per star tries every way to place nine `a`s among forty before it fails (1.5 s).
    const started = performance.now();
    expect(matches(`/${"*a".repeat(9)}*b`, `/${"a".repeat(40)}`)).toBe(false);
    expect(matches(`/${"*a".repeat(9)}*b`, `/${"a".repeat(40)}b`)).toBe(true);
    expect(performance.now() - started).toBeLessThan(100);
  });
});
