/**
 * The durable copy of every item's last good value. Small on purpose: SQLite stands behind
 * it on every host, and the fleet's tier (fleet.ts) wraps it in the same shape, which is why
 * the methods are asynchronous although SQLite's are not.
 */
import type { Item } from "../config/types";

export type Stored = {
  /** The bytes to answer with: JSON as 1.x wrote it. */
  value: Uint8Array;
  /** When the value was fetched, in milliseconds since the epoch. */
  fetchedAt: number;
  /**
   * The SHA-256 of `value`, computed once when the value is made or read: the store's proof
   * that it reads back what it wrote, and the value's `ETag` for clients (SPEC 5.8).
   */
  sha256: Uint8Array;
};

export const digest = (bytes: Uint8Array): Buffer => new Bun.CryptoHasher("sha256").update(bytes).digest();

/** A value fetched at `fetchedAt`, with its digest. */
export function storedOf(value: Uint8Array, fetchedAt: number): Stored {
  return { value, fetchedAt, sha256: digest(value) };
}

/** A fetch the store saved: it holds `stored`, as good as what the upstream would have given. */
export type Held = { kind: "held"; stored: Stored };

/** Hits are answered from memory, not from here: the resolver reads the store at start and at a reload. */
export interface Store {
  get(path: string): Promise<Stored | undefined>;
  /** Durable when the promise resolves: the value may then be sent. */
  put(path: string, stored: Stored): Promise<void>;
  close(): Promise<void>;
  /**
   * A store shared with other hosts takes part in each fetch of an item: it may save it
   * (another host's value), make it wait for another host's fetch and fail, or run `fetch`,
   * which asks the upstream and puts what it gets. Without it, `fetch` runs alone.
   */
  share?<T>(item: Item, fetch: () => Promise<T>): Promise<T | Held>;
}

/** The store cannot be used: cachish must not start (or serve) without one. */
export class StoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StoreError";
  }
}
