/**
 * The local store: `<cache_dir>/cachish.sqlite` through bun:sqlite. WAL with synchronous=FULL,
 * so that a value is on disk when put() returns (it is answered only then) and a crash or a
 * power cut in the middle of a write leaves the previous value in place. The folder is 0700
 * and the database files 0600, the WAL and SHM files included.
 *
 * Each value has the SHA-256 of its bytes beside it (schema 2): a value read back whose digest
 * does not match is corrupt, logged and left out. Hashing is linear and fast; parsing every
 * stored value as JSON at each start was neither (seconds for a few MB).
 */
import { Database } from "bun:sqlite";
import { accessSync, chmodSync, constants, existsSync, mkdirSync, renameSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../log";
import { describeError } from "../error-text";
import { fileProblem } from "../files";
import { parseJson } from "../json";
import { type Store, StoreError, type Stored } from "./store";

export const STORE_FILE = "cachish.sqlite";

/** The database file of a `cache_dir`. */
export const storeFile = (dir: string) => join(dir, STORE_FILE);
/** 1: path, value, fetched_at. 2: and sha256, the digest of the value's bytes. */
const SCHEMA_VERSION = 2;

type Row = { path: string; value: Uint8Array; fetched_at: number; sha256: Uint8Array | null };

const digest = (bytes: Uint8Array) => new Bun.CryptoHasher("sha256").update(bytes).digest();

export class SqliteStore implements Store {
  private constructor(
    private readonly db: Database,
    readonly file: string,
    private readonly log: Logger,
  ) {}

  /**
   * Opens (or creates) the store in `dir`. A file that is not a sound SQLite database is
   * moved aside and replaced by an empty store, so that the daemon still starts; a folder or
   * file that cannot be created or written is a StoreError.
   */
  static open(dir: string, log: Logger): SqliteStore {
    prepareFolder(dir, log);
    const file = storeFile(dir);
    // Everything the store creates (the database, its -wal and -shm) is for this user only.
    process.umask(0o077);
    try {
      return new SqliteStore(openDatabase(file, log), file, log);
    } catch (error) {
      if (error instanceof StoreError) throw error;
      if (!isCorruption(error)) throw new StoreError(`cannot open the store ${file}: ${describeError(error)}`);
      const aside = `${file}.corrupt-${new Date().toISOString().replace(/[:.]/g, "-")}`;
      for (const suffix of ["", "-wal", "-shm"]) {
        if (existsSync(file + suffix)) renameSync(file + suffix, aside + suffix);
      }
      log.error("store corrupt: moved aside, starting with an empty store", { store: file, moved_to: aside, cause: describeError(error) });
      try {
        return new SqliteStore(openDatabase(file, log), file, log);
      } catch (again) {
        throw new StoreError(`cannot create the store ${file}: ${describeError(again)}`);
      }
    }
  }

  /** Every sound stored value; a corrupt one is logged and left out. */
  async all(): Promise<Map<string, Stored>> {
    const all = new Map<string, Stored>();
    for (const row of this.db.query<Row, []>("SELECT path, value, fetched_at, sha256 FROM item_values").iterate()) {
      const stored = this.#sound(row);
      if (stored) all.set(row.path, stored);
    }
    return all;
  }

  /** The sound stored value of `path`; a corrupt one is logged and left out. */
  async get(path: string): Promise<Stored | undefined> {
    const row = this.db.query<Row, [string]>("SELECT path, value, fetched_at, sha256 FROM item_values WHERE path = ?").get(path);
    return row ? this.#sound(row) : undefined;
  }

  async put(path: string, stored: Stored): Promise<void> {
    write(this.db, path, stored);
  }

  #sound(row: Row): Stored | undefined {
    // A missing digest is corruption too: a row written around cachish, or one of schema 1 that was not JSON.
    if (row.sha256 === null || !digest(row.value).equals(row.sha256)) {
      this.log.error("a stored value is corrupt; it is ignored until the next good fetch", { item: row.path, store: this.file });
      return undefined;
    }
    return { value: row.value, fetchedAt: row.fetched_at };
  }

  async close(): Promise<void> {
    this.db.close(false);
  }
}

/** One statement is one transaction: the old row stays until the new one is committed. */
function write(db: Database, path: string, stored: Stored): void {
  db.query(
    "INSERT INTO item_values (path, value, fetched_at, sha256) VALUES (?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET value = excluded.value, fetched_at = excluded.fetched_at, sha256 = excluded.sha256",
  ).run(path, stored.value, stored.fetchedAt, digest(stored.value));
}

/**
 * Schema 1 to 2: each value is checked once, the way every start used to check it (is it
 * JSON?), and a sound one gets its digest. One that is not keeps none, and is corrupt at load.
 */
function addDigests(db: Database, file: string, log: Logger): void {
  db.run("ALTER TABLE item_values ADD COLUMN sha256 BLOB");
  const paths = db.query<{ path: string }, []>("SELECT path FROM item_values").all();
  const read = db.query<{ value: Uint8Array }, [string]>("SELECT value FROM item_values WHERE path = ?");
  const update = db.query<never, [Uint8Array, string]>("UPDATE item_values SET sha256 = ? WHERE path = ?");
  // One value at a time: the migration costs the largest value in memory, not all of them.
  for (const { path } of paths) {
    const { value } = read.get(path)!;
    if (isJson(value)) update.run(digest(value), path);
  }
  log.info("store upgraded: a digest beside each value, so that a start checks values without parsing them", { store: file, values: paths.length, schema: SCHEMA_VERSION });
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
        if (version === 1) addDigests(db, file, log);
        else db.run("CREATE TABLE IF NOT EXISTS item_values (path TEXT PRIMARY KEY, value BLOB NOT NULL, fetched_at INTEGER NOT NULL, sha256 BLOB)");
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
