/**
 * The local store: `<cache_dir>/cachish.sqlite` through bun:sqlite. WAL with synchronous=FULL,
 * so that a value is on disk when put() returns (it is answered only then) and a crash or a
 * power cut in the middle of a write leaves the previous value in place. The folder is 0700
 * and the database files 0600, the WAL and SHM files included.
 *
 * A value is kept in chunks of at most 1 MiB beside its size, its SHA-256 and the upstream's
 * validators (sqlite-layout.ts); a 304 renews its row, not its chunks. A value read back that
 * is short, long or whose digest does not match is corrupt, logged and left out. Hashing is
 * linear and fast; parsing every stored value as JSON at each start was neither (seconds for
 * a few MB).
 *
 * A file removed or replaced under a running daemon (SPEC 5.4) is noticed before the next
 * write by its device and inode; a new one is made and given every value the store holds.
 */
import { Database } from "bun:sqlite";
import { accessSync, chmodSync, constants, existsSync, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../log";
import { describeError, systemProblem } from "../error-text";
import { changeOf, type Identity, identify, statOf, SUFFIXES } from "./file-identity";
import { createTables, readValue, renewValue, SCHEMA_VERSION, upgrade, validatorsOf, writeValue } from "./sqlite-layout";
import { digest, type Store, StoreError, type Stored } from "./store";

export const STORE_FILE = "cachish.sqlite";

/** The database file of a `cache_dir`. */
export const storeFile = (dir: string) => join(dir, STORE_FILE);

type Item = { path: string; fetched_at: number; size: number; sha256: Uint8Array | null; etag: string | null; last_modified: string | null; basis: string | null };
const ITEM = "SELECT path, fetched_at, size, sha256, etag, last_modified, basis FROM item_values";

export class SqliteStore implements Store {
  readonly file: string;
  /** Undefined once the file went away and a new one could not be made: each write tries again. */
  #db: Database | undefined;
  /** Which files the connection has open (device and inode): another file at a path, or none, is not this store. */
  #identity: Identity;
  /**
   * Every value read or written since open, by reference (no copy): what a new file is given
   * when this one is removed or replaced while the daemon runs (SPEC 5.4).
   */
  readonly #held = new Map<string, Stored>();
  #closed = false;

  private constructor(
    readonly dir: string,
    private readonly log: Logger,
  ) {
    this.file = storeFile(dir);
    this.#db = openIn(dir, log);
    this.#identity = identify(this.file);
  }

  /**
   * Opens (or creates) the store in `dir`. A file that is not a sound SQLite database is
   * moved aside and replaced by an empty store, so that the daemon still starts; a folder or
   * file that cannot be created or written is a StoreError.
   */
  static open(dir: string, log: Logger): SqliteStore {
    return new SqliteStore(dir, log);
  }

  /** Every sound stored value, read once at start; a corrupt one is logged and left out. */
  async all(): Promise<Map<string, Stored>> {
    if (!this.#db) return new Map(this.#held);
    const all = new Map<string, Stored>();
    for (const item of this.#db.query<Item, []>(ITEM).iterate()) {
      const stored = this.#sound(this.#db, item);
      if (stored) all.set(item.path, stored);
    }
    return all;
  }

  /** The sound stored value of `path`; a corrupt one is logged and left out. */
  async get(path: string): Promise<Stored | undefined> {
    if (!this.#db) return this.#held.get(path);
    const item = this.#db.query<Item, [string]>(`${ITEM} WHERE path = ?`).get(path);
    return item ? this.#sound(this.#db, item) : undefined;
  }

  async put(path: string, stored: Stored): Promise<void> {
    this.#write(path, stored, (db) => db.transaction(() => writeValue(db, path, stored, stored.sha256)).immediate());
  }

  /** Only the row's fetch time and validators are written, when it holds these bytes; else the whole value. */
  async renew(path: string, stored: Stored): Promise<void> {
    this.#write(path, stored, (db) => db.transaction(() => renewValue(db, path, stored) || writeValue(db, path, stored, stored.sha256)).immediate());
  }

  #write(path: string, stored: Stored, write: (db: Database) => void): void {
    // Not a removed file: a closed store is not opened again behind its owner's back.
    if (this.#closed) throw new StoreError(`the store ${this.file} is closed`);
    // Held before it is written: a value answered although its write failed still goes into a new file.
    this.#held.set(path, stored);
    const change = this.#db ? changeOf(this.file, this.#identity) : undefined;
    if (this.#db && change === undefined) write(this.#db);
    else this.#recreate(change);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#db?.close(false);
    this.#db = undefined;
  }

  #sound(db: Database, item: Item): Stored | undefined {
    const value = readValue(db, item.path, item.size);
    // A missing digest is corruption too: a row written around cachish, or one of schema 1 that was not JSON.
    if (value === undefined || item.sha256 === null || !digest(value).equals(item.sha256)) {
      this.log.error("a stored value is corrupt; it is ignored until the next good fetch", { item: item.path, store: this.file });
      return undefined;
    }
    const validators = validatorsOf(item);
    const stored: Stored = { value, fetchedAt: item.fetched_at, sha256: new Uint8Array(item.sha256), ...(validators ? { validators } : {}) };
    this.#held.set(item.path, stored);
    return stored;
  }

  /**
   * The file was removed (an operator's rm, a cleanup job, the whole folder) or another was
   * put in its place: writes would go to a file no later start reads. A new file gets every
   * value held, the one being put included, in one transaction.
   */
  #recreate(change: string | undefined): void {
    if (this.#db) {
      this.log.error("the store was removed or replaced while the daemon ran; writing every value held in memory into a new one", {
        store: this.file,
        change,
        values: this.#held.size,
        fix: `find what removes or replaces files in ${this.dir} (a cleanup job, a tmpfiles.d rule) and keep it away`,
      });
      // Closed before the new file is opened: closing checkpoints into the file it still has
      // open, then removes the -wal and -shm by name, which must not be the new file's yet.
      try {
        this.#db.close(false);
      } catch (error) {
        this.log.warn("could not close the removed store", { store: this.file, cause: describeError(error) });
      }
      this.#db = undefined;
      // A -wal or -shm of the old file left at the path would be read as the new file's (its pages over another database).
      for (const suffix of ["-wal", "-shm"]) {
        const left = statOf(this.file + suffix);
        const old = this.#identity.get(suffix);
        if (left && old && left.dev === old.dev && left.ino === old.ino) rmSync(this.file + suffix, { force: true });
      }
    }
    const db = openIn(this.dir, this.log);
    try {
      db.transaction(() => {
        for (const [path, stored] of this.#held) writeValue(db, path, stored, stored.sha256);
      }).immediate();
    } catch (error) {
      db.close(false);
      throw new StoreError(`cannot write the values held in memory into the new store ${this.file}: ${describeError(error)}`);
    }
    this.#db = db;
    this.#identity = identify(this.file);
    this.log.info("store re-created", { store: this.file, values: this.#held.size });
  }
}

/**
 * The database in `dir`, created when missing. One that is not a sound SQLite database is
 * moved aside and replaced by an empty one.
 */
function openIn(dir: string, log: Logger): Database {
  prepareFolder(dir, log);
  const file = storeFile(dir);
  // Everything the store creates (the database, its -wal and -shm) is for this user only.
  process.umask(0o077);
  try {
    return openDatabase(file, log);
  } catch (error) {
    if (error instanceof StoreError) throw error;
    if (!isCorruption(error)) throw new StoreError(`cannot open the store ${file}: ${describeError(error)}`);
    const aside = `${file}.corrupt-${new Date().toISOString().replace(/[:.]/g, "-")}`;
    for (const suffix of SUFFIXES) {
      if (existsSync(file + suffix)) renameSync(file + suffix, aside + suffix);
    }
    log.error("store corrupt: moved aside, starting with an empty store", { store: file, moved_to: aside, cause: describeError(error) });
    try {
      return openDatabase(file, log);
    } catch (again) {
      throw new StoreError(`cannot create the store ${file}: ${describeError(again)}`);
    }
  }
}

function openDatabase(file: string, log: Logger): Database {
  const created = !existsSync(file);
  const db = new Database(file, { create: true, strict: true });
  try {
    db.run("PRAGMA busy_timeout = 5000");
    db.run("PRAGMA journal_mode = WAL");
    db.run("PRAGMA synchronous = FULL");
    const check = db.query<{ quick_check: string }, []>("PRAGMA quick_check").get();
    if (check?.quick_check !== "ok") throw Object.assign(new Error(`integrity check failed: ${check?.quick_check}`), { code: "SQLITE_CORRUPT" });
    const version = db.query<{ user_version: number }, []>("PRAGMA user_version").get()?.user_version ?? 0;
    if (version > SCHEMA_VERSION) {
      throw new StoreError(`the store ${file} was written by a newer cachish (schema ${version}); this one knows schema ${SCHEMA_VERSION}`);
    }
    // The store must prove writable now, not at the first fetch. One already at this schema
    // is not written to prove it (a write costs every start an fsync): SQLite opens a file it
    // cannot write read-only without a word, and access(2) tells (permissions, a read-only
    // file system, an immutable file).
    if (version === SCHEMA_VERSION) {
      try {
        accessSync(file, constants.W_OK);
      } catch (error) {
        throw new StoreError(`cannot write the store ${file}: ${systemProblem(error)}; the daemon's user must be able to write it`);
      }
    } else {
      db.transaction(() => {
        if (version === 0) createTables(db);
        else upgrade(db, version, file, log);
        db.run(`PRAGMA user_version = ${SCHEMA_VERSION}`);
      }).immediate();
    }
  } catch (error) {
    db.close(false);
    throw error;
  }
  if (created) chmodSync(file, 0o600);
  return db;
}

function prepareFolder(dir: string, log: Logger): void {
  try {
    if (!existsSync(dir)) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      chmodSync(dir, 0o700);
    }
  } catch (error) {
    throw new StoreError(`cannot create the store folder ${dir}: ${describeError(error)}`);
  }
  const mode = statSync(dir).mode;
  if (mode & 0o077) {
    log.warn("the store folder can be read by other users; values may be secrets", { folder: dir, mode: (mode & 0o777).toString(8), fix: `chmod 700 ${dir}` });
  }
}

function isCorruption(error: unknown): boolean {
  const code = (error as { code?: string }).code ?? "";
  return code === "SQLITE_NOTADB" || code.startsWith("SQLITE_CORRUPT");
}
