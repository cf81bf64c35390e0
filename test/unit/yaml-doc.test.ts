/**
 * Reading the configuration's YAML (src/config/yaml-doc.ts): syntax errors that quote nothing of
 * the file, and files too costly to read refused at once, with the reason (SPEC 3, Validation).
 */
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse as yamlParse } from "yaml";
import { loadConfig } from "../../src/config/load";
import { toJS } from "../../src/config/nodes";
import { MAX_BYTES, MAX_DEPTH, parseWithYaml } from "../../src/config/yaml-doc";
import { check } from "../support/config";
import { tempDir } from "../support/temp";

const SECRET = "s3cr3t-token-do-not-print";

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
    expect(parseWithYaml(source).problems).toEqual([]);
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
    for (const source of sources) expect(toJS(parseWithYaml(source).contents)).toEqual(yamlParse(source, { version: "1.1" }));
  });

  test("an alias of an enclosing node is that node", () => {
    const parsed = parseWithYaml("items: &a\n  /x: *a\n");
    const items = parsed.contents?.kind === "map" ? parsed.contents.items[0]!.value : undefined;
    expect(items?.kind === "map" && items.items[0]!.value).toBe(items!);
  });
});

test("a file refused for its size, by path: nothing beyond the limit is read", () => {
  const dir = tempDir();
  writeFileSync(join(dir, "big.yml"), `items:\n${"  # padding\n".repeat(MAX_BYTES)}`);
  expect(loadConfig(join(dir, "big.yml")).problems).toHaveLength(1);
});
