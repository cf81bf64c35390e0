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
/** Characters that stand for themselves in a string: not a quote, a backslash or a control character. */
const PLAIN = /[^"\\\u0000-\u001f]*/y;
/** One escape, as JSON (and Python) allow them. */
const ESCAPE = /\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})/y;

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

  /**
   * A string, `at` on its opening quote. Runs of plain characters are skipped whole (PLAIN) and
   * each escape is checked where it stands (ESCAPE), so every character is looked at once. A
   * string with escapes, now known to be a JSON string literal, is decoded by JSON.parse, which
   * builds it flat (a piece at a time, a long string of escapes would cost many times its size)
   * and decodes them as Python does: `\ud83d\ude00` is two escapes and two UTF-16 units, a lone
   * `\ud800` one unit.
   */
  const string = (): string => {
    const start = ++at;
    let escaped = false;
    for (;;) {
      PLAIN.lastIndex = at;
      PLAIN.test(text);
      at = PLAIN.lastIndex;
      const c = text[at];
      if (c === '"') break;
      if (c === undefined) fail("unterminated string");
      if (c !== "\\") fail("control character in string");
      ESCAPE.lastIndex = at;
      if (!ESCAPE.test(text)) fail(text[at + 1] === "u" ? "invalid \\u escape" : "invalid escape");
      at = ESCAPE.lastIndex;
      escaped = true;
    }
    const literal = text.slice(start - 1, ++at);
    return escaped ? (JSON.parse(literal) as string) : literal.slice(1, -1);
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

/** What Python's `json.dumps` escapes with `ensure_ascii=True`: `"`, `\`, and all but printable ASCII. */
const NOT_PLAIN_ASCII = /["\\\u0000-\u001f\u007f-\uffff]/g;
const SHORT_ESCAPES: Record<string, string> = { '"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f" };

/**
 * The inside of a string as Python's `json.dumps` writes it with `ensure_ascii=True`: the short
 * escapes where JSON has one, else `\u` and four lowercase hex digits (a character beyond U+FFFF
 * is already two UTF-16 units, so it becomes a surrogate pair, as in Python). A string with
 * nothing to escape comes back as itself, not a copy.
 */
function escape(value: string): string {
  return value.replace(NOT_PLAIN_ASCII, (c) => SHORT_ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** The value as 1.x's `json.dumps(value)` wrote it, numbers as the upstream wrote them. */
export function stringifyJson(value: JsonValue): string {
  return pieces(value).join("");
}

/**
 * The same, as the bytes the daemon answers with. The text is all ASCII (`ensure_ascii`), one
 * byte a character, so its pieces are encoded straight into one buffer of the right size: no
 * joined copy of a value of megabytes is ever made.
 */
export function encodeJson(value: JsonValue): Uint8Array {
  const parts = pieces(value);
  const bytes = new Uint8Array(parts.reduce((length, part) => length + part.length, 0));
  let at = 0;
  for (const part of parts) at += encoder.encodeInto(part, bytes.subarray(at)).written;
  return bytes;
}

const encoder = new TextEncoder();

/** The text of a value as a list of pieces, in order: gathered in one list, never joined level by level. */
function pieces(value: JsonValue): string[] {
  const out: string[] = [];
  const write = (v: JsonValue): void => {
    switch (v.type) {
      case "object": {
        let separator = "{";
        for (const [key, item] of v.entries) {
          out.push(separator, '"', escape(key), '": ');
          separator = ", ";
          write(item);
        }
        out.push(separator === "{" ? "{}" : "}");
        return;
      }
      case "array": {
        let separator = "[";
        for (const item of v.items) {
          out.push(separator);
          separator = ", ";
          write(item);
        }
        out.push(separator === "[" ? "[]" : "]");
        return;
      }
      case "string":
        // The quotes are pieces of their own: a string of megabytes is never copied to add them.
        out.push('"', escape(v.value), '"');
        return;
      case "number":
      case "literal":
        out.push(v.text);
    }
  };
  write(value);
  return out;
}

/** Whether bytes are UTF-8 JSON: for a value that comes from outside the daemon's own fetch (the fleet, an older store). */
export function isJson(bytes: Uint8Array): boolean {
  try {
    parseJson(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    return true;
  } catch {
    return false;
  }
}

/** An object of exactly `keys`, in that order; the keys missing from `value`, if any. */
export function pickKeys(value: JsonValue, keys: readonly string[]): { ok: true; value: JsonValue } | { ok: false; missing: string[] } {
  if (value.type !== "object") return { ok: false, missing: [...keys] };
  const missing = keys.filter((key) => !value.entries.has(key));
  if (missing.length) return { ok: false, missing };
  return { ok: true, value: { type: "object", entries: new Map(keys.map((key) => [key, value.entries.get(key)!])) } };
}
