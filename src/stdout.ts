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
 * rejects (EPIPE when the reader is gone). What is written meanwhile is kept too, without bound
 * (the daemon grew by 3-5 MB/s under load): hence LogQueue, which bounds what the log hands it.
 *
 * A full disk or a closed pipe loses lines, never the daemon: it says so once on stderr.
 */
import type { FileSink } from "bun";
import { messageOf } from "./error-text";

/** What LogQueue needs of a FileSink (a test gives it a fake). */
export type Sink = Pick<FileSink, "write" | "flush" | "ref" | "unref">;

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
/** The writer of fd 1, unreferenced while it keeps nothing (see send). */
export function stdoutSink(): FileSink {
  if (!sink) {
    sink = Bun.stdout.writer();
    sink.unref();
  }
  return sink;
}

/** Flushes waiting for the reader; of them, those of the commands' answers (writeStdoutText). */
let flushing = 0;
let answering = 0;

/**
 * Hands `text` to `sink` and asks it to write it: true when it did at once, else the Promise
 * of when the reader has taken everything the sink kept (false: it could not). A write's own
 * Promise settles with the flush's, whose outcome is reported: it is only kept from being an
 * unhandled rejection.
 *
 * The sink is referenced while a flush waits: unreferenced, a daemon with nothing else to do
 * (no request, no timer) wrote what it kept, or settled the flush, only when something else
 * woke its event loop (Bun 1.4.5), and the log stayed stuck.
 */
function send(sink: Sink, text: string): true | Promise<boolean> {
  try {
    const written = sink.write(text);
    if (typeof written !== "number") written.catch(() => {});
    const flushed = sink.flush();
    if (typeof flushed === "number") {
      report.worked();
      return true;
    }
    if (flushing++ === 0) sink.ref();
    return flushed
      .then(
        () => (report.worked(), true),
        (error) => (report.failed(error), false),
      )
      .finally(() => {
        if (--flushing === 0) sink.unref();
      });
  } catch (error) {
    // Done with, all the same: these lines are lost.
    report.failed(error);
    return true;
  }
}

/** Text to standard output (the commands' answers): never dropped; a slow reader is waited for before the process exits. */
export function writeStdoutText(text: string): void {
  const done = send(stdoutSink(), text);
  if (done === true) return;
  answering++;
  void done.finally(() => answering--);
}

/**
 * Before the process exits: true once the reader has taken everything, however long that takes
 * for a command's answer; false when only the daemon's log is still waiting after `logMs`. A
 * daemon told to stop must not wait for ever on a reader that has stalled (Bun writes what a
 * sink keeps before the process ends): the caller then exits, and those lines are lost.
 */
export async function stdoutSettled(logMs: number): Promise<boolean> {
  const deadline = Date.now() + logMs;
  while (flushing > 0) {
    if (answering === 0 && Date.now() >= deadline) return false;
    await Bun.sleep(10);
  }
  return true;
}

/** Lines this long in all (in characters: bytes, for ASCII) are written at once, without waiting for the timer. */
const BATCH_BYTES = 65_536;
/** Lines wait at most this long to be written together. */
const BATCH_MS = 50;

/**
 * The daemon's log on its way to standard output (SPEC 5.6), in bounded memory. Lines are
 * gathered and written together at most BATCH_MS later: one write a request would cost a
 * system call each. The sink is the queue: it keeps what the reader has not taken, and says
 * when the reader has taken it all (a flush's Promise settles only then, observed with a
 * reader slower than the writer). So the bytes handed to it are counted until then, and a
 * batch that would take them past `limit` is dropped, its lines counted. Once the reader has
 * caught up, one line (`notice(count)`) tells how many were dropped, where they would have
 * been. Nothing here ever waits: a request is never delayed by the log.
 */
export class LogQueue {
  /** Lines dropped since the start. */
  dropped = 0;
  /** Lines dropped that no notice has told of yet. */
  #untold = 0;
  /** Bytes handed to the sink that the reader has not taken yet. */
  #kept = 0;
  /** Lines gathered for the next write, and their length. */
  #lines: string[] = [];
  #length = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    readonly sink: Sink,
    readonly limit: number,
    readonly notice: (count: number) => string,
  ) {}

  /** One line, ending in a newline. */
  push(line: string): void {
    this.#lines.push(line);
    this.#length += line.length;
    if (this.#length >= BATCH_BYTES) this.flush();
    else this.#timer ??= setTimeout(() => this.flush(), BATCH_MS);
  }

  /** Writes the lines gathered, or drops them when the sink already keeps `limit` bytes. */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#lines.length === 0) return;
    const lines = this.#lines;
    this.#lines = [];
    this.#length = 0;
    const batch = lines.join("");
    const size = Buffer.byteLength(batch);
    if (this.#kept + size > this.limit) {
      this.dropped += lines.length;
      this.#untold += lines.length;
      return;
    }
    this.#write(batch, size);
  }

  /** Before the process exits: the lines gathered, and the notice of lines dropped since the reader last caught up, if any. */
  drain(): void {
    this.flush();
    if (this.#untold > 0) this.#write("", 0);
  }

  /** The notice of untold drops, if any (one short line, not counted), then `batch`. */
  #write(batch: string, size: number): void {
    const text = this.#untold > 0 ? this.notice(this.#untold) + batch : batch;
    this.#untold = 0;
    this.#kept += size;
    const done = send(this.sink, text);
    if (done === true) {
      this.#kept -= size;
      return;
    }
    void done.then((written) => {
      this.#kept -= size;
      if (written && this.#untold > 0) this.#write("", 0);
    });
  }
}
