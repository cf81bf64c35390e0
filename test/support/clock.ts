import type { Clock, Timer } from "../../src/resolver";

/** Lets the promises that a step of time released run to their next await. */
export const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
};

/** A clock that moves only when the test says so; its timers fire as it passes them. */
export class FakeClock implements Clock {
  t = 1_700_000_000_000;
  #timers: { at: number; fire: () => void; cancelled: boolean }[] = [];

  now(): number {
    return this.t;
  }

  timer(ms: number): Timer {
    const entry = { at: this.t + ms, fire: () => {}, cancelled: false };
    const done = new Promise<void>((resolve) => (entry.fire = resolve));
    this.#timers.push(entry);
    return { done, cancel: () => void (entry.cancelled = true) };
  }

  /** Moves time forward by `ms`, firing each timer on the way at its own time. */
  async advance(ms: number): Promise<void> {
    const target = this.t + ms;
    // What the test released before moving time goes first, as it would in real time.
    await settle();
    for (;;) {
      const due = this.#timers.filter((e) => !e.cancelled && e.at <= target).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.#timers.splice(this.#timers.indexOf(due), 1);
      this.t = Math.max(this.t, due.at);
      due.fire();
      await settle();
    }
    this.t = target;
    await settle();
  }

  pending(): number {
    return this.#timers.filter((e) => !e.cancelled).length;
  }
}
