/**
 * Reading the configuration's YAML (src/config/yaml-doc.ts): syntax errors that quote nothing of
 * the file, and files too costly to read refused at once, with the reason (SPEC 3, Validation).
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse as yamlParse } from "yaml";
import { loadConfig } from "../../src/config/load";
import type { YamlNode } from "../../src/config/nodes";
import { MAX_BYTES, MAX_DEPTH, parseYaml } from "../../src/config/yaml-doc";
import { check } from "../support/config";
import { askPython, PYTHON_WITH_YAML } from "../support/python";
import { tempDir } from "../support/temp";

const SECRET = "s3cr3t-token-do-not-print";

/** A node as plain data, as the yaml package's `parse` gives it: mappings as objects, lists as arrays. */
function toJS(node: YamlNode | null, seen = new Map<YamlNode, unknown>()): unknown {
  if (node === null) return null;
  if (node.kind === "scalar") return node.value;
  if (seen.has(node)) return seen.get(node); // an alias of an enclosing node
  if (node.kind === "seq") {
    const list: unknown[] = [];
    seen.set(node, list);
    for (const item of node.items) list.push(toJS(item, seen));
    return list;
  }
  const record: Record<string, unknown> = {};
  seen.set(node, record);
  for (const { key, value } of node.items) record[String(toJS(key, seen))] = toJS(value, seen);
  return record;
}

/** How long `work` takes, in ms. */
function timed(work: () => void): number {
  const started = performance.now();
  work();
  return performance.now() - started;
}

describe("YAML syntax problems name a kind and a position, never the file's text", () => {
  test("a stray ] at the start of a line: every later scalar was quoted once", () => {
    const source = ["items:", "  /a:", "    module: Heroku", "    parameters:", `]     api_token: ${SECRET}`, "      app: my-app", "auth:", "  web:", `    token: ${SECRET}-2`, "    url: /a", ""].join("\n");
    const { problems } = check(source);
    expect(problems.join("\n")).not.toContain(SECRET);
    expect(problems.join("\n")).not.toContain("my-app");
    expect(problems[0]).toBe("5:1: error: YAML: unexpected character here (a stray bracket, brace, colon, dash or quote?)");
    expect(problems.at(-1)).toBe("error: the rest of the file is checked once its YAML syntax is fixed");
  });

  test("beyond ten, the parser's guesses are counted, not listed", () => {
    const source = `items:\n${Array.from({ length: 40 }, (_, i) => `] k${i}: v${i}`).join("\n")}\n`;
    const { problems } = check(source);
    expect(problems).toHaveLength(12);
    expect(problems[10]).toMatch(/^error: YAML: \d+ more problems after these, most of them the parser's guesses after the first; fix the first and check again$/);
  });

  test("the yaml package's messages that are fixed text are kept; one that quotes the file is not", () => {
    expect(check("a: b: c\n").problems[0]).toBe("1:4: error: YAML: Nested mappings are not allowed in compact mappings");
    expect(check(`a: "${SECRET}\n`).problems.join("\n")).not.toContain(SECRET);
  });
});

describe("a file too costly to read is refused at once, saying why", () => {
  test("larger than 256 KiB", () => {
    const source = `items:\n${"  # padding\n".repeat(MAX_BYTES / 10)}`;
    expect(check(source).problems).toEqual([`1:1: error: the file is larger than 256 KiB, far more than a configuration needs; it is not read`]);
  });

  test("an endless file is read no further than the limit", () => {
    const started = performance.now();
    const result = loadConfig("/dev/zero");
    expect(result.problems.map((p) => p.message)).toEqual(["the file is larger than 256 KiB, far more than a configuration needs; it is not read"]);
    expect(performance.now() - started).toBeLessThan(5000);
  });

  test("200,000 open [ (with a self-referencing alias): refused where the nesting passes 64, in well under a second", () => {
    // Observed with 5,000: 6-9 s and 750 MB in check-config, and a reload stalled the daemon as long; the yaml package alone takes seconds on 200,000.
    const source = `items: &a\n  /x: *a\nk: ${"[".repeat(200_000)}\n`;
    let problems: string[] = [];
    expect(timed(() => (problems = check(source).problems))).toBeLessThan(1000);
    expect(problems).toEqual([`3:${4 + MAX_DEPTH}: error: YAML: mappings and lists nested more than 64 deep; the file is not read further`]);
  });

  test("block mappings nested more than 64 deep", () => {
    const source = Array.from({ length: 100 }, (_, i) => `${"  ".repeat(i)}k${i}:`).join("\n");
    expect(check(`${source}\n`).problems).toEqual(["65:129: error: YAML: mappings and lists nested more than 64 deep; the file is not read further"]);
  });

  test("aliases that expand to more values than any configuration holds", () => {
    const lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"];
    for (let i = 1; i < 9; i++) lines.push(`a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(", ")}]`);
    let problems: string[] = [];
    expect(timed(() => (problems = check(`${lines.join("\n")}\nitems: *a8\n`).problems))).toBeLessThan(1000);
    expect(problems).toEqual([
      "1:1: error: the file is not read: its aliases expand to more than 100000 values, more than any configuration holds (write the repeated parts out, or use fewer `*` aliases)",
    ]);
  });

  test("more values than any configuration holds, without an alias: the reason given is the count", () => {
    expect(check(`k: [${"a,".repeat(100_001)}a]\n`).problems).toEqual(["1:1: error: the file is not read: it holds more than 100000 values, more than any configuration holds"]);
  });

  test("within the bounds, a deep file is read", () => {
    const source = `k: ${"[".repeat(MAX_DEPTH - 1)}${"]".repeat(MAX_DEPTH - 1)}\n`;
    expect(parseYaml(source).problems).toEqual([]);
  });
});

describe("aliases", () => {
  test("name the latest anchor of that name before them, as the yaml package reads them", () => {
    const sources = [
      "a: &x 1\nb: *x\nc: &x 2\nd: *x\n",
      "a: &x [1, 2]\nb: {c: *x, d: &x {e: 3}, f: *x}\n",
      "a: &m {k: v}\nb: [*m, *m, &m [z], *m]\n",
      "- &s one\n- &t two\n- *t\n- *s\n",
    ];
    for (const source of sources) expect(toJS(parseYaml(source).contents)).toEqual(yamlParse(source, { version: "1.1" }));
  });

  test("an alias of an enclosing node is that node", () => {
    const parsed = parseYaml("items: &a\n  /x: *a\n");
    const items = parsed.contents?.kind === "map" ? parsed.contents.items[0]!.value : undefined;
    expect(items?.kind === "map" && items.items[0]!.value).toBe(items!);
  });
});

test("a file refused for its size, by path: nothing beyond the limit is read", () => {
  const dir = tempDir();
  writeFileSync(join(dir, "big.yml"), `items:\n${"  # padding\n".repeat(MAX_BYTES)}`);
  expect(loadConfig(join(dir, "big.yml")).problems).toHaveLength(1);
});


/**
 * PyYAML's SafeLoader (what 1.x read its file with) asked for each scalar, through python3: its
 * type and value, or null when the document is not a one-key mapping of a scalar to it.
 */
async function pyyaml(scalars: string[]): Promise<([string, string | number] | null)[]> {
  const script = `
import datetime, json, math, sys, yaml
out = []
for text in json.load(sys.stdin):
    try:
        doc = yaml.safe_load("k: " + text + "\\n")
    except Exception:  # a YAMLError, or PyYAML's own ValueError on "0x_": 1.x could not start
        out.append(None)
        continue
    if not isinstance(doc, dict) or list(doc) != ["k"] or isinstance(doc["k"], (dict, list)):
        out.append(None)
        continue
    v = doc["k"]
    if v is None: out.append(["null", ""])
    elif isinstance(v, bool): out.append(["bool", str(v)])
    elif isinstance(v, int): out.append(["number", str(v)])
    elif isinstance(v, float): out.append(["number", repr(v)])
    elif isinstance(v, datetime.datetime):
        if v.tzinfo is None: v = v.replace(tzinfo=datetime.timezone.utc)
        out.append(["date", v.timestamp() * 1000])
    elif isinstance(v, datetime.date):
        out.append(["date", datetime.datetime(v.year, v.month, v.day, tzinfo=datetime.timezone.utc).timestamp() * 1000])
    else: out.append(["str", v])
json.dump(out, sys.stdout)
`;
  return askPython(script, scalars, PYTHON_WITH_YAML);
}

/** cachish's reading of the same scalar, in PyYAML's terms. */
function cachishScalar(text: string): [string, string | number] | "refused" {
  const parsed = parseYaml(`k: ${text}\n`);
  const node = parsed.contents?.kind === "map" ? parsed.contents.items[0]?.value : undefined;
  if (parsed.syntaxError || node?.kind !== "scalar" && node !== null) return "refused";
  const v = node === null ? null : node.value;
  if (v === null) return ["null", ""];
  if (typeof v === "boolean") return ["bool", v ? "True" : "False"];
  if (typeof v === "number") return ["number", v];
  if (v instanceof Date) return ["date", v.getTime()];
  return ["str", String(v)];
}

const samePlace = (python: [string, string | number], ours: [string, string | number]): boolean => {
  if (python[0] !== ours[0]) return false;
  if (python[0] === "number") {
    const p = Number(python[1] === "inf" ? Infinity : python[1] === "-inf" ? -Infinity : python[1]);
    return Object.is(p, ours[1]) || (Number.isNaN(p) && Number.isNaN(ours[1] as number)) || p === ours[1];
  }
  return python[1] === ours[1];
};

test("a `%YAML 1.2` directive changes nothing: PyYAML reads the file as YAML 1.1 all the same", () => {
  // PyYAML 6: {'k': True, 'j': 15}
  expect(toJS(parseYaml("%YAML 1.2\n---\nk: yes\nj: 017\n").contents)).toEqual({ k: true, j: 15 });
});

describe("scalars read as PyYAML's safe_load reads them", () => {
  const PIECES = ["0", "1", "7", "8", "9", "12", "_", ".", "e", "E", "+", "-", ":", "x", "b", "o", "0x", "0b", "1F", "inf", "Inf", "nan", "NaN", "y", "Y", "n", "N", "yes", "Yes", "NO", "on", "Off", "true", "FALSE", "null", "Null", "~", "T", "t", " ", "Z", "2001", "-12", "-01", "-1", "1:2", ":30", "=", "<<"];
  const scalar = fc.array(fc.constantFrom(...PIECES), { minLength: 1, maxLength: 5 }).map((parts) => parts.join("").trim()).filter((s) => s !== "" && !/[:]\s|\s#|:$/.test(s));

  test("3,000 generated scalars, and the forms 1.x files are known to hold", async () => {
    const known = ["y", "Y", "n", "N", "yes", "On", "OFF", "1e3", "12e45", "+.5", ".5", "-.5", "1.5e3", "1.5e+3", "089", "0755", "0x1F", "0b101", "1:30", "0:30", "1:30.5", "2001-12-14", "2001-1-1", "2001-12-14t21:59:43.10-05:00", "~", "null", "1_000", ".inf", "-.Inf", ".NaN", "3.", "1.0", "12345678901234567890"];
    const scalars = [...known, ...fc.sample(scalar, { numRuns: 3000, seed: 7 })];
    const python = await pyyaml(scalars);
    const compared = scalars.map((text, i) => ({ text, python: python[i], cachish: cachishScalar(text) })).filter((c) => c.python !== null);
    // Most generated scalars are ones PyYAML reads (the rest are syntax it refuses, left aside).
    expect(compared.length).toBeGreaterThan(scalars.length / 2);
    const differing = compared.filter((c) => c.cachish === "refused" || !samePlace(c.python!, c.cachish));
    expect(differing.slice(0, 10)).toEqual([]);
  });
});

describe("documents read as PyYAML's safe_load reads them", () => {
  /**
   * A canonical form both sides can write: mappings as ordered pairs (a key set twice keeps its
   * first place and its last value, as a Python dict does), numbers as numbers (NaN and the
   * infinities as words), dates as milliseconds.
   */
  const CANON = `
import datetime, json, math, sys, yaml
def canon(v):
    if isinstance(v, bool) or v is None or isinstance(v, str): return v
    if isinstance(v, (int, float)):
        f = float(v)
        return {"num": "nan" if math.isnan(f) else "inf" if f == math.inf else "-inf" if f == -math.inf else int(f) if f.is_integer() and abs(f) < 2**53 else f}
    if isinstance(v, datetime.datetime):
        if v.tzinfo is None: v = v.replace(tzinfo=datetime.timezone.utc)
        return {"date": round(v.timestamp() * 1000)}
    if isinstance(v, datetime.date):
        return {"date": round(datetime.datetime(v.year, v.month, v.day, tzinfo=datetime.timezone.utc).timestamp() * 1000)}
    if isinstance(v, list): return [canon(x) for x in v]
    if isinstance(v, dict): return {"map": [[json.dumps(canon(k), separators=(",", ":")), canon(x)] for k, x in v.items()]}
    return {"other": repr(v)}
out = []
for text in json.load(sys.stdin):
    try:
        out.append(canon(yaml.safe_load(text)))
    except Exception:
        out.append("refused")
json.dump(out, sys.stdout)
`;

  const canon = (node: YamlNode | null, seen = new Set<YamlNode>()): unknown => {
    if (node === null) return null;
    if (seen.has(node)) return "cycle";
    if (node.kind === "scalar") {
      const v = node.value;
      if (v === null || typeof v === "boolean" || typeof v === "string") return v;
      if (typeof v === "number") return { num: Number.isNaN(v) ? "nan" : v === Infinity ? "inf" : v === -Infinity ? "-inf" : v };
      if (v instanceof Date) return { date: v.getTime() };
      return { other: String(v) };
    }
    const inner = new Set(seen).add(node);
    if (node.kind === "seq") return node.items.map((item) => canon(item, inner));
    const pairs = new Map<string, unknown>();
    for (const { key, value } of node.items) pairs.set(JSON.stringify(canon(key, inner)), canon(value, inner));
    return { map: [...pairs] };
  };

  // Not both `on` and `1` as keys: to a Python dict, True and 1 are the same key (no configuration holds both).
  const KEYS = ["a", "b", "url", "y", "n", "on", "0x1F", "1e3", "2001-12-14", "~", "k k"];
  const SCALARS = ["x", "y", "N", "yes", "Off", "1e3", "+.5", "089", "0755", "1:30", "1_000", "3.", ".inf", "~", "null", "2001-12-14", "'quoted y'", '"1e3"', "a b c", "-1", "0b11"];
  const scalar = fc.constantFrom(...SCALARS);
  /** Block YAML for a value at `indent`: a scalar, a flow list of scalars, or a block mapping or list. */
  const { value } = fc.letrec<{ value: string[] }>((tie) => ({
    value: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      scalar.map((s) => [s]),
      fc.array(scalar, { maxLength: 4 }).map((items) => [`[${items.join(", ")}]`]),
      fc.array(fc.tuple(fc.constantFrom(...KEYS), tie("value")), { minLength: 1, maxLength: 4 }).map((pairs) => pairs.flatMap(([key, lines]) => (lines.length === 1 && !lines[0]!.startsWith("-") && !lines[0]!.includes(": ") ? [`${key}: ${lines[0]}`] : [`${key}:`, ...lines.map((l) => `  ${l}`)]))),
      fc.array(tie("value"), { minLength: 1, maxLength: 3 }).map((items) => items.flatMap((lines) => [`- ${lines[0]}`, ...lines.slice(1).map((l) => `  ${l}`)])),
    ),
  }));

  test("500 generated documents (nested mappings and lists, keys PyYAML reads as booleans and numbers, a key set twice)", async () => {
    const generated = fc.sample(value, { numRuns: 500, seed: 11 }).map((lines) => `${lines.join("\n")}\n`);
    // (Merge keys are expanded by the validator, not here: config-load.test checks them.)
    const known = ["a: 1\na: 2\nb: 3\n", "%YAML 1.2\n---\nk: yes\n", "- y\n- n\n- [on, off, 1e3]\n"];
    const documents = [...known, ...generated];
    const python = await askPython<unknown[]>(CANON, documents, PYTHON_WITH_YAML);
    const compared = documents.map((text, i) => ({ text, python: python[i], cachish: ((p) => (p.syntaxError ? "refused" : canon(p.contents)))(parseYaml(text)) }));
    // Most generated documents are ones PyYAML reads.
    expect(compared.filter((c) => c.python !== "refused").length).toBeGreaterThan(documents.length / 2);
    const differing = compared.filter((c) => c.python !== "refused" && !Bun.deepEquals(c.python, c.cachish));
    expect(differing.slice(0, 5).map((d) => ({ ...d, python: JSON.stringify(d.python), cachish: JSON.stringify(d.cachish) }))).toEqual([]);
  });
});
