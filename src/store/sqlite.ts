/**
 * The local store: `<cache_dir>/cachish.sqlite` through bun:sqlite. WAL with synchronous=FULL,
 * so that a value is on disk when put() returns (it is answered only then) and a crash or a
 * power cut in the middle of a write leaves the previous value in place. The folder is 0700
 * and the database files 0600, the WAL and SHM files included.
 *
 * A value is kept in chunks of at most 1 MiB (schema 3), so that writing one holds about one
 * chunk's copies at a time (bun:sqlite's bound copy, SQLite's record), not two more copies of
 * the whole value: a 16 MiB value cost 35 MB more to write as one blob. Its row has its size
 * and the SHA-256 of its bytes: a value read back that is short, long or whose digest does not
 * match is corrupt, logged and left out. Hashing is linear and fast; parsing every stored value
 * as JSON at each start was neither (seconds for a few MB).
 *
 * A file removed or replaced under a running daemon (SPEC 5.4) is noticed before the next
 * write by its device and inode; a new one is made and given every value the store holds.
 */
import { Database } from "bun:sqlite";
import { accessSync, chmodSync, constants, existsSync, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../log";
import { describeError } from "../error-text";
import { fileProblem } from "../files";
import { parseJson } from "../json";
import { changeOf, type Identity, identify, statOf, SUFFIXES } from "./file-identity";
import { type Store, StoreError, type Stored } from "./store";

export const STORE_FILE = "cachish.sqlite";

/** The database file of a `cache_dir`. */
export const storeFile = (dir: string) => join(dir, STORE_FILE);
/**
 * 1: item_values (path, value, fetched_at). 2: and sha256, the digest of the value's bytes.
 * 3: item_values (path, fetched_at, size, sha256), the bytes in value_chunks (path, seq, bytes).
 */
const SCHEMA_VERSION = 3;
/** The most bytes of a value in one row of value_chunks. */
export const CHUNK_BYTES = 1024 * 1024;

type Item = { path: string; fetched_at: number; size: number; sha256: Uint8Array | null };
const ITEM = "SELECT path, fetched_at, size, sha256 FROM item_values";

const digest = (bytes: Uint8Array) => new Bun.CryptoHasher("sha256").update(bytes).digest();

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

  /** Every sound stored value; a corrupt one is logged and left out. */
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
    // Not a removed file: a closed store is not opened again behind its owner's back.
    if (this.#closed) throw new StoreError(`the store ${this.file} is closed`);
    // Held before it is written: a value answered although its write failed still goes into a new file.
    this.#held.set(path, stored);
    const change = this.#db ? changeOf(this.file, this.#identity) : undefined;
    if (this.#db && change === undefined) {
      const db = this.#db;
      db.transaction(() => write(db, path, stored)).immediate();
      return;
    }
    this.#recreate(change);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#db?.close(false);
    this.#db = undefined;
  }

  #sound(db: Database, item: Item): Stored | undefined {
    const value = readChunks(db, item.path, item.size);
    // A missing digest is corruption too: a row written around cachish, or one of schema 1 that was not JSON.
    if (value === undefined || item.sha256 === null || !digest(value).equals(item.sha256)) {
      this.log.error("a stored value is corrupt; it is ignored until the next good fetch", { item: item.path, store: this.file });
      return undefined;
    }
    const stored = { value, fetchedAt: item.fetched_at };
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
        for (const [path, stored] of this.#held) write(db, path, stored);
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

/**
 * Replaces the value of `path`: each chunk written from a view of the value (no copy of it is
 * made) over the old chunk of its place, the old chunks past its end deleted, then its row.
 * Always inside the caller's transaction, so that the previous value stays whole until the new
 * one is committed. Written over, not deleted and inserted: SQLite then writes only the pages
 * that change, and a refresh that brings the same 16 MiB took ~25 ms, against ~140.
 */
function write(db: Database, path: string, stored: Stored, sha256: Uint8Array | null = digest(stored.value)): void {
  const { value } = stored;
  const insert = db.query<never, [string, number, Uint8Array]>("INSERT INTO value_chunks (path, seq, bytes) VALUES (?, ?, ?) ON CONFLICT (path, seq) DO UPDATE SET bytes = excluded.bytes");
  const chunks = Math.ceil(value.length / CHUNK_BYTES);
  for (let seq = 0; seq < chunks; seq++) insert.run(path, seq, value.subarray(seq * CHUNK_BYTES, (seq + 1) * CHUNK_BYTES));
  db.query("DELETE FROM value_chunks WHERE path = ? AND seq >= ?").run(path, chunks);
  db.query(
    "INSERT INTO item_values (path, fetched_at, size, sha256) VALUES (?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET fetched_at = excluded.fetched_at, size = excluded.size, sha256 = excluded.sha256",
  ).run(path, stored.fetchedAt, value.length, sha256);
}

/**
 * The chunks of `path` in order, copied into one buffer of `size` bytes; undefined when they
 * do not add up to `size` (one missing, or the row altered). Their sum is asked first (SQLite
 * tells a blob's length without reading it), so that a wrong size allocates nothing.
 */
function readChunks(db: Database, path: string, size: number): Uint8Array | undefined {
  const sum = db.query<{ total: number }, [string]>("SELECT coalesce(sum(length(bytes)), 0) AS total FROM value_chunks WHERE path = ?").get(path);
  if (sum?.total !== size) return undefined;
  const value = new Uint8Array(size);
  let at = 0;
  for (const { bytes } of db.query<{ bytes: Uint8Array<ArrayBuffer> }, [string]>("SELECT bytes FROM value_chunks WHERE path = ? ORDER BY seq").iterate(path)) {
    value.set(bytes, at);
    at += bytes.length;
    // Each chunk is a buffer of its own: detached, its memory is freed now, not at the next
    // full collection (a start with 50 MB stored peaked 23 MB higher without this).
    bytes.buffer.transfer(0);
  }
  return value;
}

function createTables(db: Database): void {
  db.run("CREATE TABLE IF NOT EXISTS item_values (path TEXT PRIMARY KEY, fetched_at INTEGER NOT NULL, size INTEGER NOT NULL, sha256 BLOB)");
  db.run("CREATE TABLE IF NOT EXISTS value_chunks (path TEXT NOT NULL, seq INTEGER NOT NULL, bytes BLOB NOT NULL, PRIMARY KEY (path, seq))");
}

/**
 * Schemas 1 and 2 to 3: each value moves into chunks, one value at a time (the upgrade costs
 * the largest value in memory, not all of them). Schema 2's digests are kept as they are, so
 * a value that does not match its digest is still corrupt at load. Schema 1 had none: each
 * value is checked once, the way every start used to check it (is it JSON?), and a sound one
 * gets its digest; one that is not gets none, and is corrupt at load.
 */
function upgrade(db: Database, from: number, file: string, log: Logger): void {
  db.run("ALTER TABLE item_values RENAME TO item_values_old");
  createTables(db);
  const paths = db.query<{ path: string }, []>("SELECT path FROM item_values_old").all();
  const read = db.query<{ value: Uint8Array; fetched_at: number; sha256: Uint8Array | null }, [string]>(
    `SELECT CAST(value AS BLOB) AS value, fetched_at, ${from === 1 ? "NULL" : "sha256"} AS sha256 FROM item_values_old WHERE path = ?`,
  );
  for (const { path } of paths) {
    const { value, fetched_at, sha256 } = read.get(path)!;
    write(db, path, { value, fetchedAt: fetched_at }, from === 1 ? (isJson(value) ? digest(value) : null) : sha256);
  }
  db.run("DROP TABLE item_values_old");
  log.info("store upgraded: each value in chunks, so that writing a large one costs little memory", { store: file, values: paths.length, from_schema: from, schema: SCHEMA_VERSION });
}

function isJson(bytes: Uint8Array): boolean {
  try {
    parseJson(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    return true;
  } catch {
    return false;
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
        throw new StoreError(`cannot write the store ${file}: ${fileProblem(error)}; the daemon's user must be able to write it`);
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
