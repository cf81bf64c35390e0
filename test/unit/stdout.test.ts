/**
 * LogQueue, the daemon's log on its way to standard output, against a sink that behaves as Bun's
 * FileSink was seen to behave on a pipe: it keeps what the reader has not taken; flush() answers
 * a number when the pipe took everything at once, else a Promise that settles when the reader
 * has taken everything kept.
 */
import { describe, expect, test } from "bun:test";
import { LogQueue, type Sink } from "../../src/stdout";

/** A sink whose reader takes bytes at once until `stall()`, then only at `resume()`. */
class FakeSink implements Sink {
  /** What the reader has taken (or will take, once resumed), in order. */
  readonly taken: string[] = [];
  /** Bytes handed to the sink and not yet taken. */
  kept = 0;
  #stalled = false;
  #pending: (() => void)[] = [];
  #decoder = new TextDecoder();

  write(chunk: string | ArrayBufferView | ArrayBuffer | SharedArrayBuffer): number {
    const text = typeof chunk === "string" ? chunk : this.#decoder.decode(chunk as Uint8Array);
    this.taken.push(text);
    this.kept += text.length;
    return text.length;
  }
  flush(): number | Promise<number> {
    if (!this.#stalled) {
      this.kept = 0;
      return 0;
    }
    return new Promise<number>((resolve) => this.#pending.push(() => resolve(0)));
  }
  /** Whether the sink is referenced (keeps the event loop awake). */
  referenced = false;
  ref(): void {
    this.referenced = true;
  }
  unref(): void {
    this.referenced = false;
  }
  stall(): void {
    this.#stalled = true;
  }
  async resume(): Promise<void> {
    this.#stalled = false;
    this.kept = 0;
    for (const settle of this.#pending.splice(0)) settle();
    await Bun.sleep(0);
  }
  /** The lines taken, without their newlines. */
  lines(): string[] {
    return this.taken.join("").split("\n").slice(0, -1);
  }
}

/** A batch of `n` lines `prefix1` ... `prefixN`, each `width` bytes with its newline, pushed and written. */
function write(queue: LogQueue, prefix: string, n: number, width = 10): void {
  for (let i = 0; i < n; i++) queue.push(`${prefix}${i + 1}`.padEnd(width - 1, ".") + "\n");
  queue.flush();
}
const notice = (count: number) => `dropped ${count}\n`;

describe("LogQueue", () => {
  test("lines pushed are gathered and written together, at most 50 ms later", async () => {
    const sink = new FakeSink();
    const queue = new LogQueue(sink, 1000, notice);
    queue.push("one\n");
    queue.push("two\n");
    expect(sink.taken).toEqual([]);
    await Bun.sleep(80);
    expect(sink.taken).toEqual(["one\ntwo\n"]);
  });

  test("64 KiB of lines gathered are written at once; drain writes what is gathered", () => {
    const sink = new FakeSink();
    const queue = new LogQueue(sink, 1 << 20, notice);
    const line = `${"x".repeat(1023)}\n`;
    for (let i = 0; i < 64; i++) queue.push(line);
    expect(sink.taken).toEqual([line.repeat(64)]);
    queue.push("last\n");
    queue.drain();
    expect(sink.lines().at(-1)).toBe("last");
  });

  test("a reader that keeps up gets every batch at once", () => {
    const sink = new FakeSink();
    const queue = new LogQueue(sink, 100, notice);
    for (let i = 0; i < 50; i++) write(queue, `b${i}-`, 5);
    expect(sink.lines().length).toBe(250);
    expect(queue.dropped).toBe(0);
  });

  test("while the reader is behind, the sink keeps batches up to the limit; later ones are dropped and counted; one line tells of them when the reader is back", async () => {
    const sink = new FakeSink();
    const queue = new LogQueue(sink, 100, notice);
    sink.stall();
    write(queue, "a", 3); // 30 bytes kept
    write(queue, "b", 4); // 70
    write(queue, "c", 3); // 100: still within the limit
    write(queue, "d", 1); // 110: dropped
    write(queue, "e", 2); // dropped
    expect(queue.dropped).toBe(3);
    expect(sink.kept).toBe(100);
    // Referenced while it waits for the reader: an idle daemon's event loop must wake for it.
    expect(sink.referenced).toBe(true);
    await sink.resume();
    expect(sink.referenced).toBe(false);
    expect(sink.lines()).toEqual(["a1.......", "a2.......", "a3.......", "b1.......", "b2.......", "b3.......", "b4.......", "c1.......", "c2.......", "c3.......", "dropped 3"]);
    // Working again: later lines go straight through, and the notice was written once.
    write(queue, "f", 1);
    expect(sink.lines().slice(-2)).toEqual(["dropped 3", "f1......."]);
    expect(queue.dropped).toBe(3);
  });

  test("every line is written or counted, once; a reader that caught up frees the whole limit again", async () => {
    const sink = new FakeSink();
    const queue = new LogQueue(sink, 1000, notice);
    for (const round of [1, 2, 3]) {
      sink.stall();
      for (let i = 0; i < 2000; i++) write(queue, `x${round}-${i}-`, 3, 20);
      // 20 bytes a line, in batches of 60: as many as fit in the limit.
      expect(sink.kept).toBe(960);
      await sink.resume();
    }
    const lines = sink.lines();
    const told = lines.filter((l) => l.startsWith("dropped")).map((l) => Number(l.split(" ")[1]));
    expect(told.length).toBe(3);
    expect(told.reduce((a, b) => a + b)).toBe(queue.dropped);
    expect(lines.length - told.length + queue.dropped).toBe(3 * 6000);
  });

  test("drain writes the notice of lines dropped since the reader last caught up (before the process exits)", () => {
    const sink = new FakeSink();
    const queue = new LogQueue(sink, 20, notice);
    sink.stall();
    write(queue, "a", 1);
    write(queue, "b", 1);
    write(queue, "c", 1);
    queue.drain();
    expect(sink.lines()).toEqual(["a1.......", "b1.......", "dropped 1"]);
  });

  test("a write that fails (the reader is gone) is said on stderr, once; later batches are still written", async () => {
    let fail = true;
    const written: string[] = [];
    let reject: (error: Error) => void = () => {};
    const sink: Sink = {
      write(chunk) {
        written.push(typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk as Uint8Array));
        return 0;
      },
      flush() {
        return fail ? new Promise<number>((_, r) => (reject = r)) : 0;
      },
      ref() {},
      unref() {},
    };
    const queue = new LogQueue(sink, 100, notice);
    const stderr = process.stderr.write;
    const said: string[] = [];
    process.stderr.write = ((text: string) => said.push(text) > 0) as typeof process.stderr.write;
    try {
      write(queue, "a", 1);
      write(queue, "b", 1);
      fail = false;
      reject(new Error("EPIPE: broken pipe, write"));
      await Bun.sleep(0);
      write(queue, "c", 1);
    } finally {
      process.stderr.write = stderr;
    }
    expect(written.join("")).toBe("a1.......\nb1.......\nc1.......\n");
    expect(said).toEqual(["cachish: cannot write to standard output (EPIPE: broken pipe, write); lines are lost until it works again\n"]);
  });
});
