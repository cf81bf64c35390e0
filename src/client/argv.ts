/**
 * `--exec 'CMD ARGS'` as the argv it names. There is no shell: words are split and quotes
 * removed as a POSIX shell does for a simple command, and nothing else happens (no variables,
 * globs, `~`, `;`, `|` or redirections: `$HOME` stays `$HOME`). The rules are those of Python's
 * `shlex.split` (posix mode), which the tests ask: single quotes keep everything; in double
 * quotes a backslash escapes only `"` and itself; elsewhere it escapes any character.
 */

export type Split = { ok: true; argv: string[] } | { ok: false; why: string };

const SPACE = " \t\r\n";

export function splitArgv(text: string): Split {
  const argv: string[] = [];
  let word = "";
  // A word has begun: `''` is a word, empty.
  let inWord = false;
  let quote: "'" | '"' | undefined;
  let escaped = false;
  for (const c of text) {
    if (escaped) {
      if (quote === '"' && c !== '"' && c !== "\\") word += "\\";
      word += c;
      escaped = false;
    } else if (quote === "'") {
      if (c === "'") quote = undefined;
      else word += c;
    } else if (quote === '"') {
      if (c === '"') quote = undefined;
      else if (c === "\\") escaped = true;
      else word += c;
    } else if (SPACE.includes(c)) {
      if (inWord) argv.push(word);
      word = "";
      inWord = false;
    } else {
      inWord = true;
      if (c === "'" || c === '"') quote = c;
      else if (c === "\\") escaped = true;
      else word += c;
    }
  }
  if (escaped) return { ok: false, why: "it ends with a backslash, which escapes nothing" };
  if (quote) return { ok: false, why: `a ${quote === "'" ? "single" : "double"} quote is not closed` };
  if (inWord) argv.push(word);
  return { ok: true, argv };
}
