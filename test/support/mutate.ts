/**
 * A seeded mutator of text files, for feeding cachish the configurations an operator's typo,
 * a bad merge or a broken template makes: characters YAML gives a meaning to inserted,
 * characters and spans deleted, lines duplicated, dropped, swapped and re-indented. The same
 * seed gives the same mutations, so a failure names the seed that reproduces it.
 */

/** A small, fast PRNG (mulberry32): numbers in [0, 1). */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Characters with a meaning in YAML, and the white space around them. */
const SIGNIFICANT = [..."[]{}:-&*!|>'\"#%@`,?<= \t\n"];

export class Mutator {
  readonly #next: () => number;
  constructor(readonly seed: number) {
    this.#next = random(seed);
  }

  int(below: number): number {
    return Math.floor(this.#next() * below);
  }

  pick<T>(from: readonly T[]): T {
    return from[this.int(from.length)]!;
  }

  /** `source` with one to three mutations. */
  mutate(source: string): string {
    let text = source;
    const count = 1 + this.int(3);
    for (let i = 0; i < count; i++) text = this.#once(text);
    return text;
  }

  #once(text: string): string {
    const lines = text.split("\n");
    const line = this.int(lines.length);
    const at = this.int(text.length + 1);
    switch (this.int(9)) {
      case 0: // a character YAML reads, anywhere
        return text.slice(0, at) + this.pick(SIGNIFICANT) + text.slice(at);
      case 1: // a stray character at the start of a line (a `]` there quoted every later scalar once)
        lines[line] = this.pick(SIGNIFICANT) + lines[line];
        return lines.join("\n");
      case 2: // one character gone
        return text.slice(0, at) + text.slice(at + 1);
      case 3: // a span gone
        return text.slice(0, at) + text.slice(at + 1 + this.int(12));
      case 4: // a character replaced
        return text.slice(0, at) + this.pick(SIGNIFICANT) + text.slice(at + 1);
      case 5: // a line twice
        lines.splice(line, 0, lines[line]!);
        return lines.join("\n");
      case 6: // a line gone
        lines.splice(line, 1);
        return lines.join("\n");
      case 7: // two lines swapped
        if (line + 1 < lines.length) [lines[line], lines[line + 1]] = [lines[line + 1]!, lines[line]!];
        return lines.join("\n");
      default: {
        // indented more or less
        const shift = 1 + this.int(4);
        lines[line] = this.int(2) ? " ".repeat(shift) + lines[line] : lines[line]!.replace(new RegExp(`^ {1,${shift}}`), "");
        return lines.join("\n");
      }
    }
  }
}
