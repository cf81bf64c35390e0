/**
 * Log lines (src/log.ts): logfmt and JSON exactly as the daemon writes them (SPEC 5.6), read
 * back by a JSON parser and by the logfmt reader of the e2e tests over generated fields, and
 * the logger's levels. The queue behind the daemon's logger is tested in stdout.test.ts.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { createLogger, type Fields, formatLine } from "../../src/log";
import { parseLogfmt } from "../support/daemon";

const TIME = new Date("2026-01-02T03:04:05.678Z");

describe("formatLine", () => {
  test("logfmt: plain values bare; empty, spaced, quoted or non-ASCII ones quoted as JSON strings; undefined left out", () => {
    const fields: Fields = { method: "GET", path: "/a b", status: 200, empty: "", equals: "a=b", quote: 'say "hi"', backslash: "a\\b", accent: "Zoë", newline: "a\nb", ok: true, none: null, gone: undefined, ms: 0.5 };
    expect(formatLine("logfmt", "info", "request", fields, TIME)).toBe(
      'time=2026-01-02T03:04:05.678Z level=info msg=request method=GET path="/a b" status=200 empty="" equals="a=b" quote="say \\"hi\\"" backslash="a\\\\b" accent="Zoë" newline="a\\nb" ok=true none=null ms=0.5\n',
    );
    expect(formatLine("logfmt", "warn", "log lines dropped", { lines: 3 }, TIME)).toBe('time=2026-01-02T03:04:05.678Z level=warn msg="log lines dropped" lines=3\n');
  });

  test("JSON: time, level and message first, then the fields in order; numbers and booleans as such; NaN and Infinity as null", () => {
    const line = formatLine("json", "error", "boom", { path: "/a", status: 503, ok: false, none: null, gone: undefined, nan: Number.NaN, inf: Number.POSITIVE_INFINITY }, TIME);
    expect(line).toBe('{"time":"2026-01-02T03:04:05.678Z","level":"error","msg":"boom","path":"/a","status":503,"ok":false,"none":null,"nan":null,"inf":null}\n');
  });

  /** Field names as callers write them; values of every kind a field may hold. */
  const fieldsArb = fc.dictionary(fc.stringMatching(/^[a-z][a-z_]{0,11}$/), fc.oneof(fc.string(), fc.string({ unit: "binary" }), fc.double(), fc.integer(), fc.boolean(), fc.constant(null)), { maxKeys: 8 });

  test("JSON lines read back as the fields, in their order (against JSON.parse, generated fields)", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), fieldsArb, (msg, fields) => {
        const line = formatLine("json", "info", msg, fields, TIME);
        expect(line.endsWith("\n") && !line.slice(0, -1).includes("\n")).toBe(true);
        const expected = Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, typeof v === "number" && !Number.isFinite(v) ? null : Object.is(v, -0) ? 0 : v]));
        expect(JSON.parse(line)).toEqual({ time: TIME.toISOString(), level: "info", msg, ...expected });
        expect(Object.keys(JSON.parse(line))).toEqual(["time", "level", "msg", ...Object.keys(fields).filter((k) => !["time", "level", "msg"].includes(k))]);
      }),
      { numRuns: 500 },
    );
  });

  test("logfmt lines are one line each and read back as the fields' text (generated fields)", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), fieldsArb, (msg, fields) => {
        const line = formatLine("logfmt", "info", msg, fields, TIME);
        expect(line.endsWith("\n") && !line.slice(0, -1).includes("\n")).toBe(true);
        const read = parseLogfmt(line.slice(0, -1));
        expect(read).toEqual({ time: TIME.toISOString(), level: "info", msg, ...Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, String(v)])) });
      }),
      { numRuns: 500 },
    );
  });
});

describe("createLogger", () => {
  const logger = (level: "debug" | "info" | "warn" | "error" = "info") => {
    const lines: string[] = [];
    const log = createLogger({ format: "logfmt", level }, (line) => lines.push(line));
    return { log, lines, msgs: () => lines.map((l) => parseLogfmt(l).msg) };
  };

  test("each line is handed on by itself, at once, with its newline", () => {
    const { log, lines } = logger();
    log.info("one", { a: 1 });
    log.error("two");
    expect(lines.length).toBe(2);
    expect(lines[0]).toMatch(/^time=\S+ level=info msg=one a=1\n$/);
    expect(lines[1]).toMatch(/^time=\S+ level=error msg=two\n$/);
    expect(log.dropped()).toBe(0);
  });

  test("lines below the level are not written", () => {
    const { log, msgs } = logger("warn");
    log.debug("d");
    log.info("i");
    log.warn("w");
    log.error("e");
    expect(msgs()).toEqual(["w", "e"]);
  });

  test("configure changes format and level in place (a reload)", () => {
    const { log, lines } = logger("info");
    log.debug("hidden");
    log.configure({ format: "json", level: "debug" });
    log.debug("shown", { n: 1 });
    expect(lines.length).toBe(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: "debug", msg: "shown", n: 1 });
  });
});
