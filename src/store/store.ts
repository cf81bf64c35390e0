/**
 * The durable copy of every item's last good value. Small on purpose: SQLite stands behind
 * it on every host, and the fleet's tier (fleet.ts) wraps it in the same shape, which is why
 * the methods are asynchronous although SQLite's are not.
 */
import type { Validators } from "../backends/fetch";
import type { Item } from "../config/types";

/**
 * The upstream's validators of a value (SPEC 5.8) and `basis`, the digest of the item's
 * definition they were obtained under (backends/index.ts): a later fetch sends them only while
 * the item still makes its value the same way.
 */
export type KeptValidators = Validators & { basis: string };

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
  /** What the next fetch asks the upstream with, when it sent an `ETag` or `Last-Modified`. */
  validators?: KeptValidators;
};

export const digest = (bytes: Uint8Array): Buffer => new Bun.CryptoHasher("sha256").update(bytes).digest();

/** Whether two values have the same bytes (by their digests): a renewal, or no change for those who wait on one. */
export function sameBytes(a: Stored | undefined, b: Stored | undefined): boolean {
  return a !== undefined && b !== undefined && Buffer.from(a.sha256).equals(b.sha256);
}

/** A value fetched at `fetchedAt`, with its digest (and its validators, if any). */
export function storedOf(value: Uint8Array, fetchedAt: number, validators?: KeptValidators): Stored {
  return { value, fetchedAt, sha256: digest(value), ...(validators ? { validators } : {}) };
}

/** A fetch the store saved: it holds `stored`, as good as what the upstream would have given. */
export type Held = { kind: "held"; stored: Stored };

/** Hits are answered from memory, not from here: the resolver reads the store at start and at a reload. */
export interface Store {
  get(path: string): Promise<Stored | undefined>;
  /** Durable when the promise resolves: the value may then be sent. */
  put(path: string, stored: Stored): Promise<void>;
  /**
   * As put(), for a value the upstream said is unchanged (a 304): `stored` has the bytes of the
   * value held, a new fetch time and validators. The bytes are not written again where the
   * store holds them already.
   */
  renew(path: string, stored: Stored): Promise<void>;
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
