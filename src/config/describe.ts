/**
 * The vocabulary in which cachish.yml is described. keys.ts says, in these terms, every key
 * there is; the validator (validate.ts), the defaults, the JSON Schema (schema.ts) and the
 * README's reference (reference.ts) are all read off that one description.
 */
import { parseDuration, parseSize } from "./units";

export type StringFormat = "http-url" | "listen" | "sha256-hex" | "postgres-url" | "aes-256-key" | "json-pointer" | "stale-kind" | "program";
export type KeyFormat = "item-path" | "header-name" | "env-name";

export type Shape =
  | {
      type: "string";
      format?: StringFormat;
      /** A `{env:}`, `{file:}` or `{credential:}` map may stand for the string. */
      refs?: boolean;
      /** Kept as a Secret: never printed, logged or echoed in a message. */
      secret?: boolean;
      /** Kept as a Secret when a secret reference gives it; written in the file, it is plain (a command's words). */
      refSecret?: boolean;
    }
  | { type: "boolean" }
  | { type: "duration"; min?: number }
  | { type: "size"; min?: number; max?: number }
  | { type: "enum"; values: readonly string[]; caseSensitive?: boolean }
  /** A single value or a list of them; always a list once loaded. */
  /** `emptyWarning`: an empty list is a warning with this reason, not an error (1.x started with it). */
  /** `emptyAllowed`: an empty list is a choice that means something (`stale_on: []`), neither error nor warning. */
  | { type: "one-or-list"; of: Shape; emptyWarning?: string; emptyAllowed?: true }
  /** A list of at least one element, never a lone value; `first`, when given, is the first element's shape (a command's program). */
  | { type: "list"; of: Shape; first?: Shape }
  /** Keys chosen by the user (item paths, client names, header names). */
  | { type: "map"; keyFormat?: KeyFormat; keyDoc: string; values: Shape }
  | ObjectShape
  /** Whose fields depend on the sibling key `discriminator`, as `parameters` on `module`. */
  | { type: "variant"; discriminator: string; variants: Record<string, ObjectShape> }
  /** Anything: accepted and not looked into (1.x's `log_config`). */
  | { type: "any" };

export type ObjectShape = {
  type: "object";
  fields: Record<string, Field>;
  /** An unknown key here is an error, or (where 1.x ignored unknown keys) a warning. */
  unknown: "error" | "warning";
  /** Exactly one key of each group must be present (a client's `token` or `token_sha256`). */
  exactlyOne?: string[][];
  /** What to say when this place holds something else than a mapping. */
  notMappingHint?: string;
};

export type Field = {
  shape: Shape;
  doc: string;
  required?: boolean;
  /** The default as a user would write it; parsed by the same code as a written value. */
  default?: string | number | boolean;
  /** Said in the reference instead of `default` when the default is not a constant. */
  defaultDoc?: string;
  /** `null` is allowed and means "none" (no limit, no refresh). */
  nullable?: boolean;
  /** Takes its default from `defaults:` before the built-in one. */
  inherits?: boolean;
  /** Accepted, then warned about with this text: a 1.x key that does nothing now. */
  ignoredBecause?: string;
  since: "1.x" | "2.0";
};

/** A field's default, read by the same parsers as a written value. */
export function defaultValue(field: Field): unknown {
  if (field.default === undefined) return field.nullable ? null : undefined;
  if (field.shape.type === "duration") return parseDuration(field.default);
  if (field.shape.type === "size") return parseSize(field.default);
  if (field.shape.type === "one-or-list") return [field.default];
  return field.default;
}
