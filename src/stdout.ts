/**
 * Standard output for the daemon's log and the commands' answers. When it is a file (the
 * daemon run with `>> cachish.log`, the benchmark) each batch is one write(2), with no copy
 * kept in a stream; otherwise (the journal's socket, a pipe, a terminal) text goes through
 * process.stdout, which waits for a slow reader instead of blocking the daemon.
 *
 * A full disk or a closed pipe loses lines, never the daemon: it says so once on stderr.
 */
import { fstatSync, writeSync } from "node:fs";
import { messageOf } from "./error-text";

function isFile(fd: number): boolean {
  try {
    return fstatSync(fd).isFile();
  } catch {
    return false;
  }
}

/** Says once, on stderr, that standard output cannot be written; again after it worked. */
let failing = false;
const report = {
  failed(error: unknown): void {
    if (failing) return;
    failing = true;
    process.stderr.write(`cachish: cannot write to standard output (${messageOf(error)}); lines are lost until it works again\n`);
  },
  worked(): void {
    failing = false;
  },
};
let listening = false;
/** process.stdout, with its errors reported (once for the process, however many writers). */
function stream(): typeof process.stdout {
  if (!listening) {
    listening = true;
    process.stdout.on("error", report.failed);
  }
  return process.stdout;
}

let toFile: boolean | undefined;

/** `reused`: the caller writes into these bytes again once this returns, so a stream gets a copy. */
function writeStdout(bytes: Uint8Array, reused: boolean): void {
  toFile ??= isFile(1);
  if (!toFile) {
    stream().write(reused ? Buffer.from(bytes) : bytes);
    return;
  }
  try {
    // A short write (rare on a file): the rest, from where it stopped.
    for (let done = 0; done < bytes.length; ) done += writeSync(1, bytes, done);
    report.worked();
  } catch (error) {
    report.failed(error);
  }
}

/** Text to standard output (the commands' answers). */
export function stdoutWriter(): (text: string) => void {
  return (text) => writeStdout(Buffer.from(text), false);
}

/** Bytes to standard output (the daemon's log); they are used or copied before it returns. */
export function stdoutBytesWriter(): (bytes: Uint8Array) => void {
  return (bytes) => writeStdout(bytes, true);
}
