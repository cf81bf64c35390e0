/**
 * `--exec 'CMD ARGS'` split as argv (src/client/argv.ts), asked of Python's `shlex.split`
 * (posix mode): the same words for every generated command line, and an error exactly where
 * shlex raises one. Nothing a shell would expand is expanded.
 */
import { expect, test } from "bun:test";
import fc from "fast-check";
import { splitArgv } from "../../src/client/argv";
import { askPython } from "../support/python";

test.each([
  ["systemctl try-restart myapp", ["systemctl", "try-restart", "myapp"]],
  ["  a \t b\n", ["a", "b"]],
  ["", []],
  ["echo '' x", ["echo", "", "x"]],
  [`printf '%s\\n' "a b" c\\ d`, ["printf", "%s\\n", "a b", "c d"]],
  [`echo "\\"q\\" \\\\ \\$HOME \\n"`, ["echo", '"q" \\ \\$HOME \\n']],
  ["echo $HOME *.txt ~ `id` $(id) ; | > #c", ["echo", "$HOME", "*.txt", "~", "`id`", "$(id)", ";", "|", ">", "#c"]],
  [`a'b c'"d e"f`, ["ab cd ef"]],
])("%p is %p", (text, argv) => {
  expect(splitArgv(text)).toEqual({ ok: true, argv });
});

test("an unclosed quote, or a backslash at the end, is an error saying which", () => {
  expect(splitArgv("echo 'a")).toEqual({ ok: false, why: "a single quote is not closed" });
  expect(splitArgv('echo "a\\"')).toEqual({ ok: false, why: "a double quote is not closed" });
  expect(splitArgv("echo a\\")).toEqual({ ok: false, why: "it ends with a backslash, which escapes nothing" });
});

test("agrees with Python's shlex.split on generated command lines", async () => {
  // Mostly the characters that mean something to a shell or to shlex, so that quotes inside
  // words, escapes in and out of quotes and empty words come up often.
  const line = fc.array(fc.constantFrom(..."'\"\\  \t\n\ra-$*~`;|#é😀"), { maxLength: 14 }).map((cs) => cs.join(""));
  const cases = fc.sample(line, { numRuns: 4000, seed: 20261201 });
  type Said = string[] | { error: string };
  const python = await askPython<Said[]>(
    [
      "import json, shlex, sys",
      "out = []",
      "for s in json.load(sys.stdin):",
      "    try: out.append(shlex.split(s))",
      "    except ValueError as e: out.append({'error': str(e)})",
      "json.dump(out, sys.stdout)",
    ].join("\n"),
    cases,
  );
  const asPython = (text: string): Said => {
    const split = splitArgv(text);
    if (split.ok) return split.argv;
    return { error: split.why.includes("backslash") ? "No escaped character" : "No closing quotation" };
  };
  const disagreements = cases.map((text, n) => ({ text, python: python[n], ours: asPython(text) })).filter((c) => !Bun.deepEquals(c.python, c.ours));
  expect(disagreements.slice(0, 10)).toEqual([]);
  // Both outcomes come up often enough to mean something.
  expect(python.filter((p) => !Array.isArray(p)).length).toBeGreaterThan(200);
  expect(python.filter((p) => Array.isArray(p) && p.length > 1).length).toBeGreaterThan(200);
}, 30_000);
