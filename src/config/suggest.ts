/** "Did you mean": the known word closest to what was written, if any is close enough. */

/** Edit distance where swapping two neighbouring letters counts as one edit, as typos do. */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/** Spelling differences that do not count: case, `-` for `_`, camelCase. */
const fold = (word: string) => word.toLowerCase().replace(/[-_\s]/g, "");

export function closest(word: string, known: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    if (fold(candidate) === fold(word)) return candidate;
    const d = distance(fold(word), fold(candidate));
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  const allowed = word.length <= 3 ? 1 : word.length <= 7 ? 2 : 3;
  return bestDistance <= allowed ? best : undefined;
}

export function didYouMean(word: string, known: Iterable<string>): string {
  const hint = closest(word, known);
  return hint ? `; did you mean \`${hint}\`?` : "";
}
