/**
 * The one bounded run of a program, as fetch.ts is the one bounded HTTP fetch: no shell, `/` as
 * its working folder, a process group of its own (so that whatever it starts is killed with
 * it), standard output read up to `max_body` and standard error kept only at its start, the
 * whole run under the item's `timeout`, and every way it can go wrong an UpstreamFailure of a
 * known kind. Nothing the program writes reaches a log but the first line of its standard
 * error, with the secrets it was given replaced by `[secret]`.
 */
import type { Subprocess } from "bun";
import { systemProblem } from "../error-text";
import { UpstreamFailure } from "./failure";
import { type ChunkReader, readUpTo } from "./fetch";

/** What to run: `secrets` are the values of `env` and the arguments given by secret references. */
export type Run = { argv: string[]; env: Record<string, string>; secrets: string[] };
export type RunLimits = { timeout: number; maxBody: number };

/** Standard error kept: enough for a first line; the rest is read and dropped, so the program never blocks on a full pipe. */
const STDERR_KEPT = 4096;
/** The longest first line of standard error a message carries. */
const LINE_SHOWN = 300;

export async function boundedRun(run: Run, { timeout, maxBody }: RunLimits): Promise<Uint8Array> {
  let child: Subprocess<"ignore", "pipe", "pipe">;
  try {
    // The working folder is `/` wherever cachish was started (serve, `check-config --probe`, `get
    // --config`), so a run does the same in each. `detached`: setsid(), a process group of its own.
    child = Bun.spawn(run.argv, { env: run.env, cwd: "/", stdin: "ignore", stdout: "pipe", stderr: "pipe", detached: true });
  } catch (error) {
    // Bun's message names the program, which may be a secret: the errno alone.
    const code = (error as { code?: unknown }).code;
    throw new UpstreamFailure("command", `the program cannot be started: ${code === "ENOENT" ? "not found" : systemProblem(error)}`);
  }
  const group = child.pid;
  // A group whose every process has ended is gone (ESRCH): nothing to kill.
  const killGroup = () => {
    try {
      process.kill(-group, "SIGKILL");
    } catch {}
  };
  const out = child.stdout.getReader();
  const err = child.stderr.getReader();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<"expired">((resolve) => (timer = setTimeout(() => resolve("expired"), timeout)));
  const stderr = headOf(err);
  const finished = (async () => {
    const reading = readUpTo(out, maxBody);
    // Output past max_body ends the run at once; else the program's exit does.
    if ((await Promise.race([reading, child.exited])) === undefined) return "too-large" as const;
    await child.exited;
    // Whatever it started and left running goes with it (and with it, the pipes it may hold open): no run leaves a process behind.
    killGroup();
    return (await reading) ?? ("too-large" as const);
  })();
  // Raced below; once the deadline has won, a later rejection is of no interest.
  finished.catch(() => {});
  try {
    const result = await Promise.race([finished, expired]);
    if (result === "expired") throw new UpstreamFailure("timeout", `the program did not finish within ${timeout} ms; its process group was killed`);
    if (result === "too-large") throw new UpstreamFailure("too-large", `the program's standard output is over max_body (${maxBody} bytes); its process group was killed`);
    const why = child.signalCode ? `was killed by ${child.signalCode}` : child.exitCode !== 0 ? `exited with status ${child.exitCode}` : undefined;
    if (why) {
      const line = firstLine(await Promise.race([stderr, expired.then(() => ({ head: new Uint8Array(0), cut: false }))]), run.secrets);
      throw new UpstreamFailure("command", `the program ${why}${line ? `: ${line}` : ""}`);
    }
    return result;
  } finally {
    clearTimeout(timer);
    killGroup();
    // Unread output is dropped, not left to fill a pipe.
    void out.cancel().catch(() => {});
    void err.cancel().catch(() => {});
  }
}

/** The first STDERR_KEPT bytes of a stream read to its end; `cut`: more came than was kept. */
async function headOf(reader: ChunkReader): Promise<{ head: Uint8Array; cut: boolean }> {
  const head = new Uint8Array(STDERR_KEPT);
  let size = 0;
  let cut = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done || !value) break;
      const taken = Math.min(value.byteLength, STDERR_KEPT - size);
      head.set(value.subarray(0, taken), size);
      size += taken;
      cut ||= taken < value.byteLength;
    }
  } catch {
    // A stream cancelled when the run ended: what was kept is enough.
  }
  return { head: head.subarray(0, size), cut };
}

/**
 * The first line of what was kept of standard error, every secret (and every line of a secret
 * of several lines) replaced by `[secret]`, at most LINE_SHOWN characters. Where the kept bytes
 * were cut, a secret may have been cut with them: as much as the longest secret is then dropped
 * from their end, so that no secret's beginning is shown.
 */
export function firstLine({ head, cut }: { head: Uint8Array; cut: boolean }, secrets: readonly string[]): string {
  const pieces = [...new Set(secrets.flatMap((secret) => [secret, ...secret.split(/\r?\n/)]))].filter((piece) => piece !== "").sort((a, b) => b.length - a.length);
  let text = new TextDecoder().decode(head);
  for (const piece of pieces) text = text.replaceAll(piece, "[secret]");
  // Whole secrets are replaced by now: what may remain at the end is a secret's beginning, shorter than it.
  if (cut) text = text.slice(0, Math.max(0, text.length - (pieces[0]?.length ?? 1)));
  const line = text.split(/\r?\n/, 1)[0]!.trim();
  return line.length > LINE_SHOWN ? `${line.slice(0, LINE_SHOWN)}…` : line;
}
