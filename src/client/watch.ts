/**
 * `cachish get --watch` after the first value: ask the daemon to answer when the value's bytes
 * differ from the last ETag (SPEC 5.8, a long poll), and deliver what would be printed only when
 * it differs from what was last delivered. A 304, a 200 of the same bytes, or of other bytes
 * that give the same output (another key than --field's) delivers nothing. A lost daemon is
 * waited for, forever, and the watch resumes from the last ETag, so a daemon's restart delivers
 * nothing unless the value changed meanwhile.
 */
import type { Answer } from "./answer";
import { Backoff, sleep } from "./pause";

/**
 * How long each question waits at the daemon. Bun's HTTP client drops a connection that says
 * nothing for 300 s, whatever the request's own deadline (BUN_CONFIG_HTTP_IDLE_TIMEOUT), so the
 * daemon must answer well before that.
 */
export const WAIT_SECONDS = 240;

/** An answer sooner than this that delivered nothing did not wait: the next question waits a little first. */
const EARLY_MS = 1000;

export type Checked = { ok: true; text: string; warning?: string } | { ok: false; why: string };

export type Watch = {
  path: string;
  /** Asks the daemon, with the last ETag when there is one, as a long poll when `wait`. */
  ask(etag: string | undefined, wait: boolean): Promise<Answer>;
  /** What a value gives: the text to deliver (and a warning to say with it), or why it gives none. */
  check(answer: Extract<Answer, { kind: "value" }>): Checked;
  /** Prints, or writes and runs; why it failed when it must be tried again. */
  deliver(text: string): Promise<string | undefined>;
  /** One line on standard error (the command's name is put before it). */
  report(text: string): void;
  /** Aborted by SIGTERM or SIGINT: the watch ends. */
  stop: AbortSignal;
};

/** Watches until stopped (undefined), or until the daemon refuses the token or no longer knows the path (that answer). */
export async function watch(start: { etag?: string; text: string }, w: Watch): Promise<Extract<Answer, { kind: "refused" | "error" }> | undefined> {
  let { etag, text: delivered } = start;
  // The daemon cannot be reached or answers 503: as --wait does.
  const lost = new Backoff(100, 2000);
  // Answers that did not wait (a daemon without long polls, a reload's 304) or a delivery to retry:
  // up to the interval at which the daemon itself refreshes for watchers (SPEC 5.8).
  const early = new Backoff(EARLY_MS, 30_000);
  let lostWhy: string | undefined;
  while (!w.stop.aborted) {
    // After a loss, the first question does not wait: its answer says at once that the daemon is back.
    const probe = lostWhy !== undefined;
    const asked = Date.now();
    const answer = await w.ask(etag, !probe);
    if (w.stop.aborted) break;
    if (answer.kind === "refused" || answer.kind === "error") return answer;
    if (answer.kind === "unavailable") {
      if (lostWhy === undefined) w.report(`${w.path}: ${answer.why}; waiting for it`);
      lostWhy = answer.why;
      await sleep(lost.next(), w.stop);
      continue;
    }
    if (lostWhy !== undefined) w.report(`${w.path}: the daemon answers again; watching`);
    lostWhy = undefined;
    lost.reset();
    let changed = false;
    let retry = false;
    if (answer.kind === "value") {
      etag = answer.etag;
      const checked = w.check(answer);
      if (!checked.ok) w.report(checked.why);
      else if (checked.text !== delivered) {
        if (checked.warning) w.report(checked.warning);
        const failed = await w.deliver(checked.text);
        changed = failed === undefined;
        if (changed) delivered = checked.text;
        else {
          w.report(`${w.path}: ${failed}; trying again`);
          // Asked again without a validator, the daemon answers at once with the value to deliver.
          etag = undefined;
          retry = true;
        }
      }
    }
    if (retry || (!changed && !probe && Date.now() - asked < EARLY_MS)) await sleep(early.next(), w.stop);
    else early.reset();
  }
  return undefined;
}
