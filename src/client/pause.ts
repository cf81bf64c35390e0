/** Pauses between tries: the first short, then doubling up to a bound, until a try goes well. */
export class Backoff {
  #next: number;

  constructor(
    readonly firstMs: number,
    readonly maxMs: number,
  ) {
    this.#next = firstMs;
  }

  /** The pause before the next try; the one after it is twice as long, up to the bound. */
  next(): number {
    const ms = this.#next;
    this.#next = Math.min(ms * 2, this.maxMs);
    return ms;
  }

  reset(): void {
    this.#next = this.firstMs;
  }
}

/** Resolves after `ms`, or at once when `signal` aborts (a watcher told to stop). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done);
  });
}
