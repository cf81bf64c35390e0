/**
 * An item's value from an upstream body (src/backends/value.ts): the failures it names, and the
 * worker thread that makes it without holding up the thread that answers clients.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { UpstreamFailure } from "../../src/backends/failure";
import { makeValue, makeValueOffThread, stopValueThread } from "../../src/backends/value";
import { ipRanges } from "../support/large";
import { askPython } from "../support/python";

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (value: Uint8Array) => new TextDecoder().decode(value);

async function failureOf(made: Promise<unknown> | (() => unknown)): Promise<[string, string]> {
  try {
    await (typeof made === "function" ? made() : made);
  } catch (error) {
    if (error instanceof UpstreamFailure) return [error.kind, error.message];
    throw error;
  }
  throw new Error("no failure");
}

describe("makeValue", () => {
  test("the value as 1.x wrote it, the named keys in their order", () => {
    expect(text(makeValue(bytes('{"b":1,"a":"\u00e9","c":[true,null]}'), undefined))).toBe('{"b": 1, "a": "\\u00e9", "c": [true, null]}');
    expect(text(makeValue(bytes('{"b":1,"a":2,"c":3}'), ["c", "a"]))).toBe('{"c": 3, "a": 2}');
  });

  test("what is not a value is a failure of a known kind, quoting nothing of the body", async () => {
    expect(await failureOf(() => makeValue(bytes('{"secret": '), undefined))).toEqual(["invalid-json", "the answer is not JSON: unexpected end of input at character 11"]);
    expect(await failureOf(() => makeValue(bytes('{"a": 1}'), ["a", "b"]))).toEqual(["missing-field", "the answer has no key named by the 2nd of `field`/`config_key`"]);
    expect(await failureOf(() => makeValue(bytes("[1]"), ["a"]))).toEqual(["missing-field", "the answer is not an object"]);
  });
});

describe("makeValue with select", () => {
  const vault = bytes('{"request_id": "r-1", "data": {"data": {"USER": "app", "DATABASE_URL": "postgres://x", "N": 1.50}, "metadata": {"version": 3}}, "list": [{"id": 7}, "s"]}');

  test("the part the pointer points at, then field picks keys from it, in that order", () => {
    expect(text(makeValue(vault, undefined, undefined, "/data/data"))).toBe('{"USER": "app", "DATABASE_URL": "postgres://x", "N": 1.50}');
    expect(text(makeValue(vault, ["N", "DATABASE_URL"], undefined, "/data/data"))).toBe('{"N": 1.50, "DATABASE_URL": "postgres://x"}');
    expect(text(makeValue(vault, ["request_id"], undefined, ""))).toBe('{"request_id": "r-1"}');
  });

  test("a pointer into an array, to an element and through it", () => {
    expect(text(makeValue(vault, undefined, undefined, "/list/1"))).toBe('"s"');
    expect(text(makeValue(vault, ["id"], undefined, "/list/0"))).toBe('{"id": 7}');
  });

  test("a pointer that finds nothing, or a part that is no object for field, is missing-field, quoting neither the pointer nor the answer", async () => {
    const missing = (step: string, what: string): [string, string] => ["missing-field", `nothing in the answer is where \`select\` points: its ${step} reference token ${what}`];
    expect(await failureOf(() => makeValue(vault, undefined, undefined, "/data/secret"))).toEqual(missing("2nd", "names no member of an object"));
    expect(await failureOf(() => makeValue(vault, undefined, undefined, "/list/2"))).toEqual(
      missing("2nd", "names no element of an array (an index is `0` or digits without a leading zero; `-` is past the end)"),
    );
    expect(await failureOf(() => makeValue(vault, undefined, undefined, "/request_id/0"))).toEqual(missing("2nd", "looks into a string, not an object or an array"));
    expect(await failureOf(() => makeValue(vault, ["DATABASE_URL"], undefined, "/list/1"))).toEqual(["missing-field", "the part of the answer `select` points at is not an object"]);
    expect(await failureOf(() => makeValue(vault, ["USER", "PASSWORD"], undefined, "/data/data"))).toEqual([
      "missing-field",
      "the part of the answer `select` points at has no key named by the 2nd of `field`/`config_key`",
    ]);
  });

  test("from the worker too", async () => {
    expect(text(await makeValueOffThread(vault.slice(), ["USER"], undefined, "/data/data"))).toBe('{"USER": "app"}');
    expect((await failureOf(makeValueOffThread(vault.slice(), undefined, undefined, "/nope")))[0]).toBe("missing-field");
  });
});

describe("makeValueOffThread", () => {
  test("the same value and the same failures, from the worker", async () => {
    expect(text(await makeValueOffThread(bytes('{"b":1,"a":2}'), ["a"]))).toBe('{"a": 2}');
    expect(await failureOf(makeValueOffThread(bytes("{"), undefined))).toEqual(["invalid-json", "the answer is not JSON: expected a key at character 1"]);
    expect(await failureOf(makeValueOffThread(bytes("[]"), ["a"]))).toEqual(["missing-field", "the answer is not an object"]);
  });

  test("a body that is a view of part of a buffer: only that part is the body", async () => {
    const whole = bytes('xx{"a": 1}yy');
    expect(text(await makeValueOffThread(whole.subarray(2, 10), undefined))).toBe('{"a": 1}');
    expect(text(whole)).toBe('xx{"a": 1}yy');
  });

  test("values made at once come back to their own callers", async () => {
    const made = await Promise.all(Array.from({ length: 20 }, (_, i) => makeValueOffThread(bytes(`{"n": ${i}}`), undefined)));
    expect(made.map(text)).toEqual(Array.from({ length: 20 }, (_, i) => `{"n": ${i}}`));
  });

  test("while a large value is made, this thread keeps turning; made here, it would not turn at all", async () => {
    const body = bytes(ipRanges(4_000_000));
    /** Turns of the event loop while `work` runs. */
    const turnsDuring = async (work: () => Promise<unknown>) => {
      let turns = 0;
      let running = true;
      const spin = () => {
        turns++;
        if (running) setImmediate(spin);
      };
      setImmediate(spin);
      await work();
      running = false;
      return turns;
    };
    expect(await turnsDuring(async () => makeValue(body.slice(), undefined))).toBe(0);
    // Tens of milliseconds of parsing elsewhere: many turns here (a wide margin: one would do).
    expect(await turnsDuring(() => makeValueOffThread(body.slice(), undefined))).toBeGreaterThan(5);
  });
});

describe("the worker thread ending", () => {
  test("values it was making fail as internal, and the next value starts a new thread", async () => {
    const making = makeValueOffThread(bytes(ipRanges(2_000_000)), undefined);
    stopValueThread();
    expect(await failureOf(making)).toEqual(["internal", "the value could not be made: the worker thread was stopped"]);
    expect(text(await makeValueOffThread(bytes('{"a": 1}'), undefined))).toBe('{"a": 1}');
  });
});

describe("a body in the charset its Content-Type names, as Python (1.x's requests) decodes it", () => {
  /** Python's reading: bytes.decode(charset, "replace"), then json.loads and json.dumps; null where it refuses. */
  async function python(cases: { hex: string; charset: string | undefined }[]): Promise<(string | null)[]> {
    const script = `
import json, sys
out = []
for case in json.load(sys.stdin):
    text = bytes.fromhex(case["hex"]).decode(case.get("charset") or "utf-8", "replace")
    try:
        out.append(json.dumps(json.loads(text)))
    except ValueError:
        out.append(None)
json.dump(out, sys.stdout)
`;
    return askPython(script, cases);
  }

  test("the cases 1.x answered: Latin-1 with its charset, invalid UTF-8 without one", () => {
    const latin1 = new Uint8Array([0x22, 0x63, 0x61, 0x66, 0xe9, 0x22]); // "café" in ISO-8859-1
    expect(text(makeValue(latin1, undefined, "iso-8859-1"))).toBe('"caf\\u00e9"');
    expect(text(makeValue(latin1, undefined, undefined))).toBe('"caf\\ufffd"');
    expect(text(makeValue(new Uint8Array([0x22, 0x80, 0x22]), undefined, "ISO-8859-1"))).toBe('"\\u0080"');
    expect(text(makeValue(new Uint8Array([0x22, 0xc3, 0xa9, 0x22]), undefined, "no-such-charset"))).toBe('"\\u00e9"');
  });

  test("3,000 generated strings of arbitrary bytes, in UTF-8 (named or not), Latin-1, ASCII and windows-1252 by their names, read as Python reads them", async () => {
    // Any byte but the quote, the backslash and control characters, inside a JSON string.
    const byte = fc.integer({ min: 0x20, max: 0xff }).filter((b) => b !== 0x22 && b !== 0x5c);
    const cases = fc
      .sample(fc.record({ bytes: fc.array(byte, { maxLength: 24 }), charset: fc.constantFrom(undefined, "utf-8", "UTF-8", "iso-8859-1", "latin1", "latin", "iso-ir-100", "csISOLatin1", "ISO_8859-1:1987", "us-ascii", "ASCII", "windows-1252", "cp1252") }), { numRuns: 3000, seed: 5 })
      .map(({ bytes, charset }) => ({ hex: Buffer.from([0x22, ...bytes, 0x22]).toString("hex"), charset }));
    const expected = await python(cases);
    const differing = cases
      .map((c, i) => {
        let ours: string | null;
        try {
          ours = text(makeValue(new Uint8Array(Buffer.from(c.hex, "hex")), undefined, c.charset));
        } catch {
          ours = null;
        }
        return { ...c, python: expected[i], cachish: ours };
      })
      .filter((c) => c.python !== c.cachish);
    expect(differing.slice(0, 5)).toEqual([]);
  });
});
