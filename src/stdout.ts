/**
 * Standard output, for the commands' answers and the daemon's log: one path for a file, a pipe,
 * the journal's socket or a terminal, Bun's native writer for fd 1 (a FileSink). Not
 * process.stdout: creating that Node stream cost the daemon's start about 25 ms and 6 MB of
 * memory (measured with a compiled Bun.serve), for nothing we use.
 *
 * What the FileSink does when the reader stalls (observed with Bun 1.4.5 on a pipe nobody
 * reads): `write()` and `flush()` never block. What the pipe takes at once, they write and
 * answer with a number; the rest they keep, for as long as it takes, and answer with a Promise
 * that settles when the reader has taken everything kept (with the count of bytes written), or
 * rejects (EPIPE when the reader is gone). Everything written meanwhile is kept too, without
 * bound: hence LogQueue, which hands the sink one write at a time and bounds the rest.
 *
 * A full disk or a closed pipe loses lines, never the daemon: it says so once on stderr.
 */
import type { FileSink } from "bun";
import { messageOf } from "./error-text";

/** What LogQueue needs of a FileSink (a test gives it a fake). */
export type Sink = Pick<FileSink, "write" | "flush">;

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
/** The writer of fd 1. Unreferenced: a command still exits when its work is done (what is kept is written first). */
export function stdoutSink(): FileSink {
  if (!sink) {
    sink = Bun.stdout.writer();
    sink.unref();
  }
  return sink;
}

/**
 * Hands `chunks` to `sink` and asks it to write them: true when it did at once, else the
 * Promise of when the reader has taken them. A write's own Promise settles with the flush's,
 * whose outcome is reported: it is only kept from being an unhandled rejection.
 */
function send(sink: Sink, chunks: (Uint8Array | string)[]): true | Promise<void> {
  try {
    for (const chunk of chunks) {
      const written = sink.write(chunk);
      if (typeof written !== "number") written.catch(() => {});
    }
    const flushed = sink.flush();
    if (typeof flushed === "number") {
      report.worked();
      return true;
    }
    return flushed.then(report.worked, report.failed);
  } catch (error) {
    report.failed(error);
    return true;
  }
}

/** Text to standard output (the commands' answers): never dropped; a slow reader is waited for before the process exits. */
export function writeStdoutText(text: string): void {
  void send(stdoutSink(), [text]);
}

const NEWLINE = 10;

function countLines(bytes: Uint8Array): number {
  let lines = 0;
  for (let at = bytes.indexOf(NEWLINE); at >= 0; at = bytes.indexOf(NEWLINE, at + 1)) lines++;
  return lines;
}

/**
 * The daemon's log on its way to standard output (SPEC 5.6), in bounded memory: at most one
 * write is in flight; while it is, batches of lines wait here, up to `limit` bytes with the
 * one in flight; a batch beyond that is dropped, its lines counted. When the write in flight
 * is done, the notice of the lines dropped meanwhile (`notice(count)`, one line) is written,
 * then the batches that waited, together. Nothing here ever waits: a request is never delayed
 * by the log.
 */
export class LogQueue {
  /** Lines dropped since the start. */
  dropped = 0;
  /** Lines dropped that no notice has told of yet. */
  #untold = 0;
  /** Batches waiting for the write in flight (copies: the caller fills its buffer again). */
  #waiting: Uint8Array[] = [];
  /** Bytes of the writes in flight and of the batches waiting. */
  #bytes = 0;
  #inFlight = 0;

  constructor(
    readonly sink: Sink,
    readonly limit: number,
    readonly notice: (count: number) => string,
  ) {}

  /** Lines, each ending in a newline; used or copied before this returns. */
  write(batch: Uint8Array): void {
    if (this.#bytes + batch.length > this.limit) {
      const lines = countLines(batch);
      this.dropped += lines;
      this.#untold += lines;
      return;
    }
    this.#bytes += batch.length;
    if (this.#inFlight > 0) this.#waiting.push(batch.slice());
    else this.#write([batch]);
  }

  /** Hands what waits to the sink now, write in flight or not (before the process exits: the sink writes it first). */
  drain(): void {
    if (this.#waiting.length > 0 || this.#untold > 0) this.#writeWaiting();
  }

  #writeWaiting(): void {
    const batches = this.#waiting;
    this.#waiting = [];
    this.#write(batches);
  }

  /** Writes the notice of untold drops, if any, then `batches`; they stay counted until the sink has written them. */
  #write(batches: Uint8Array[]): void {
    const size = batches.reduce((sum, batch) => sum + batch.length, 0);
    const chunks = this.#untold > 0 ? [this.notice(this.#untold), ...batches] : batches;
    this.#untold = 0;
    const done = send(this.sink, chunks);
    if (done === true) {
      this.#bytes -= size;
      return;
    }
    this.#inFlight++;
    void done.then(() => {
      this.#inFlight--;
      this.#bytes -= size;
      if (this.#inFlight === 0 && (this.#waiting.length > 0 || this.#untold > 0)) this.#writeWaiting();
    });
  }
}
