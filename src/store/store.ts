/**
 * The durable copy of every item's last good value. Small on purpose: SQLite stands behind
 * it on every host, and a tier shared by a fleet of hosts is planned behind the same shape,
 * which is why the methods are asynchronous although SQLite's are not.
 */
export type Stored = {
  /** The bytes to answer with: JSON as 1.x wrote it. */
  value: Uint8Array;
  /** When the value was fetched, in milliseconds since the epoch. */
  fetchedAt: number;
};

export interface Store {
  /** Every stored value, read once at start: hits are answered from memory, not from here. */
  all(): Promise<Map<string, Stored>>;
  get(path: string): Promise<Stored | undefined>;
  /** Durable when the promise resolves: the value may then be sent. */
  put(path: string, stored: Stored): Promise<void>;
  close(): Promise<void>;
}

/** The store cannot be used: cachish must not start (or serve) without one. */
export class StoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StoreError";
  }
}
