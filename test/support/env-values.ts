/**
 * Values that a variable must carry exactly from `cachish get --format sh|env` to the program:
 * every character quoting must get right, and any other code point (NUL and lone surrogates
 * left out: no environment can hold them, and cachish refuses them by name).
 */
import fc from "fast-check";

const SPECIAL = ["'", '"', "\\", "$", "`", "\n", "\t", "\r", " ", "#", "=", "!", "*", "?", "[", "~", "{", "}", ";", "&", "|", "<", ">", "(", ")", "é", "☃", "😀", "\u007f", "\u0001", "\u001b"];
const character = fc.oneof(fc.constantFrom(...SPECIAL), fc.string({ unit: "binary", minLength: 1, maxLength: 1 }).filter((c) => c !== "\0" && c.isWellFormed()));

export const envValue = fc.string({ unit: character, maxLength: 40 });

/** Up to 12 distinct values, as variables V_0, V_1, ... */
export const envValues = fc.uniqueArray(envValue, { minLength: 1, maxLength: 12 }).map((list) => Object.fromEntries(list.map((v, i) => [`V_${i}`, v])));

/** The kinds of character the SPEC names, one variable each, and a value holding all of them. */
export const NAMED_VALUES: Record<string, string> = {
  SINGLE_QUOTE: "it's",
  DOUBLE_QUOTE: 'say "hi"',
  SPACES: "  two  spaces  ",
  DOLLAR: "$HOME ${PATH} $(id) $$",
  BACKSLASHES: "a\\b\\\\c\\n\\",
  HASH: "#not a comment",
  EQUALS: "a=b==c=",
  NEWLINES: "line 1\nline 2\n\n",
  TABS: "\tx\ty\t",
  NON_ASCII: "café ☃ 日本 😀",
  EMPTY: "",
  BACKQUOTE: "`id`",
  CARRIAGE_RETURN: "a\r\nb\r",
  ALL: `'"\\$#= \n\t\`é${"$"}{X}\\\n`,
};

/** The variables in `env -0`'s output (NAME=value, each ended by a NUL), each value as its bytes. */
export function parseEnv0(out: Buffer): Map<string, Buffer> {
  const seen = new Map<string, Buffer>();
  let start = 0;
  for (let end = out.indexOf(0); end >= 0; start = end + 1, end = out.indexOf(0, start)) {
    const entry = out.subarray(start, end);
    const eq = entry.indexOf(0x3d);
    seen.set(entry.subarray(0, eq).toString(), entry.subarray(eq + 1));
  }
  return seen;
}
