import { describe, expect, test } from "bun:test";
import { parseJson, pickKeys, stringifyJson } from "../../src/json";

const roundTrip = (text: string) => stringifyJson(parseJson(text));

describe("JSON as 1.x wrote it", () => {
  test("the SPEC's example: keys in field order, big integers and 1.0 kept, non-ASCII escaped", () => {
    const picked = pickKeys(parseJson('{"name":"Zoë","id":12345678901234567890,"f":1.0}'), ["id", "f", "name"]);
    expect(picked.ok && stringifyJson(picked.value)).toBe('{"id": 12345678901234567890, "f": 1.0, "name": "Zo\\u00eb"}');
  });

  test("keys keep the upstream's order, numeric-looking ones too; a repeated key keeps its place and takes the last value", () => {
    expect(roundTrip('{"b":1,"10":2,"a":3,"2":4}')).toBe('{"b": 1, "10": 2, "a": 3, "2": 4}');
    expect(roundTrip('{"a":1,"b":2,"a":3}')).toBe('{"a": 3, "b": 2}');
  });

  test("Python's NaN and Infinity, and a byte order mark, are accepted", () => {
    expect(roundTrip("[NaN, Infinity, -Infinity]")).toBe("[NaN, Infinity, -Infinity]");
    expect(roundTrip('\uFEFF{"a": 1}')).toBe('{"a": 1}');
  });

  test("what is not JSON is refused", () => {
    for (const bad of ["", "<html>", "{", '{"a":}', "[1,]", "01", '"\u0001"', '"\\x"', "{} {}", "nul", "'a'", "{a:1}"]) {
      expect(() => parseJson(bad)).toThrow();
    }
  });

  test("missing keys are named; a value that is not an object has none", () => {
    expect(pickKeys(parseJson('{"a":1}'), ["a", "b", "c"])).toEqual({ ok: false, missing: ["b", "c"] });
    expect(pickKeys(parseJson("[1]"), ["a"])).toEqual({ ok: false, missing: ["a"] });
  });

  test("agrees with Python's json.dumps(json.loads(text)) on generated documents", async () => {
    let seed = 7;
    const next = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const chars = ['a', 'Z', ' ', '"', "\\", "\n", "\t", "\u0001", "\u007f", "é", "€", "😀", "/", "\u2028", "\ud800"];
    const str = () => Array.from({ length: next(6) }, () => chars[next(chars.length)]).join("");
    // Numbers Python writes back as they came: integers of any size, plain decimals.
    const numbers = ["0", "-1", "42", "12345678901234567890", "-98765432109876543210", "1.5", "-0.25", "3.14159"];
    const value = (depth: number): string => {
      const kind = next(depth > 2 ? 4 : 6);
      if (kind === 0) return JSON.stringify(str());
      if (kind === 1) return numbers[next(numbers.length)]!;
      if (kind === 2) return ["true", "false", "null"][next(3)]!;
      if (kind === 3) return JSON.stringify(str());
      if (kind === 4) return `[${Array.from({ length: next(4) }, () => value(depth + 1)).join(",")}]`;
      return `{${Array.from({ length: next(4) }, () => `${JSON.stringify(str())}:${value(depth + 1)}`).join(", ")}}`;
    };
    const docs = Array.from({ length: 500 }, () => value(0));
    const python = Bun.spawn(["python3", "-c", "import json, sys\nfor line in sys.stdin.read().split('\\n\\x00\\n'):\n    print(json.dumps(json.loads(line)))"], {
      stdin: new Blob([docs.join("\n\u0000\n")]),
      stdout: "pipe",
    });
    const expected = (await new Response(python.stdout).text()).trimEnd().split("\n");
    expect(await python.exited).toBe(0);
    expect(docs.map(roundTrip)).toEqual(expected);
  });
});
