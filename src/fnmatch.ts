/**
 * Python's `fnmatch.fnmatchcase`, the glob language of 1.x's `auth.*.url`: `*` any run of
 * characters (`/` included), `?` one character, `[abc]`, `[a-z]`, `[!abc]` one character of a
 * set, and an unclosed `[` a literal. The whole path must match.
 *
 * Patterns compile to tokens matched by the two-pointer wildcard walk instead of a regular
 * expression: request paths come from clients, and a backtracking regex over a pattern with
 * many stars would let a long path burn CPU. The walk is O(pattern × path) at worst.
 */

type Token =
  | { kind: "star" }
  | { kind: "char"; cp: number }
  | { kind: "set"; negated: boolean; singles: Set<number>; ranges: [number, number][] };

export type Glob = { readonly pattern: string; readonly tokens: readonly Token[] };

export function compileGlob(pattern: string): Glob {
  const pat = Array.from(pattern);
  const tokens: Token[] = [];
  let i = 0;
  while (i < pat.length) {
    const c = pat[i++]!;
    if (c === "*") {
      if (tokens.at(-1)?.kind !== "star") tokens.push({ kind: "star" });
    } else if (c === "?") {
      tokens.push({ kind: "set", negated: true, singles: new Set(), ranges: [] });
    } else if (c === "[") {
      // Python looks for the closing bracket after an optional `!` and a leading `]`, which
      // is then a member; without one, `[` is a literal.
      let j = i;
      if (pat[j] === "!") j++;
      if (pat[j] === "]") j++;
      while (j < pat.length && pat[j] !== "]") j++;
      if (j >= pat.length) {
        tokens.push({ kind: "char", cp: 0x5b });
        continue;
      }
      tokens.push(compileSet(pat.slice(i, j)));
      i = j + 1;
    } else {
      tokens.push({ kind: "char", cp: c.codePointAt(0)! });
    }
  }
  return { pattern, tokens };
}

/**
 * A bracket expression's inside. As in Python, a `-` between two characters makes a range,
 * except right after the opening (or `!`) and right after a range; a reversed range such as
 * `z-a` is dropped along with its hyphen, keeping the characters around it.
 */
function compileSet(inside: string[]): Token {
  const negated = inside[0] === "!";
  const body = negated ? inside.slice(1) : inside;
  const chunks: string[][] = [];
  let start = 0;
  let k = 1;
  for (;;) {
    let h = -1;
    for (let m = k; m < body.length; m++) if (body[m] === "-") { h = m; break; }
    if (h < 0) break;
    chunks.push(body.slice(start, h));
    start = h + 1;
    k = h + 3;
  }
  const last = body.slice(start);
  if (last.length > 0 || chunks.length === 0) chunks.push(last);
  else chunks[chunks.length - 1]!.push("-");
  for (let m = chunks.length - 1; m > 0; m--) {
    const prev = chunks[m - 1]!;
    const next = chunks[m]!;
    if (prev.length && next.length && prev.at(-1)!.codePointAt(0)! > next[0]!.codePointAt(0)!) {
      chunks[m - 1] = [...prev.slice(0, -1), ...next.slice(1)];
      chunks.splice(m, 1);
    }
  }
  const singles = new Set<number>();
  const ranges: [number, number][] = [];
  chunks.forEach((chunk, m) => {
    chunk.forEach((ch, n) => {
      const joinsPrev = m > 0 && n === 0;
      const joinsNext = m < chunks.length - 1 && n === chunk.length - 1;
      if (!joinsPrev && !joinsNext) singles.add(ch.codePointAt(0)!);
    });
    if (m > 0) ranges.push([chunks[m - 1]!.at(-1)!.codePointAt(0)!, chunk[0]!.codePointAt(0)!]);
  });
  return { kind: "set", negated, singles, ranges };
}

function tokenMatches(token: Token, cp: number): boolean {
  if (token.kind === "char") return token.cp === cp;
  if (token.kind === "star") return true;
  const inSet = token.singles.has(cp) || token.ranges.some(([lo, hi]) => cp >= lo && cp <= hi);
  return inSet !== token.negated;
}

/** Whether the whole of `path` matches, as `fnmatch.fnmatchcase(path, pattern)` says. */
export function globMatches(glob: Glob, path: string): boolean {
  const text = Array.from(path, (ch) => ch.codePointAt(0)!);
  const tokens = glob.tokens;
  let t = 0;
  let p = 0;
  let starT = -1;
  let starP = 0;
  while (p < text.length) {
    const token = tokens[t];
    if (token?.kind === "star") {
      starT = t++;
      starP = p;
    } else if (token && tokenMatches(token, text[p]!)) {
      t++;
      p++;
    } else if (starT >= 0) {
      t = starT + 1;
      p = ++starP;
    } else {
      return false;
    }
  }
  while (tokens[t]?.kind === "star") t++;
  return t === tokens.length;
}

export function fnmatchcase(path: string, pattern: string): boolean {
  return globMatches(compileGlob(pattern), path);
}
