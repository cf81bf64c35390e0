/**
 * The local store: `<cache_dir>/cachish.sqlite` through bun:sqlite. WAL with synchronous=FULL,
 * so that a value is on disk when put() returns (it is answered only then) and a crash or a
 * power cut in the middle of a write leaves the previous value in place. The folder is 0700
 * and the database files 0600, the WAL and SHM files included.
 */
import { Database } from "bun:sqlite";
import { accessSync, chmodSync, constants, existsSync, mkdirSync, renameSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../log";
import { describeError } from "../error-text";
import { fileProblem } from "../files";
import { type Store, StoreError, type Stored } from "./store";

export const STORE_FILE = "cachish.sqlite";

/** The database file of a `cache_dir`. */
export const storeFile = (dir: string) => join(dir, STORE_FILE);
const SCHEMA_VERSION = 1;

export class SqliteStore implements Store {
  private constructor(
    private readonly db: Database,
    readonly file: string,
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
      return new SqliteStore(openDatabase(file), file);
    } catch (error) {
      if (error instanceof StoreError) throw error;
      if (!isCorruption(error)) throw new StoreError(`cannot open the store ${file}: ${describeError(error)}`);
      const aside = `${file}.corrupt-${new Date().toISOString().replace(/[:.]/g, "-")}`;
      for (const suffix of ["", "-wal", "-shm"]) {
        if (existsSync(file + suffix)) renameSync(file + suffix, aside + suffix);
      }
      log.error("store corrupt: moved aside, starting with an empty store", { store: file, moved_to: aside, cause: describeError(error) });
      try {
        return new SqliteStore(openDatabase(file), file);
      } catch (again) {
        throw new StoreError(`cannot create the store ${file}: ${describeError(again)}`);
      }
    }
  }

  async all(): Promise<Map<string, Stored>> {
    const rows = this.db.query<{ path: string; value: Uint8Array; fetched_at: number }, []>("SELECT path, value, fetched_at FROM item_values").all();
    return new Map(rows.map((row) => [row.path, { value: new Uint8Array(row.value), fetchedAt: row.fetched_at }]));
  }

  async get(path: string): Promise<Stored | undefined> {
    const row = this.db.query<{ value: Uint8Array; fetched_at: number }, [string]>("SELECT value, fetched_at FROM item_values WHERE path = ?").get(path);
    return row ? { value: new Uint8Array(row.value), fetchedAt: row.fetched_at } : undefined;
  }

  async put(path: string, stored: Stored): Promise<void> {
    // One statement is one transaction: the old row stays until the new one is committed.
    this.db
      .query("INSERT INTO item_values (path, value, fetched_at) VALUES (?, ?, ?) ON CONFLICT (path) DO UPDATE SET value = excluded.value, fetched_at = excluded.fetched_at")
      .run(path, stored.value, stored.fetchedAt);
  }

  async close(): Promise<void> {
    this.db.close(false);
  }
}

function openDatabase(file: string): Database {
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
        db.run("CREATE TABLE IF NOT EXISTS item_values (path TEXT PRIMARY KEY, value BLOB NOT NULL, fetched_at INTEGER NOT NULL)");
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
