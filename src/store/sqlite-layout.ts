/**
 * How the local store lays a value out in its SQLite database (schema 4), and how the layouts
 * of older cachish become it. A value is kept in chunks of at most 1 MiB, so that writing one
 * holds about one chunk's copies at a time (bun:sqlite's bound copy, SQLite's record), not two
 * more copies of the whole value: a 16 MiB value cost 36 MB more to write as one blob, ~4 in
 * chunks. Its row has its size and the SHA-256 of its bytes, so that a value read back whole
 * is known to be the one written without parsing it, and the upstream's validators, with which
 * the next fetch asks whether the value changed (SPEC 5.8).
 */
import type { Database } from "bun:sqlite";
import type { Logger } from "../log";
import { isJson } from "../json";
import { digest, type KeptValidators, type Stored } from "./store";

/**
 * 1: item_values (path, value, fetched_at). 2: and sha256, the digest of the value's bytes.
 * 3: item_values (path, fetched_at, size, sha256), the bytes in value_chunks (path, seq, bytes).
 * 4: and etag, last_modified, basis: the validators (NULL when the upstream sent none).
 */
export const SCHEMA_VERSION = 4;
/** The most bytes of a value in one row of value_chunks. */
export const CHUNK_BYTES = 1024 * 1024;

/**
 * Replaces the value of `path`: each chunk written from a view of the value (no copy of it is
 * made) over the old chunk of its place, the old chunks past its end deleted, then its row.
 * Always inside the caller's transaction, so that the previous value stays whole until the new
 * one is committed. Written over, not deleted and inserted: SQLite then writes only the pages
 * that change, and a refresh that brings the same 16 MiB took ~25 ms, against ~140.
 */
export function writeValue(db: Database, path: string, stored: Omit<Stored, "sha256">, sha256: Uint8Array | null): void {
  const { value } = stored;
  const insert = db.query<never, [string, number, Uint8Array]>("INSERT INTO value_chunks (path, seq, bytes) VALUES (?, ?, ?) ON CONFLICT (path, seq) DO UPDATE SET bytes = excluded.bytes");
  const chunks = Math.ceil(value.length / CHUNK_BYTES);
  for (let seq = 0; seq < chunks; seq++) insert.run(path, seq, value.subarray(seq * CHUNK_BYTES, (seq + 1) * CHUNK_BYTES));
  db.query("DELETE FROM value_chunks WHERE path = ? AND seq >= ?").run(path, chunks);
  db.query<never, [string, number, number, Uint8Array | null, ...ValidatorColumns]>(
    `INSERT INTO item_values (path, fetched_at, size, sha256, etag, last_modified, basis) VALUES (?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (path) DO UPDATE SET fetched_at = excluded.fetched_at, size = excluded.size, sha256 = excluded.sha256,
       etag = excluded.etag, last_modified = excluded.last_modified, basis = excluded.basis`,
  ).run(path, stored.fetchedAt, value.length, sha256, ...validatorColumns(stored.validators));
}

/**
 * Gives the row of `path` a new fetch time and validators, if it holds the value whose digest
 * is `sha256`: false when it does not (none, or other bytes that a failed write left), and the
 * whole value must be written.
 */
export function renewValue(db: Database, path: string, stored: Stored): boolean {
  const renewed = db
    .query<never, [number, ...ValidatorColumns, string, Uint8Array]>("UPDATE item_values SET fetched_at = ?, etag = ?, last_modified = ?, basis = ? WHERE path = ? AND sha256 = ?")
    .run(stored.fetchedAt, ...validatorColumns(stored.validators), path, stored.sha256);
  return renewed.changes === 1;
}

type ValidatorColumns = [etag: string | null, lastModified: string | null, basis: string | null];
const validatorColumns = (v: KeptValidators | undefined): ValidatorColumns => [v?.etag ?? null, v?.lastModified ?? null, v ? v.basis : null];

/** The validators of a row, as validatorColumns() wrote them. */
export function validatorsOf(row: { etag: string | null; last_modified: string | null; basis: string | null }): KeptValidators | undefined {
  if (row.basis === null || (row.etag === null && row.last_modified === null)) return undefined;
  return { basis: row.basis, ...(row.etag !== null ? { etag: row.etag } : {}), ...(row.last_modified !== null ? { lastModified: row.last_modified } : {}) };
}

/**
 * The chunks of `path` in order, copied into one buffer of `size` bytes; undefined when they
 * do not add up to `size` (one missing or added, or the row altered). Their sum is asked
 * first (SQLite tells a blob's length without reading it), so that a wrong size allocates
 * nothing.
 */
export function readValue(db: Database, path: string, size: number): Uint8Array | undefined {
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

export function createTables(db: Database): void {
  db.run("CREATE TABLE IF NOT EXISTS item_values (path TEXT PRIMARY KEY, fetched_at INTEGER NOT NULL, size INTEGER NOT NULL, sha256 BLOB, etag TEXT, last_modified TEXT, basis TEXT)");
  db.run("CREATE TABLE IF NOT EXISTS value_chunks (path TEXT NOT NULL, seq INTEGER NOT NULL, bytes BLOB NOT NULL, PRIMARY KEY (path, seq))");
}

/**
 * Schema 3 to 4: three columns more, NULL in every row (no value has validators yet: its next
 * fetch is unconditional), its bytes untouched. Schemas 1 and 2 to 4: each value moves into
 * chunks, one value at a time (the upgrade costs the largest value in memory, not all of
 * them). Schema 2's digests are kept as they are, so
 * a value that does not match its digest is still corrupt at load. Schema 1 had none: each
 * value is checked once, the way every start used to check it (is it JSON?), and a sound one
 * gets its digest; one that is not gets none, and is corrupt at load.
 */
export function upgrade(db: Database, from: number, file: string, log: Logger): void {
  if (from === 3) {
    for (const column of ["etag", "last_modified", "basis"]) db.run(`ALTER TABLE item_values ADD COLUMN ${column} TEXT`);
    const values = db.query<{ n: number }, []>("SELECT count(*) AS n FROM item_values").get()!.n;
    log.info("store upgraded: the upstream's validators are kept beside each value", { store: file, values, from_schema: from, schema: SCHEMA_VERSION });
    return;
  }
  db.run("ALTER TABLE item_values RENAME TO item_values_old");
  createTables(db);
  const paths = db.query<{ path: string }, []>("SELECT path FROM item_values_old").all();
  const read = db.query<{ value: Uint8Array; fetched_at: number; sha256: Uint8Array | null }, [string]>(
    `SELECT CAST(value AS BLOB) AS value, fetched_at, ${from === 1 ? "NULL" : "sha256"} AS sha256 FROM item_values_old WHERE path = ?`,
  );
  for (const { path } of paths) {
    const { value, fetched_at, sha256 } = read.get(path)!;
    writeValue(db, path, { value, fetchedAt: fetched_at }, from === 1 ? (isJson(value) ? digest(value) : null) : sha256);
  }
  db.run("DROP TABLE item_values_old");
  log.info("store upgraded: each value in chunks, so that writing a large one costs little memory", { store: file, values: paths.length, from_schema: from, schema: SCHEMA_VERSION });
}
