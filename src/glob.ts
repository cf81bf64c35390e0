/**
 * The glob language of 1.x's `auth.*.url`, Python's `fnmatch.fnmatchcase`: `*` any run of
 * characters (`/` included), `?` one character, `[abc]`, `[a-z]`, `[!abc]` one character of a
 * set, an unclosed `[` a literal; the whole path must match. A glob becomes a RegExp as
 * `fnmatch.translate` makes it, step by step.
 */

/** What a RegExp reads as syntax; in a set, `-` too. */
const SYNTAX = /[\\^$.*+?()[\]{}|]/g;
const IN_SET = /[\\^$.*+?()[\]{}|-]/g;

/**
 * The RegExp of `pattern`. Between two stars, a fixed part matches where it is first found and
 * is never retried elsewhere (Python's atomic group, written as a lookahead and a
 * backreference): a glob of many stars costs time in proportion to the path, not exponential
 * in it.
 */
export function globToRegExp(pattern: string): RegExp {
  // Code points, as Python's str: `?` is one character, even outside the BMP.
  const chars = Array.from(pattern);
  // The fixed parts before, between and after the stars.
  const fixed = [""];
  let i = 0;
  while (i < chars.length) {
    const c = chars[i++]!;
    const end = c === "[" ? closing(chars, i) : undefined;
    if (c === "*") {
      fixed.push("");
    } else if (c === "?") {
      fixed[fixed.length - 1] += ".";
    } else if (end !== undefined) {
      fixed[fixed.length - 1] += set(chars.slice(i, end));
      i = end + 1;
    } else {
      fixed[fixed.length - 1] += c.replace(SYNTAX, "\\$&");
    }
  }
  const [head, ...afterStars] = fixed;
  const body = afterStars.map((part, n) => (n === afterStars.length - 1 ? `.*${part}` : `(?=(?<g${n}>.*?${part}))\\k<g${n}>`));
  return new RegExp(`^${head}${body.join("")}$`, "su");
}

/** Where a set opened before `from` closes: the first `]` after an optional `!` and a member `]`. Without one, `[` is a literal. */
function closing(chars: string[], from: number): number | undefined {
  let j = from;
  if (chars[j] === "!") j++;
  if (chars[j] === "]") j++;
  while (j < chars.length && chars[j] !== "]") j++;
  return j < chars.length ? j : undefined;
}

/**
 * A set's inside, as Python reads it: a `-` between two characters makes a range, except right
 * after the opening (or `!`) and right after a range; a reversed range such as `z-a` is dropped
 * with its hyphen, keeping the characters around it. `[]` matches nothing, `[^]` anything.
 */
function set(inside: string[]): string {
  const chunks: string[][] = [];
  let start = 0;
  for (let k = inside[0] === "!" ? 2 : 1; ; k += 3) {
    k = inside.indexOf("-", k);
    if (k < 0) break;
    chunks.push(inside.slice(start, k));
    start = k + 1;
  }
  const last = inside.slice(start);
  if (last.length > 0 || chunks.length === 0) chunks.push(last);
  else chunks.at(-1)!.push("-");
  for (let k = chunks.length - 1; k > 0; k--) {
    const [before, after] = [chunks[k - 1]!, chunks[k]!];
    if (before.at(-1)!.codePointAt(0)! > after[0]!.codePointAt(0)!) chunks.splice(k - 1, 2, [...before.slice(0, -1), ...after.slice(1)]);
  }
  const negated = chunks[0]![0] === "!";
  if (negated) chunks[0]!.shift();
  return `[${negated ? "^" : ""}${chunks.map((chunk) => chunk.join("").replace(IN_SET, "\\$&")).join("-")}]`;
}
