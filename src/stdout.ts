/**
 * Standard output for the daemon's log and the commands' answers. When it is a file (the
 * daemon run with `>> cachish.log`, the benchmark) each batch is one write(2), with no copy
 * kept; otherwise (the journal's socket, a pipe, a terminal) it goes through Bun's native
 * writer for fd 1, which keeps (a copy of) what a slow reader has not taken yet instead of
 * blocking the daemon. Not process.stdout: creating that Node stream cost the daemon's start
 * about 25 ms and 6 MB of memory (measured with a compiled Bun.serve), for nothing we use.
 *
 * A full disk or a closed pipe loses lines, never the daemon: it says so once on stderr.
 */
import { fstatSync, writeSync } from "node:fs";
import type { FileSink } from "bun";
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

let sink: FileSink | undefined;
/** The writer for a pipe, socket or terminal. Unreferenced: a command still exits when its work is done (what is pending is written first). */
function pipe(): FileSink {
  if (!sink) {
    sink = Bun.stdout.writer();
    sink.unref();
  }
  return sink;
}

let toFile: boolean | undefined;

/** Bytes to standard output (the daemon's log): written or copied before this returns, so the caller may fill them again. */
export function writeStdout(bytes: Uint8Array): void {
  toFile ??= isFile(1);
  try {
    if (toFile) {
      // A short write (rare on a file): the rest, from where it stopped.
      for (let done = 0; done < bytes.length; ) done += writeSync(1, bytes, done);
      report.worked();
      return;
    }
    const out = pipe();
    out.write(bytes);
    const flushed = out.flush();
    // A reader that is behind: the rest is written when it takes it, and its outcome reported then.
    if (typeof flushed === "number") report.worked();
    else flushed.then(report.worked, report.failed);
  } catch (error) {
    report.failed(error);
  }
}

/** Text to standard output (the commands' answers). */
export function writeStdoutText(text: string): void {
  writeStdout(Buffer.from(text));
}
