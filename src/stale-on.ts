/**
 * The failure kinds `stale_on` names (SPEC 3): what may be written, and which failures each
 * covers. The words are those of the failure taxonomy (backends/failure.ts) as `Cache-Status`
 * `detail` spells them, plus `any` and the status classes, so that an operator copies a kind
 * from a 503's `detail` or a log line into the list as it is.
 */
import { didYouMean } from "./config/suggest";

/** Every word `stale_on` accepts but `status-NNN`, in the order the reference lists them. */
export const STALE_KINDS = ["any", "connect", "timeout", "status-5xx", "status-4xx", "invalid-json", "too-large", "missing-field", "command"] as const;

const ONE_STATUS = /^status-(\d{3})$/;

/** Why `word` is not a kind `stale_on` accepts, or undefined; the sentence never quotes the word. */
export function staleKindProblem(word: string): string | undefined {
  if ((STALE_KINDS as readonly string[]).includes(word)) return undefined;
  const status = ONE_STATUS.exec(word);
  if (status) return Number(status[1]) >= 100 && Number(status[1]) <= 599 ? undefined : "`status-NNN` needs a status from 100 to 599";
  const expected = `; the kinds are ${[...STALE_KINDS, "status-NNN"].map((k) => `\`${k}\``).join(", ")}`;
  return `unknown failure kind${didYouMean(word, STALE_KINDS) || expected}`;
}

/**
 * Whether `staleOn` lets a failure of this `detail` (`connect`, `status-503`, ...) be answered
 * with the stored value. An empty list lets none.
 */
export function covers(staleOn: readonly string[], detail: string): boolean {
  for (const kind of staleOn) {
    if (kind === "any" || kind === detail) return true;
    // `status-5xx` covers `status-500` to `status-599`: the class is the detail's first digit.
    if (kind.endsWith("xx") && detail.length === 10 && detail.startsWith(kind.slice(0, 8))) return true;
  }
  return false;
}
