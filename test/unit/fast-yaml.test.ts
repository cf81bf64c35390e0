import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { readSubset } from "../../src/config/fast-yaml";
import { type Parsed, toJS, type YamlNode } from "../../src/config/nodes";
import { parseWithYaml } from "../../src/config/yaml-doc";

const ROOT = join(import.meta.dir, "../..");

/** A value as a tree that tells every type apart: 1 from "1", true from "true", null from "", a Map's keys. */
function typed(value: unknown): unknown {
  if (value instanceof Map) return { map: [...value].map(([k, v]) => [typed(k), typed(v)]) };
  if (value instanceof Set) return { set: [...value].map(typed) };
  if (value instanceof Date) return { date: value.getTime() };
  if (Array.isArray(value)) return { seq: value.map(typed) };
  if (value !== null && typeof value === "object") return { object: Object.entries(value).map(([k, v]) => [k, typed(v)]) };
  if (typeof value === "number") return { number: Object.is(value, -0) ? "-0" : String(value) };
  if (typeof value === "symbol") return { symbol: value.description };
  return { [typeof value]: value === undefined ? "undefined" : value };
}

/** What the walker can see of a node: its kind, range and flow style, and for a scalar its value. */
function shape(node: YamlNode | null): unknown {
  if (node === null) return { null: true };
  if (node.kind === "scalar") return { scalar: typed(node.value), range: node.range };
  if (node.kind === "seq") return { seq: node.items.map(shape), range: node.range, flow: node.flow };
  return { map: node.items.map((p) => [shape(p.key), shape(p.value)]), range: node.range, flow: node.flow };
}

function view(parsed: Parsed) {
  return { problems: parsed.problems, syntaxError: parsed.syntaxError, contents: shape(parsed.contents), js: typed(toJS(parsed.contents)), lines: parsed.lines.starts };
}

/** Either the fast path bails, or it agrees with the yaml package in everything above. Returns whether it took `source`. */
function differential(source: string): boolean {
  const fast = readSubset(source);
  try {
    if (!fast) return false;
    expect(view(fast)).toEqual({ ...view(parseWithYaml(source)), problems: [], syntaxError: false });
    return true;
  } catch (error) {
    throw new Error(`for ${JSON.stringify(source)}:\n${(error as Error).message}`);
  }
}

const taken = (source: string) => expect(differential(source)).toBe(true);
const bails = (source: string) => expect(readSubset(source)).toBeUndefined();

describe("real configurations", () => {
  const examples = readdirSync(join(ROOT, "examples")).filter((f) => f.endsWith(".yml"));

  test("every example file: taken, and the same as yaml's", () => {
    expect(examples).toContain("cachish.yml");
    expect(examples).toContain("cachish-1x.yml");
    // If one ever bails, say so here: the fast path is meant for exactly these files.
    for (const file of examples) taken(readFileSync(join(ROOT, "examples", file), "utf8"));
  });

  test("the bench's configuration shape is taken", () => {
    const item = (path: string, policy: string) => `  ${path}:\n    module: JsonHttp\n    parameters: {url: "http://127.0.0.1:40001/value"}\n${policy}`;
    taken(
      [
        "listen: 127.0.0.1:40000",
        "cache_dir: store",
        "items:",
        item("/hit", "    ttl: 1h\n    disable_auth: true\n"),
        item("/failing", "    ttl: 1s\n    timeout: 2s\n    stale_after: 0s\n    disable_auth: true\n"),
        "auth:",
        "  bench: {token: 0123456789abcdef, url: \"*\"}",
        "",
      ].join("\n"),
    );
  });

  test("configurations written in the tests and scripts (extracted from their string literals)", () => {
    const sources = extractConfigs();
    expect(sources.length).toBeGreaterThan(40);
    // Many are taken; the rest are broken on purpose, fragments, or not YAML at all.
    expect(sources.filter(differential).length).toBeGreaterThan(40);
  });

  test("representative configurations", () => {
    for (const source of REPRESENTATIVE) taken(source);
  });
});

describe("scalars", () => {
  test("tricky plain and quoted scalars, as values, keys, sequence items and in flow collections", () => {
    let count = 0;
    for (const s of SCALARS) {
      for (const source of [`k: ${s}\n`, `${s}: v\n`, `- ${s}\n`, `k: [${s}]\n`, `k: {${s}: ${s}}\n`, `- ${s}: ${s}\n  x: ${s}`, `a:\n  ${s}:\n  b: ${s} # c\n`]) {
        if (differential(source)) count++;
      }
    }
    expect(count).toBeGreaterThan(SCALARS.length * 3);
  });

  test("YAML 1.1 values: the plain ones read here, as yaml reads them", () => {
    const parsed = readSubset("a: yes\nd: ~\ne: 'on'\ny: n\ng: 12\nh: -0.5\ni: 127.0.0.1:2469\nj: 7d\nk: 1.2.3\n")!;
    expect(toJS(parsed.contents)).toEqual({ a: true, d: null, e: "on", true: false, g: 12, h: -0.5, i: "127.0.0.1:2469", j: "7d", k: "1.2.3" });
  });

  test("YAML 1.1 numbers and times in other forms are left to the yaml package", () => {
    const forms: [string, unknown][] = [["0755", 493], ["1:30", 90], ["0x1F", 31], ["1_000", 1000], ["1e3", 1000], [".inf", Infinity], ["007", 7], ["2001-12-14", new Date("2001-12-14")], ["12345678901234567", 12345678901234567]];
    for (const [written, value] of forms) {
      bails(`b: ${written}\n`);
      expect(toJS(parseWithYaml(`b: ${written}\n`).contents)).toEqual({ b: value });
    }
  });

  test("plain scalars made of digits, signs, dots, colons and letters: bail or agree (seeded)", () => {
    const random = mulberry32(Number(process.env.FAST_YAML_SEED ?? 2469));
    const alphabet = "0123456789000111_.:+-eExXbBoOtTzZafnliy~ ";
    let taken = 0;
    for (let run = 0; run < 3000; run++) {
      let text = "";
      const length = 1 + Math.floor(random() * 10);
      for (let k = 0; k < length; k++) text += alphabet[Math.floor(random() * alphabet.length)];
      text = text.trim();
      if (text === "" || text.includes(" #") || /^[-:]( |$)/.test(text) || text.endsWith(":")) continue;
      for (const source of [`k: ${text}\n`, `${text}: v\n`, `- ${text}\n`]) if (differential(source)) taken++;
    }
    expect(taken).toBeGreaterThan(1000);
  });

  test("values with `:`, `#`, `://`, trailing spaces and non-ASCII text", () => {
    for (const v of ["127.0.0.1:2469", "https://x/y?z=1#frag", "a#b", "a:b:c", "Zoë", "日本語", "😀 ok", "x  ", "a ' # b'", "[a, 'b # c']", "'x' ", "\"x\"  # c"]) {
      taken(`key: ${v}\n`);
    }
  });

  test("a `<<` merge key is left to yaml; a quoted one and a `<<` value are taken", () => {
    bails("<<: {a: 1}\n");
    bails("a: {<<: x}\n");
    taken("'<<': {a: 1}\n");
    taken("a: <<\n");
  });
});

describe("structures", () => {
  test.each(STRUCTURES)("%#", (source) => taken(source));
});

describe("outside the subset", () => {
  test.each(OUTSIDE)("%#: bails", (source) => {
    bails(source);
    differential(source);
  });
});

describe("generated documents", () => {
  // FAST_YAML_RUNS=100000 FAST_YAML_SEED=7 bun test test/unit/fast-yaml.test.ts searches further.
  test("either bail or agree exactly (seeded)", () => {
    const random = mulberry32(Number(process.env.FAST_YAML_SEED ?? 2469));
    let agreed = 0;
    let pristineAgreed = 0;
    const runs = Number(process.env.FAST_YAML_RUNS ?? 400);
    for (let run = 0; run < runs; run++) {
      const pristine = generate(random);
      const source = run % 3 === 2 ? mutate(pristine, random) : pristine;
      const ok = differential(source);
      if (ok) agreed++;
      if (ok && source === pristine) pristineAgreed++;
    }
    if (process.env.FAST_YAML_RUNS) console.log({ runs, agreed, pristineAgreed });
    // The generator writes mostly inside the subset: most documents must really be taken.
    expect(pristineAgreed).toBeGreaterThan(runs / 3);
    expect(agreed).toBeGreaterThan(runs / 2);
  });
});

// ---------------------------------------------------------------------------------------------

const SCALARS = [
  ..."yes no on off y n Y N Yes NO True FALSE TRUE ~ null Null NULL 0755 0o17 0x1F 0b101 1_000 1:30 1:30.5 -1 +1 .5 1e3 1.5e-3 -0 0 00 0.0 1. 3.14 +.5 .inf -.Inf .NaN 2001-12-14 2001-12-14t21:59:43.10-05:00 12:30:45 190:20:30 << = a:b a#b -a ---a a--- a!b a&b a*b a|b a>b a%b a@b a,b a[1] Zoë --- ... .".split(" "),
  "''", '""', '"yes"', "'on'", "'it''s'", '"a\'b"', "'a\"b'", '"a # b"', "'a: b'", "'1'", '"~"', "'<<'", '"null"', "' x '",
  "a b", "2001-12-14 21:59:43.10 -5", "1 000",
  // Never plain: each must bail (or, where it is fine YAML, agree).
  "-", "?", ":", "?x", ":x", "&a x", "*a", "!t x", "!!str x", "|", ">", "%x", "@x", "`x", "#x", '"a\\nb"', "'unclosed", '"unclosed', "[a, b,]", "{a, b}", "[a: b]", "{a:b}", "a\tb",
];

const REPRESENTATIVE = [
  // test/unit/config-validation.test.ts and test/support/config.ts
  "items:\n  /a:\n    module: JsonHttp\n    parameters:\n      url: http://127.0.0.1:9/a\nauth:\n  web:\n    token: web-token\n    url: /a\n",
  "items:\n  /a:\n    module: JsonHttp\n    parameters:\n      url: http://127.0.0.1:9/a\n      feild: [a]\nauth:\n  web:\n    token: web-token\n    url: /a\n",
  "items:\n  /a:\n    module: JsonHttp\n    parameters:\n      url: http://127.0.0.1:9/a\n  /b:\n    module: JsonHttp\n    parameters: {url: 'http://x/b'}\nauth:\n  Zx81Secr3tT0ken: /a\n",
  "items: [/a]\n",
  "items:\n  /a:\nauth:\n  web:\n    token: web-token\n    url: /a\n",
  "auth: {}\n",
  // test/e2e
  "items:\n  /a: {module: JsonHttp, parameters: {url: 'http://x/'}}\nauth:\n  web: {token: {env: WEB_TOKEN}, url: /a}\n",
  'shared_store: {url: "postgres://u:p@db:5432/c", key: "abc=", timeout: 1s}\nitems: {}\n',
  'listen: 127.0.0.1:0\ncache_dir: store\nitems:\n  /x:\n    module: JsonHttp\n    disable_auth: true\n    parameters: {url: "http://127.0.0.1:1234/x"}\n    ttl: 1s\n',
  "listen: 127.0.0.1:0\ncache_dir: store\nshared_store:\n  url: {env: FLEET_URL}\n  key: {env: FLEET_KEY}\n  timeout: 2s\nitems:\n  /a:\n    module: JsonHttp\n    disable_auth: true\n    parameters:\n      url: http://127.0.0.1:1/a\n",
  "items:\n  /a:\n    module: Nope\n",
  "log:\n  format: json\n  level: debug\nmetrics: false\nlisten: /run/cachish/cachish.sock\nitems:\n  /h:\n    module: Hawk\n    parameters:\n      secret_id: id\n      secret: {credential: hawk-key}\n      url: https://partner.example.com/settings?view=full\n      algorithm: sha256\n      field: [settings, 'a b']\n    max_body: 1MiB\n",
];

const STRUCTURES = [
  "a:\n  b:\n    c:\n      d: 1\n      e: two\n    f: [x]\n  g: {}\nh: end\n",
  "a:\n- x\n- y\nb:\n  - 1\n  -\n  - z\nc: 3\n",
  "- a: 1\n  b: 2\n- c: 3\n-   d: 4\n    e:\n    - 5\n- [x, y]\n- {k: v}\n-\n  nested: map\n-\n  - nested\n  - seq\n",
  "a:\nb:\n  c:\nd:",
  "a: 1\nb:\n",
  "a:\n  b:\nc: 1\n",
  "a: 1\na: 2\nb:\n  x: 1\n  x: 2\n",
  "a: 1",
  "a: b # c",
  "a:   ",
  "- ",
  "-",
  "# head\n\n# more\na: 1 # one\n# between\nb: 2\n  # indented after b\n\n    # deeper\nc:\n  # inside c\n  d: 1\n  # after d at d's indent\n# at zero\ne:\n  - x\n  # after x\n  - y\n    # deeper after y\n# tail\n",
  "a:\n  b:\n    c: 1\n    # c4\n  # c2\n  d: 2\n",
  "a:\n  b:\n    c: 1\n   # c3\n  d: 2\n",
  "a:\n  b:\n    c: 1\n    # c4\nd: 2\n",
  "a:\n  b:\n    c: 1\n      # c6\n\n  # c2\nd: 2\n",
  "a: # c\n\n  # d\nb:\n\n# x\n\nc:\n  # y\n\n\nd: [a , b ] \ne: {x: 1, y: 2 , z: [3] }",
  "- \n- # c\n-\n  # d\n\n- x",
  "a:\n  - x\n  -\n  # c\nb: 1\n",
  "a:\n  - x: 1\n    # c\n  - y\n",
  "top:\n  a:\n  - x\n  # c\n  b: 1\n",
  "top:\n  a:\n  - x\n  # c\nb: 1\n",
  "a: 1   \n  \n   \nb: 2\n",
  "a:\n  b: 1\n  \n  \n",
  "a:\n  b:\n  # c\n\n",
  "a:\n  b:\n    # deep\n  c: 1\n",
  "a:\n  b:\n    # deep\n\n  c: 1\n",
  "a:\n  b:\n    # deep\n\n\n  # mid\n  c: 1\n",
  "a:\n  b: # same line\n\n  c: 1\n",
  "- a:\n  b: 1\n- c:\n\n  # x\n  d:\n",
  // Comments above an empty `-` count in its range (the generator found this one).
  "- x\n# note\n-\n- []\n",
  "a:\n  -\n    - x\n    # note\n    -\n    - []\n  - k\n",
  "- a: 1\n # moved up to the sequence\n-\n- b: 2\n  # kept by the mapping\n-\n",
  "'quoted key': \"double\"\n\"k2\": 'single'\n",
  "a: {k: v, k2: [x], k3: {}, k4: []}\n",
  "a: []\nb: {}\nc: [ ]\nd: [[a], [b, [c]]]\n",
  "listen: 127.0.0.1:2469\nurl: https://x/y\nanchor: page#frag\n",
];

const OUTSIDE = [
  "a: &x 1\nb: *x\n",
  "a: !!str 1\n",
  "a: !custom x\n",
  "a: |\n  text\n",
  "a: >\n  text\n",
  "a:\tb\n",
  "a:\n\tb: 1\n",
  "a: 1\r\nb: 2\r\n",
  "a: [1,\n  2]\n",
  "a: {x: 1,\n  y: 2}\n",
  "---\na: 1\n",
  "a: 1\n...\n",
  "%YAML 1.1\n---\na: 1\n",
  "? key\n: value\n",
  "<<: {a: 1}\nb: 2\n",
  "a: first line\n  second line\n",
  "- first\n  second\n",
  "a: 'multi\n  line'\n",
  "\ufeffa: 1\n",
  "a: 1\u0007\n",
  "",
  "# only a comment\n",
  "plain scalar document\n",
  "  a: 1\n",
  "a: b: c\n",
  "a:\n  b: 1\n c: 2\n",
  "a:\n  - x\n - y\n",
  "a: 1\n- x\n",
  "- - a\n",
  "a: \"esc\\\"aped\"\n",
  "a : 1\n",
  "a: [x, y,]\n",
  "a: {x, y}\n",
  "a: [x: 1]\n",
  "a: {x:1}\n",
  "a: [x #c]\n",
  "a: [x] y\n",
  "[a]: 1\n",
  "a:\n  hello\n",
];

// --- extracting the configurations written in the repository's tests and scripts -----------

/** String literals, and runs of them (the lines of `yaml(...)` calls and `[...].join("\n")` arrays), that look like YAML. */
function extractConfigs(): string[] {
  const files = [
    ...readdirSync(join(ROOT, "test/unit")).filter((f) => f.endsWith(".test.ts") && f !== "fast-yaml.test.ts").map((f) => join("test/unit", f)),
    ...readdirSync(join(ROOT, "test/e2e")).filter((f) => f.endsWith(".test.ts")).map((f) => join("test/e2e", f)),
    "test/support/config.ts",
    "scripts/bench.ts",
  ];
  const literal = String.raw`(?:"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|\x60(?:[^\x60\\]|\\.)*\x60)`;
  const run = new RegExp(`${literal}(?:\\s*,\\s*${literal})*`, "g");
  const found = new Set<string>();
  for (const file of files) {
    const text = readFileSync(join(ROOT, file), "utf8");
    for (const match of text.matchAll(run)) {
      const parts = match[0].match(new RegExp(literal, "g"))!.map(unquote);
      const joined = parts.length > 1 ? `${parts.join("\n")}\n` : parts[0]!;
      if (/^[\w/ '"-]+:( |$)/m.test(joined) && (joined.includes("\n") || joined.includes(": "))) found.add(joined);
    }
  }
  return [...found];
}

function unquote(literal: string): string {
  let body = literal.slice(1, -1);
  // Template interpolations become a plain word; nested braces are replaced inside out.
  if (literal[0] === "`") while (/\$\{[^{}]*\}/.test(body)) body = body.replace(/\$\{[^{}]*\}/g, "v0");
  return body.replace(/\\(u\{?[0-9a-fA-F]+\}?|x[0-9a-fA-F]{2}|.)/g, (_, e: string) => {
    const simple: Record<string, string> = { n: "\n", t: "\t", r: "\r", "0": "\0" };
    if (e[0] === "u" || (e[0] === "x" && e.length === 3)) return String.fromCodePoint(Number.parseInt(e.replace(/[ux{}]/g, ""), 16));
    return simple[e] ?? e;
  });
}

// --- generated documents -----------------------------------------------------------------------

function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Structure is what the generator tests: YAML 1.1's other number and time forms, which the
// fast path leaves to yaml, are the scalar tests' (they would make most documents bail here).
const KEYS = ["a", "b", "key", "/path", "/a-b.c", "yes", "on", "n", "1", "12", "~", "null", "'q'", '"dq"', "'yes'", "a b", "a:b", "1.2.3", "y", "Zoë", "k#h", "-k"];
const VALUES = [
  "x", "1", "-1", "0.25", "7d", "0.5", "yes", "No", "~", "null", "true", "1.2.3", "250ms", "127.0.0.1:2469", "http://h/p?q#f", "a b c", "Zoë", "'s'", "'it''s'", '"d"', '""', "''", "'#'", '"a: b"',
  "[a, b]", "[]", "{}", "{k: v}", "{k: [1, 'two'], k2: {}}", "[ x , [y] ]", "<<", "x  ", "-x", "a#b",
];

function generate(random: () => number): string {
  const pick = <T>(list: T[]) => list[Math.floor(random() * list.length)]!;
  const out: string[] = [];
  // Blank and comment lines, at indents around `indent`: where yaml puts them decides ranges.
  const trivia = (indent: number) => {
    while (random() < 0.3) {
      if (random() < 0.4) out.push(" ".repeat(Math.floor(random() * 6)));
      else out.push(`${" ".repeat(Math.max(0, indent + Math.floor(random() * 7) - 3))}#${random() < 0.2 ? "" : " note"}`);
    }
  };
  const comment = () => pick(["", "", "", "", " # c", "   #c", "  ", " "]);
  const map = (indent: number, depth: number, first?: string) => {
    const count = 1 + Math.floor(random() * 4);
    for (let i = 0; i < count; i++) {
      const lead = i === 0 && first !== undefined ? first : " ".repeat(indent);
      value(`${lead}${pick(KEYS)}:`, indent, depth, true);
      trivia(indent);
    }
  };
  const seq = (indent: number, depth: number) => {
    const count = 1 + Math.floor(random() * 3);
    for (let i = 0; i < count; i++) {
      const r = random();
      const lead = " ".repeat(indent);
      if (r < 0.3 && depth < 4) map(indent + 2, depth + 1, `${lead}- `);
      else value(`${lead}-`, indent, depth, false);
      trivia(indent);
    }
  };
  // `head` is `key:` or `-`; what follows it on the line and below.
  const value = (head: string, indent: number, depth: number, inMap: boolean) => {
    const r = random();
    if (depth < 4 && r < 0.2) {
      out.push(head + comment());
      trivia(indent + 2);
      map(indent + 2 + Math.floor(random() * 2), depth + 1);
    } else if (depth < 4 && r < 0.35) {
      out.push(head + comment());
      trivia(indent);
      seq(inMap && random() < 0.5 ? indent : indent + 2, depth + 1);
    } else if (r < 0.45) out.push(head + comment());
    else out.push(`${head} ${pick(VALUES)}${comment()}`);
  };
  if (random() < 0.2) trivia(0);
  if (random() < 0.85) map(0, 0);
  else seq(0, 0);
  const text = out.join("\n");
  return random() < 0.7 ? `${text}\n` : text;
}

/** A small random edit: mostly near-misses of the subset, to test that the fast path bails or agrees. */
function mutate(source: string, random: () => number): string {
  if (random() < 0.4) {
    // A line indented a little more or less, repeated or dropped.
    const lines = source.split("\n");
    const at = Math.floor(random() * lines.length);
    const line = lines[at]!;
    const r = random();
    if (r < 0.3) lines[at] = ` ${line}`;
    else if (r < 0.5) lines[at] = `  ${line}`;
    else if (r < 0.8) lines[at] = line.replace(/^ {1,2}/, "");
    else if (r < 0.9) lines.splice(at, 0, line);
    else lines.splice(at, 1);
    return lines.join("\n");
  }
  const at = Math.floor(random() * (source.length + 1));
  const edits = [" ", "\n", "  ", "- ", ": ", "#", "'", '"', "[", "]", "{", "}", ",", "&a ", "*a", "!", "|", "\t", "\r", "?", "%", "---\n", "x"];
  if (random() < 0.3) return source.slice(0, at) + source.slice(at + 1);
  return source.slice(0, at) + edits[Math.floor(random() * edits.length)] + source.slice(at);
}
