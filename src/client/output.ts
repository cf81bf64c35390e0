/**
 * What `cachish get` prints: the JSON value, one field of it, or one line per top-level key in
 * a form that a reader gives back exactly: `sh` for `eval` and `.` in a POSIX shell, `env` for
 * systemd's `EnvironmentFile=` (SPEC 6).
 */
import { type JsonValue, parseJson, stringifyJson } from "../json";

export type Format = "json" | "sh" | "env";
export type Rendered = { ok: true; text: string } | { ok: false; why: string };

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Single quotes keep everything literal in sh, newlines and `$` included; a quote is closed, escaped and reopened. */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/**
 * Inside double quotes, systemd's environment-file reader (like a POSIX shell) drops a backslash
 * before `"`, `\`, `` ` `` and `$` only, keeps every other character as it is (a newline, a tab, a
 * carriage return, a backslash before anything else), and nothing ends the value but the closing
 * quote. Escaping those four is therefore exact.
 */
export function envQuote(value: string): string {
  return `"${value.replace(/["\\`$]/g, "\\$&")}"`;
}

/**
 * Linux refuses to start a program with one environment string longer than this (MAX_ARG_STRLEN,
 * terminating NUL included), and systemd silently drops an assignment of more than ARG_MAX from an
 * environment file: such a value could never reach the service as it is.
 */
const MAX_ENV_STRING = 128 * 1024;

/**
 * Unicode's noncharacters: U+FDD0-U+FDEF and the last two code points of every plane. systemd's
 * environment-file reader takes them for invalid UTF-8 and drops the whole file (with
 * `EnvironmentFile=-`, silently: the service would start without any of the values).
 */
const NONCHARACTER = new RegExp(`[\\u{FDD0}-\\u{FDEF}${Array.from({ length: 17 }, (_, plane) => `\\u{${(plane * 0x10000 + 0xfffe).toString(16)}}\\u{${(plane * 0x10000 + 0xffff).toString(16)}}`).join("")}]`, "u");

/** Why this key's text cannot be carried exactly in this format, or undefined when it can. */
function cannotCarry(key: string, text: string, format: "sh" | "env"): string | undefined {
  if (text.includes("\0")) return `the value of ${key} holds a NUL character, which no ${format === "sh" ? "shell variable" : "environment variable"} can hold`;
  // A lone surrogate (`"\ud800"` in the JSON) has no UTF-8 form: it would be written as U+FFFD.
  if (!text.isWellFormed()) return `the value of ${key} holds a lone UTF-16 surrogate (a \\uD800-\\uDFFF escape without its pair), which has no UTF-8 form`;
  if (format === "env") {
    if (NONCHARACTER.test(text)) return `the value of ${key} holds a Unicode noncharacter (U+FDD0-U+FDEF, U+FFFE, U+FFFF, ...), which systemd refuses in an environment file (it would ignore the whole file)`;
    const bytes = Buffer.byteLength(text);
    if (key.length + 1 + bytes + 1 > MAX_ENV_STRING) return `the value of ${key} is ${bytes} bytes: more than a program's environment can hold (${MAX_ENV_STRING} bytes for KEY=value on Linux); use --field and a file instead`;
  }
  return undefined;
}

/** A string as it is, anything else as JSON (written as the daemon writes it). */
function plain(value: JsonValue): string {
  return value.type === "string" ? value.value : stringifyJson(value);
}

export function render(body: string, path: string, options: { field?: string; format: Format }): Rendered {
  if (options.field === undefined && options.format === "json") return { ok: true, text: `${body}\n` };
  let value: JsonValue;
  try {
    value = parseJson(body);
  } catch {
    return { ok: false, why: `the value of ${path} is not JSON` };
  }
  if (value.type !== "object") return { ok: false, why: `the value of ${path} is not an object, so it has no ${options.field !== undefined ? `field ${JSON.stringify(options.field)}` : "keys to turn into variables"}` };
  if (options.field !== undefined) {
    const field = value.entries.get(options.field);
    if (!field) return { ok: false, why: `the value of ${path} has no field ${JSON.stringify(options.field)} (it has ${[...value.entries.keys()].map((k) => JSON.stringify(k)).join(", ") || "none"})` };
    return { ok: true, text: `${plain(field)}\n` };
  }
  // Past the cases above, the format is one of the two that write a line per key.
  const format = options.format as "sh" | "env";
  const lines: string[] = [];
  for (const [key, field] of value.entries) {
    if (!NAME.test(key)) return { ok: false, why: `the key ${JSON.stringify(key)} of ${path} is not a valid ${format === "sh" ? "shell" : "environment"} variable name` };
    const text = plain(field);
    const why = cannotCarry(key, text, format);
    if (why) return { ok: false, why };
    lines.push(format === "sh" ? `export ${key}=${shellQuote(text)}\n` : `${key}=${envQuote(text)}\n`);
  }
  return { ok: true, text: lines.join("") };
}
