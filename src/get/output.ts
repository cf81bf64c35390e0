/**
 * What `cachish get` prints: the JSON value, one field of it, or `KEY='value'` lines that a
 * POSIX shell reads back exactly.
 */
import { type JsonValue, parseJson, stringifyJson } from "../json";

export type Rendered = { ok: true; text: string } | { ok: false; why: string };

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Single quotes keep everything literal in sh, newlines and `$` included; a quote is closed, escaped and reopened. */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** A string as it is, anything else as JSON (written as the daemon writes it). */
function plain(value: JsonValue): string {
  return value.type === "string" ? value.value : stringifyJson(value);
}

export function render(body: string, path: string, options: { field?: string; format: "json" | "env" }): Rendered {
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
  const lines: string[] = [];
  for (const [key, field] of value.entries) {
    if (!NAME.test(key)) return { ok: false, why: `the key ${JSON.stringify(key)} of ${path} is not a valid shell variable name` };
    const text = plain(field);
    if (text.includes("\0")) return { ok: false, why: `the value of ${key} holds a NUL character, which no shell variable can hold` };
    lines.push(`${key}=${shellQuote(text)}\n`);
  }
  return { ok: true, text: lines.join("") };
}
