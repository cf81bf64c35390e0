/**
 * LogQueue, the daemon's log on its way to standard output, against a sink that behaves as Bun's
 * FileSink was seen to behave on a pipe: a number when the pipe took the bytes at once, else a
 * Promise that settles when the reader has taken them.
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

const encoder = new TextEncoder();
/** A batch of `n` lines `prefix1` ... `prefixN`, each `width` bytes with its newline. */
const batch = (prefix: string, n: number, width = 10) => encoder.encode(Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`.padEnd(width - 1, ".") + "\n").join(""));
const notice = (count: number) => `dropped ${count}\n`;

describe("LogQueue", () => {
  test("a reader that keeps up gets every batch at once, nothing waits", () => {
    const sink = new FakeSink();
    const queue = new LogQueue(sink, 100, notice);
    for (let i = 0; i < 50; i++) queue.write(batch(`b${i}-`, 5));
    expect(sink.lines().length).toBe(250);
    expect(queue.dropped).toBe(0);
  });

  test("while a write is in flight, batches wait up to the limit; later ones are dropped and counted; the notice comes first when the reader is back", async () => {
    const sink = new FakeSink();
    const queue = new LogQueue(sink, 100, notice);
    sink.stall();
    queue.write(batch("a", 3)); // in flight: 30 bytes
    expect(sink.lines()).toEqual(["a1.......", "a2.......", "a3......."]);
    queue.write(batch("b", 4)); // waits: 70 bytes in all
    queue.write(batch("c", 3)); // 100: still within the limit
    queue.write(batch("d", 1)); // 110: dropped
    queue.write(batch("e", 2)); // dropped
    expect(queue.dropped).toBe(3);
    // Nothing more was handed to the sink while the first write was in flight.
    expect(sink.lines().length).toBe(3);
    await sink.resume();
    expect(sink.lines()).toEqual(["a1.......", "a2.......", "a3.......", "dropped 3", "b1.......", "b2.......", "b3.......", "b4.......", "c1.......", "c2.......", "c3......."]);
    // Working again: one line said it, and later lines go straight through.
    queue.write(batch("f", 1));
    expect(sink.lines().at(-1)).toBe("f1.......");
    expect(sink.lines().filter((l) => l.startsWith("dropped")).length).toBe(1);
    expect(queue.dropped).toBe(3);
  });

  test("the write in flight and the batches waiting never pass the limit together; every line is written or counted, once", async () => {
    const sink = new FakeSink();
    const queue = new LogQueue(sink, 1000, notice);
    sink.stall();
    for (let i = 0; i < 2000; i++) queue.write(batch(`x${i}-`, 3, 20));
    expect(queue.dropped).toBeGreaterThan(5000);
    await sink.resume();
    const lines = sink.lines();
    const dropped = Number(lines.find((l) => l.startsWith("dropped"))!.split(" ")[1]);
    // Without the notice, 20 bytes a line: what was in flight and what waited, up to the
    // limit (no batch of 60 bytes more would have fitted).
    expect((lines.length - 1) * 20).toBeLessThanOrEqual(1000);
    expect((lines.length - 1) * 20).toBeGreaterThan(1000 - 60);
    expect(lines.length - 1 + dropped).toBe(6000);
    expect(dropped).toBe(queue.dropped);
    // Everything written or waiting has left the count: the full limit is free again.
    sink.stall();
    queue.write(batch("y", 1, 20));
    for (let i = 0; i < 49; i++) queue.write(batch(`z${i}-`, 1, 20));
    expect(queue.dropped).toBe(dropped);
  });

  test("a batch is used or copied before write returns: the caller may fill its buffer again", async () => {
    const sink = new FakeSink();
    const queue = new LogQueue(sink, 100, notice);
    sink.stall();
    queue.write(batch("a", 1));
    const buffer = batch("b", 1);
    queue.write(buffer);
    buffer.set(batch("c", 1));
    await sink.resume();
    expect(sink.lines()).toEqual(["a1.......", "b1......."]);
  });

  test("drain hands what waits to the sink at once (before the process exits), notice included", () => {
    const sink = new FakeSink();
    const queue = new LogQueue(sink, 20, notice);
    sink.stall();
    queue.write(batch("a", 1));
    queue.write(batch("b", 1));
    queue.write(batch("c", 1));
    queue.drain();
    expect(sink.lines()).toEqual(["a1.......", "dropped 1", "b1......."]);
  });

  test("a write that fails (the reader is gone) loses its lines, not the queue: the next batches are written", async () => {
    let fail = true;
    const written: string[] = [];
    let reject: (error: Error) => void = () => {};
    const sink: Sink = {
      write(chunk) {
        written.push(String(typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk as Uint8Array)));
        return 0;
      },
      flush() {
        return fail ? new Promise<number>((_, r) => (reject = r)) : 0;
      },
    };
    const queue = new LogQueue(sink, 100, notice);
    const stderr = process.stderr.write;
    const said: string[] = [];
    process.stderr.write = ((text: string) => said.push(text) > 0) as typeof process.stderr.write;
    try {
      queue.write(batch("a", 1));
      queue.write(batch("b", 1));
      fail = false;
      reject(new Error("EPIPE: broken pipe, write"));
      await Bun.sleep(0);
      queue.write(batch("c", 1));
    } finally {
      process.stderr.write = stderr;
    }
    expect(written.join("")).toBe("a1.......\nb1.......\nc1.......\n");
    expect(said.join("")).toContain("cannot write to standard output (EPIPE: broken pipe, write)");
  });
});
