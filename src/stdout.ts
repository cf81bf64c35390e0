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

export function stdoutWriter(): (text: string) => void {
  let failing = false;
  const failed = (error: unknown) => {
    if (failing) return;
    failing = true;
    process.stderr.write(`cachish: cannot write to standard output (${messageOf(error)}); lines are lost until it works again\n`);
  };
  if (!isFile(1)) {
    process.stdout.on("error", failed);
    return (text) => void process.stdout.write(text);
  }
  return (text) => {
    try {
      const written = writeSync(1, text);
      const bytes = Buffer.byteLength(text);
      // A short write (rare on a file): the rest, from where it stopped.
      if (written < bytes) {
        const rest = Buffer.from(text);
        for (let done = written; done < bytes; ) done += writeSync(1, rest, done);
      }
      failing = false;
    } catch (error) {
      failed(error);
    }
  };
}
