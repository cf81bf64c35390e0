import { describe, expect, test } from "bun:test";
import { fnmatchcase } from "../../src/fnmatch";

describe("fnmatchcase", () => {
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
    ["/DB", "/db", false],
  ])("%p against %p is %p", (pattern, path, expected) => {
    expect(fnmatchcase(path, pattern)).toBe(expected);
  });

  test("agrees with Python's fnmatch.fnmatchcase on generated patterns and paths", async () => {
    // A small linear congruential generator keeps the cases the same from run to run.
    let seed = 20261125;
    const next = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const pick = (alphabet: string, max: number) =>
      Array.from({ length: next(max + 1) }, () => alphabet[next(alphabet.length)]).join("");
    // Patterns are built from pieces so that bracket expressions (ranges, `!`, `]`, hyphens
    // next to ranges, unclosed brackets) come up often, not by the chance of random bytes.
    const piece = () => {
      const kind = next(6);
      if (kind === 0) return "*";
      if (kind === 1) return "?";
      if (kind === 2) return `[${pick("ab-cz!]^\\é", 6)}${next(5) === 0 ? "" : "]"}`;
      return pick("ab-/z!]^é", 2);
    };
    const cases: [string, string][] = [];
    for (let n = 0; n < 6000; n++) {
      const pattern = Array.from({ length: 1 + next(4) }, piece).join("");
      cases.push([pattern, pick("abc-/z[]!^\\é", 6)]);
    }
    const python = Bun.spawn(["python3", "-c", [
      "import fnmatch, json, sys",
      "out = []",
      "for pat, path in json.load(sys.stdin):",
      "    try: out.append(fnmatch.fnmatchcase(path, pat))",
      "    except Exception: out.append(None)",
      "json.dump(out, sys.stdout)",
    ].join("\n")], { stdin: new Blob([JSON.stringify(cases)]), stdout: "pipe" });
    const expected = (await new Response(python.stdout).json()) as (boolean | null)[];
    expect(await python.exited).toBe(0);
    const disagreements = cases
      .map(([pattern, path], n) => ({ pattern, path, python: expected[n], ours: fnmatchcase(path, pattern) }))
      .filter((c) => c.python !== null && c.python !== c.ours);
    expect(disagreements).toEqual([]);
    // Patterns Python itself cannot compile are few; they must not hide the comparison.
    expect(expected.filter((e) => e === null).length).toBeLessThan(40);
  });
});
