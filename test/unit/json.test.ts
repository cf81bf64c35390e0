import { describe, expect, test } from "bun:test";
import { heapStats } from "bun:jsc";
import fc from "fast-check";
import { encodeJson, type JsonValue, parseJson, pickKeys, stringifyJson } from "../../src/json";
import { ipRanges, longString } from "../support/large";
import { askPython } from "../support/python";

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
});

/**
 * JSON texts as an upstream may write them: every escape (the short ones, `\uXXXX` in either
 * case, surrogate pairs, lone surrogates), raw non-ASCII, numbers with fractions and exponents
 * and integers of any size, whitespace between tokens, nesting, and keys given twice.
 */
const hex4 = (code: number, upper: boolean) => code.toString(16).padStart(4, "0")[upper ? "toUpperCase" : "toLowerCase"]();
const stringPiece = fc.oneof(
  fc.constantFrom('\\"', "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t"),
  fc.tuple(fc.integer({ min: 0, max: 0xffff }), fc.boolean()).map(([code, upper]) => `\\u${hex4(code, upper)}`),
  fc.tuple(fc.integer({ min: 0x10000, max: 0x10ffff }), fc.boolean()).map(([code, upper]) => {
    const pair = String.fromCodePoint(code);
    return `\\u${hex4(pair.charCodeAt(0), upper)}\\u${hex4(pair.charCodeAt(1), upper)}`;
  }),
  fc.constantFrom("a", "Z", " ", "~", "\u007f", "é", "€", "😀", "\u2028", "中"),
  // Any characters a JSON string may hold raw: not a quote, a backslash or a control character.
  fc.string({ unit: "binary", maxLength: 4 }).map((s) => s.replace(/["\\\u0000-\u001f]/g, "")),
);
const jsonString = fc.array(stringPiece, { maxLength: 8 }).map((pieces) => `"${pieces.join("")}"`);
const digits = (min: number, max: number) => fc.string({ unit: fc.constantFrom(..."0123456789"), minLength: min, maxLength: max });
const jsonNumber = fc.oneof(
  fc.constantFrom("0", "-0", "1e5", "2E-3", "-0.0e+10", "1E400", "12345678901234567890", "-98765432109876543210", "NaN", "Infinity", "-Infinity"),
  fc
    .tuple(
      fc.boolean(),
      fc.oneof(fc.constant("0"), fc.tuple(fc.constantFrom(..."123456789"), digits(0, 25)).map(([a, b]) => a + b)),
      fc.option(digits(1, 6).map((d) => `.${d}`), { nil: "" }),
      fc.option(fc.tuple(fc.constantFrom("e", "E"), fc.constantFrom("", "+", "-"), digits(1, 3)).map((p) => p.join("")), { nil: "" }),
    )
    .map(([minus, int, frac, exp]) => `${minus ? "-" : ""}${int}${frac}${exp}`),
);
const ws = fc.string({ unit: fc.constantFrom(" ", "\t", "\n", "\r"), maxLength: 2 });
// A few keys that come back often, so that objects repeat keys.
const key = fc.oneof(fc.constantFrom('"a"', '"b"', '"10"', '"2"', '"\\u0061"'), jsonString);
const { json } = fc.letrec<{ json: string; value: string }>((tie) => ({
  json: fc.tuple(ws, tie("value"), ws).map((p) => p.join("")),
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    jsonString,
    jsonNumber,
    fc.constantFrom("true", "false", "null"),
    fc.array(tie("json"), { maxLength: 4 }).map((items) => `[${items.join(",")}]`),
    fc.array(fc.tuple(ws, key, ws, tie("json")), { maxLength: 4 }).map((entries) => `{${entries.map(([a, k, b, v]) => `${a}${k}${b}:${v}`).join(",")}}`),
  ),
}));
/** A valid text spoiled: a character removed, or one that JSON treats specially put anywhere, or cut short. */
const spoiled = fc
  .tuple(json, fc.nat(), fc.constantFrom("", "{", "}", "[", "]", ":", ",", '"', "\\", "\\x", "\\u12g4", "\\u12", "-", "+", ".", "e", "0", "01", "\u0001", "\n", "\u001f", "\f", "\u00a0", "\u000b", "NaN", "nan", "tru", "'"), fc.constantFrom("insert", "delete", "cut"))
  .map(([text, n, piece, how]) => {
    const at = n % (text.length + 1);
    if (how === "cut") return text.slice(0, at);
    if (how === "delete") return text.slice(0, at) + text.slice(at + 1);
    return text.slice(0, at) + piece + text.slice(at);
  });

/**
 * What Python makes of each text: `json.dumps(json.loads(text))`, or null when json.loads
 * refuses it. One python3 process for the whole batch. Numbers are handed over as the text
 * Python's scanner matched (parse_int, parse_float, parse_constant) and written back as that
 * text, since cachish keeps a number as the upstream wrote it where Python would re-write a
 * float (`1E5` as `100000.0`); what Python accepts as a number is still Python's to say.
 */
async function python(texts: string[]): Promise<(string | null)[]> {
  const script = String.raw`
import json, re, sys
mark = lambda text: "\x00NUM" + text + "\x00"
out = []
for text in json.load(sys.stdin):
    try:
        value = json.loads(text, parse_int=mark, parse_float=mark, parse_constant=mark)
    except ValueError:
        out.append(None)
        continue
    out.append(re.sub(r'"\\u0000NUM([^"\\]*)\\u0000"', r"\1", json.dumps(value)))
json.dump(out, sys.stdout)
`;
  return askPython(script, texts);
}

/** cachish's reading and writing of `text`, or null where it refuses it; what the daemon sends (encodeJson) must be the same text. */
const cachish = (text: string): string | null => {
  try {
    const value = parseJson(text);
    const written = stringifyJson(value);
    const sent = new TextDecoder().decode(encodeJson(value));
    return sent === written ? written : `encodeJson wrote ${sent} where stringifyJson wrote ${written}`;
  } catch {
    return null;
  }
};

describe("JSON against Python's json module", () => {
  test("generated valid texts: Python accepts them, and stringifyJson(parseJson(x)) is json.dumps(json.loads(x))", async () => {
    const texts = fc.sample(json, { numRuns: 2000, seed: 13 });
    const expected = await python(texts);
    expect(texts.filter((_, i) => expected[i] === null)).toEqual([]); // the generator writes JSON
    const differing = texts.map((text, i) => ({ text, python: expected[i], cachish: cachish(text) })).filter((c) => c.python !== c.cachish);
    expect(differing.slice(0, 5)).toEqual([]);
  });

  test("spoiled texts: cachish accepts exactly what json.loads accepts, and reads it the same", async () => {
    const texts = fc.sample(spoiled, { numRuns: 3000, seed: 31 });
    const expected = await python(texts);
    const refused = expected.filter((e) => e === null).length;
    // Both sides are exercised: many spoiled texts are refused, some are still JSON.
    expect(refused).toBeGreaterThan(texts.length / 3);
    expect(refused).toBeLessThan(texts.length);
    const differing = texts.map((text, i) => ({ text, python: expected[i], cachish: cachish(text) })).filter((c) => c.python !== c.cachish);
    expect(differing.slice(0, 5)).toEqual([]);
  });
});

describe("the cost of JSON grows with its size, not faster", () => {
  /** The best of seven runs of `work`, in ms, each begun on a collected heap. */
  const best = (work: () => unknown): number => {
    let fastest = Number.POSITIVE_INFINITY;
    for (let run = 0; run < 7; run++) {
      Bun.gc(true);
      const started = performance.now();
      work();
      fastest = Math.min(fastest, performance.now() - started);
    }
    return fastest;
  };
  /**
   * The time of `work` on an input 8 times larger over its time on the smaller one. Linear
   * work gives about 8, quadratic about 64; a bound of 24 leaves room for a noisy machine.
   */
  const growth = <T>(small: T, large: T, work: (input: T) => unknown): number => {
    work(small); // warm up the JIT
    work(large);
    return best(() => work(large)) / Math.max(best(() => work(small)), 0.05);
  };
  const KB = 1024;

  test("reading an ip-ranges.json-shaped body (many short strings)", () => {
    expect(growth(ipRanges(256 * KB), ipRanges(2048 * KB), parseJson)).toBeLessThan(24);
  });

  test("reading and writing one long string, plain and full of escapes", () => {
    const plain = (n: number) => longString(n);
    const escaped = (n: number) => `"${"line\\n\\u00e9\\ud83d\\ude00\\t\\\"".repeat(n / 32)}"`;
    expect(growth(plain(1024 * KB), plain(8192 * KB), parseJson)).toBeLessThan(24);
    expect(growth(escaped(256 * KB), escaped(2048 * KB), parseJson)).toBeLessThan(24);
    const value = (text: string): JsonValue => parseJson(text);
    expect(growth(value(plain(1024 * KB)), value(plain(8192 * KB)), encodeJson)).toBeLessThan(24);
    expect(growth(value(escaped(256 * KB)), value(escaped(2048 * KB)), encodeJson)).toBeLessThan(24);
  });

  test("writing an ip-ranges.json-shaped value", () => {
    expect(growth(parseJson(ipRanges(256 * KB)), parseJson(ipRanges(2048 * KB)), encodeJson)).toBeLessThan(24);
  });

  /**
   * Memory: the JavaScript heap that `work` leaves behind, its result held, in bytes per
   * character of its input. The result itself counts (a few bytes a character: `é` becomes the
   * six characters `\u00e9`); a string built a character or an escape at a time is a chain of
   * rope cells, tens of bytes each, until it is read.
   */
  const heapGrowth = (input: string, work: (input: string) => unknown): number => {
    Bun.gc(true);
    const before = heapStats().heapSize;
    const result = work(input);
    Bun.gc(true);
    const grown = heapStats().heapSize - before;
    expect(result).toBeDefined(); // held until here
    return grown / input.length;
  };

  test("reading or writing one long string does not build it a piece at a time", () => {
    const plain = longString(4096 * KB);
    const escaped = `"${"line\\n\\u00e9\\ud83d\\ude00\\t\\\"".repeat((4096 * KB) / 32)}"`;
    expect(heapGrowth(plain, (text) => stringifyJson(parseJson(text)))).toBeLessThan(10);
    expect(heapGrowth(escaped, (text) => stringifyJson(parseJson(text)))).toBeLessThan(10);
  });
});

