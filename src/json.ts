/**
 * JSON as 1.x answered it. 1.x parsed the upstream's body with Python's `json` module and sent
 * `json.dumps(value)`: `", "` and `": "` separators, keys in the upstream's order (numeric-looking
 * keys too, which a JavaScript object would reorder), non-ASCII characters as `\uXXXX`. Unlike
 * 1.x, a number is kept exactly as the upstream wrote it: `12345678901234567890` is never
 * rounded through a 64-bit float. JSON.parse can do neither, hence this small parser.
 */

export type JsonValue =
  | { type: "object"; entries: Map<string, JsonValue> }
  | { type: "array"; items: JsonValue[] }
  | { type: "string"; value: string }
  /** The number's text as the upstream wrote it (also Python's `NaN`, `Infinity`, `-Infinity`). */
  | { type: "number"; text: string }
  | { type: "literal"; text: "true" | "false" | "null" };

export class JsonSyntaxError extends Error {
  constructor(message: string, readonly offset: number) {
    super(`${message} at character ${offset}`);
    this.name = "JsonSyntaxError";
  }
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const WHITESPACE = /[ \t\n\r]*/y;
const ESCAPES: Record<string, string> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };

/**
 * Parses JSON text as Python's `json.loads` does: any value at the top level, NaN and
 * Infinity accepted, and a key given twice keeping its first place with its last value.
 */
export function parseJson(text: string): JsonValue {
  let at = 0;
  const fail = (message: string): never => {
    throw new JsonSyntaxError(message, at);
  };
  const skip = () => {
    WHITESPACE.lastIndex = at;
    WHITESPACE.exec(text);
    at = WHITESPACE.lastIndex;
  };
  const literal = (word: string): boolean => {
    if (!text.startsWith(word, at)) return false;
    at += word.length;
    return true;
  };

  const string = (): string => {
    at++; // the opening quote
    let out = "";
    for (;;) {
      const quote = text.indexOf('"', at);
      const backslash = text.indexOf("\\", at);
      if (quote < 0) fail("unterminated string");
      const end = backslash >= 0 && backslash < quote ? backslash : quote;
      const run = text.slice(at, end);
      if (/[\u0000-\u001f]/.test(run)) fail("control character in string");
      out += run;
      at = end;
      if (end === quote) {
        at++;
        return out;
      }
      const escape = text[at + 1];
      if (escape === "u") {
        const hex = text.slice(at + 2, at + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail("invalid \\u escape");
        out += String.fromCharCode(Number.parseInt(hex, 16));
        at += 6;
      } else if (escape !== undefined && escape in ESCAPES) {
        out += ESCAPES[escape];
        at += 2;
      } else {
        fail("invalid escape");
      }
    }
  };

  const value = (depth: number): JsonValue => {
    if (depth > 512) fail("nested too deeply");
    skip();
    const c = text[at];
    if (c === "{") {
      at++;
      const entries = new Map<string, JsonValue>();
      skip();
      if (text[at] === "}") {
        at++;
        return { type: "object", entries };
      }
      for (;;) {
        skip();
        if (text[at] !== '"') fail("expected a key");
        const key = string();
        skip();
        if (text[at++] !== ":") fail("expected ':'");
        entries.set(key, value(depth + 1));
        skip();
        const next = text[at++];
        if (next === "}") return { type: "object", entries };
        if (next !== ",") fail("expected ',' or '}'");
      }
    }
    if (c === "[") {
      at++;
      const items: JsonValue[] = [];
      skip();
      if (text[at] === "]") {
        at++;
        return { type: "array", items };
      }
      for (;;) {
        items.push(value(depth + 1));
        skip();
        const next = text[at++];
        if (next === "]") return { type: "array", items };
        if (next !== ",") fail("expected ',' or ']'");
      }
    }
    if (c === '"') return { type: "string", value: string() };
    for (const word of ["true", "false", "null"] as const) if (literal(word)) return { type: "literal", text: word };
    for (const word of ["NaN", "Infinity", "-Infinity"]) if (literal(word)) return { type: "number", text: word };
    NUMBER.lastIndex = at;
    const number = NUMBER.exec(text);
    if (number) {
      at = NUMBER.lastIndex;
      return { type: "number", text: number[0] };
    }
    return fail(c === undefined ? "unexpected end of input" : "unexpected character");
  };

  // A UTF-8 byte order mark is not JSON, but decoders of JSON bodies drop it.
  if (text.charCodeAt(0) === 0xfeff) at = 1;
  const result = value(0);
  skip();
  if (at < text.length) fail("extra data after the value");
  return result;
}

/** A string as Python's `json.dumps` writes it with `ensure_ascii=True`. */
function quote(value: string): string {
  let out = '"';
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    const c = value[i]!;
    if (c === '"') out += '\\"';
    else if (c === "\\") out += "\\\\";
    else if (c === "\n") out += "\\n";
    else if (c === "\r") out += "\\r";
    else if (c === "\t") out += "\\t";
    else if (c === "\b") out += "\\b";
    else if (c === "\f") out += "\\f";
    else if (code < 0x20 || code > 0x7e) out += `\\u${code.toString(16).padStart(4, "0")}`;
    else out += c;
  }
  return `${out}"`;
}

/** The value as 1.x's `json.dumps(value)` wrote it, numbers as the upstream wrote them. */
export function stringifyJson(value: JsonValue): string {
  switch (value.type) {
    case "object":
      return `{${[...value.entries].map(([key, v]) => `${quote(key)}: ${stringifyJson(v)}`).join(", ")}}`;
    case "array":
      return `[${value.items.map(stringifyJson).join(", ")}]`;
    case "string":
      return quote(value.value);
    case "number":
    case "literal":
      return value.text;
  }
}

/** An object of exactly `keys`, in that order; the keys missing from `value`, if any. */
export function pickKeys(value: JsonValue, keys: readonly string[]): { ok: true; value: JsonValue } | { ok: false; missing: string[] } {
  if (value.type !== "object") return { ok: false, missing: [...keys] };
  const missing = keys.filter((key) => !value.entries.has(key));
  if (missing.length) return { ok: false, missing };
  return { ok: true, value: { type: "object", entries: new Map(keys.map((key) => [key, value.entries.get(key)!])) } };
}
