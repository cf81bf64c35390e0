/**
 * JSON Pointer (RFC 6901): `select`'s way of naming the part of an upstream's answer that makes
 * the value. It walks cachish's own JSON tree (json.ts), so the part selected keeps the bytes,
 * the numbers and the key order the upstream sent, as the whole answer does.
 */
import { ordinal } from "./error-text";
import type { JsonValue } from "./json";

/** An array index as RFC 6901 writes it: `0`, or digits without a leading zero. */
const ARRAY_INDEX = /^(?:0|[1-9][0-9]*)$/;

/**
 * Why `pointer` is not a JSON Pointer, with how to write it; undefined when it is one. The
 * sentence never quotes the pointer: it is text of the configuration, which may be a secret.
 */
export function pointerProblem(pointer: string): string | undefined {
  if (pointer !== "" && !pointer.startsWith("/")) {
    const fragment = pointer.startsWith("#") ? " (the URI fragment form, `#/...`, is not taken: drop the `#`)" : "";
    return `a JSON Pointer is empty (the whole answer) or starts with \`/\`, e.g. \`/data/data\`${fragment}`;
  }
  const tilde = pointer.search(/~(?![01])/);
  if (tilde >= 0) {
    return `a \`~\` in a JSON Pointer (its ${ordinal(tilde + 1)} character) stands only as \`~0\` (for \`~\`) or \`~1\` (for \`/\`): write a key holding \`~\` or \`/\` with them, \`a/b\` as \`/a~1b\``;
  }
  return undefined;
}

/**
 * The keys and indexes a valid pointer steps through: split at `/`, then `~1` made `/` before
 * `~0` is made `~` (RFC 6901 4: the other order would read `~01` as `/`, not `~1`).
 */
export function pointerTokens(pointer: string): string[] {
  if (pointer === "") return [];
  return pointer.slice(1).split("/").map((token) => token.replaceAll("~1", "/").replaceAll("~0", "~"));
}

/** Where a pointer stopped resolving: at its `step`th reference token (from 1), in a value of this type, which has no such member or element, or neither. */
export type Unresolved = { step: number; within: JsonValue["type"] };

/**
 * The part of `document` that `pointer` (valid: see pointerProblem) points at. A member is
 * matched by its exact name (no coercion: `/0` on an object looks for the key "0"); an element
 * by an index of RFC 6901's form, and `-` (the element after the last) never resolves.
 */
export function resolvePointer(document: JsonValue, pointer: string): { ok: true; value: JsonValue } | ({ ok: false } & Unresolved) {
  let at = document;
  for (const [index, token] of pointerTokens(pointer).entries()) {
    // A huge index becomes a float past the end, never another element.
    const next = at.type === "object" ? at.entries.get(token) : at.type === "array" && ARRAY_INDEX.test(token) ? at.items[Number(token)] : undefined;
    if (!next) return { ok: false, step: index + 1, within: at.type };
    at = next;
  }
  return { ok: true, value: at };
}
