/**
 * The SQLite store in-process, in a temp folder: what it keeps, in chunks of at most 1 MiB, how
 * it tells a corrupt value (its size and the SHA-256 of its bytes beside it), its schema's
 * upgrades, and what a large write costs in memory.
 */
import { storedOf } from "../../src/store/store";
import { describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createLogger } from "../../src/log";
import { SqliteStore } from "../../src/store/sqlite";
import { CHUNK_BYTES } from "../../src/store/sqlite-layout";
import type { Stored } from "../../src/store/store";
import { tempDir } from "../support/temp";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const bytes = (s: string) => new TextEncoder().encode(s);

function logged() {
  const written: string[] = [];
  const log = createLogger({ format: "logfmt", level: "debug" }, (text) => written.push(...text.trimEnd().split("\n")));
  /** The log lines so far (the logger gathers them until the next turn of the event loop). */
  const lines = () => (log.flush(), written);
  return { log, lines };
}

/** The database of a store folder, opened around cachish, as an operator's sqlite3 would. */
const raw = (dir: string) => new Database(join(dir, "cachish.sqlite"), { strict: true });

/** What the file holds, read around cachish: each item's chunks joined in order, as text. */
function contents(dir: string): [string, string][] {
  const db = raw(dir);
  const rows = db.query<{ path: string; bytes: Uint8Array }, []>("SELECT path, bytes FROM item_values JOIN value_chunks USING (path) ORDER BY path, seq").all();
  db.close();
  const joined = new Map<string, string>();
  for (const { path, bytes } of rows) joined.set(path, (joined.get(path) ?? "") + text(bytes));
  return [...joined];
}

/** `size` bytes that differ from chunk to chunk and within each (a chunk out of place shows). */
function pattern(size: number, seed = 1): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed;
  for (let i = 0; i < size; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

const MiB = 1024 * 1024;

/**
 * How far the process's peak RSS rises during `run` over its RSS before it: VmHWM, reset to the
 * current RSS just before (Linux's /proc/self/clear_refs).
 */
async function peakGrowth(run: () => Promise<unknown>): Promise<number> {
  Bun.gc(true);
  const before = process.memoryUsage.rss();
  writeFileSync("/proc/self/clear_refs", "5");
  await run();
  return Number(/VmHWM:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"))![1]) * 1024 - before;
}

describe("the store", () => {
  test("a value whose bytes do not match their digest, or that has none, is corrupt: logged and left out", async () => {
    const dir = tempDir();
    const { log, lines } = logged();
    const store = SqliteStore.open(dir, log);
    for (const path of ["/sound", "/altered", "/no-digest"]) await store.put(path, storedOf(bytes(`{"path": "${path}"}`), 1));
    await store.close();
    const db = raw(dir);
    // Still valid JSON: only the digest tells.
    db.run("UPDATE value_chunks SET bytes = ? WHERE path = '/altered'", [bytes('{"path": "/elsewhere"}')]);
    db.run("UPDATE item_values SET size = 22 WHERE path = '/altered'");
    db.run("UPDATE item_values SET sha256 = NULL WHERE path = '/no-digest'");
    db.run("INSERT INTO item_values (path, fetched_at, size) VALUES ('/written-around', 1, 9)");
    db.run("INSERT INTO value_chunks (path, seq, bytes) VALUES ('/written-around', 0, ?)", [bytes("{not json")]);
    db.close();

    const again = SqliteStore.open(dir, log);
    const all = await again.all();
    expect([...all.keys()]).toEqual(["/sound"]);
    expect(text(all.get("/sound")!.value)).toBe('{"path": "/sound"}');
    expect(await again.get("/altered")).toBeUndefined();
    expect(text((await again.get("/sound"))!.value)).toBe('{"path": "/sound"}');
    const corrupt = lines().filter((l) => l.includes('msg="a stored value is corrupt; it is ignored until the next good fetch"'));
    expect(corrupt.map((l) => [/level=(\w+)/.exec(l)?.[1], /item=(\S+)/.exec(l)?.[1]])).toEqual([
      ["error", "/altered"],
      ["error", "/no-digest"],
      ["error", "/written-around"],
      ["error", "/altered"],
    ]);
    // No line carries a value.
    expect(lines().join("\n")).not.toContain("elsewhere");
    // A good write repairs it.
    await again.put("/altered", storedOf(bytes('{"path": "/altered"}'), 2));
    expect(text((await again.get("/altered"))!.value)).toBe('{"path": "/altered"}');
    await again.close();
  });

  test("writes to a store nobody touched re-create nothing; a removed one is re-created with every value held; a closed one refuses", async () => {
    const dir = tempDir();
    const { log, lines } = logged();
    const store = SqliteStore.open(dir, log);
    for (let n = 0; n < 5; n++) await store.put(`/${n % 2}`, storedOf(bytes(String(n)), n));
    expect(lines().filter((l) => l.includes("level=error"))).toEqual([]);

    rmSync(dir, { recursive: true });
    await store.put("/2", storedOf(bytes("2"), 9));
    expect(lines().filter((l) => l.includes("level=error")).map((l) => /change="?([^"]+)"? /.exec(l)?.[1])).toEqual(["folder removed"]);
    expect(contents(dir)).toEqual([
      ["/0", "4"],
      ["/1", "3"],
      ["/2", "2"],
    ]);
    await store.close();
    await expect(store.put("/3", storedOf(bytes("3"), 10))).rejects.toThrow("is closed");
  });

  test("a store of schema 1 is upgraded once: each value that is JSON gets its digest, one that is not stays corrupt", async () => {
    const dir = tempDir();
    const db = raw(dir);
    db.run("PRAGMA journal_mode = WAL");
    db.run("CREATE TABLE item_values (path TEXT PRIMARY KEY, value BLOB NOT NULL, fetched_at INTEGER NOT NULL)");
    db.run("INSERT INTO item_values VALUES ('/json', ?, 123)", [bytes('{"id": 12345678901234567890}')]);
    db.run("INSERT INTO item_values VALUES ('/broken', ?, 456)", [bytes('{"id": 1')]);
    db.run("INSERT INTO item_values VALUES ('/latin1', ?, 789)", [new Uint8Array([0x22, 0xe9, 0x22])]);
    db.run("PRAGMA user_version = 1");
    db.close();

    const { log, lines } = logged();
    const store = SqliteStore.open(dir, log);
    const all = await store.all();
    expect([...all.keys()]).toEqual(["/json"]);
    expect(text(all.get("/json")!.value)).toBe('{"id": 12345678901234567890}');
    expect(all.get("/json")!.fetchedAt).toBe(123);
    await store.close();
    const upgraded = lines().filter((l) => l.includes("store upgraded"));
    expect(upgraded).toHaveLength(1);
    expect(upgraded[0]).toContain("values=3");
    expect(lines().filter((l) => l.includes("a stored value is corrupt")).map((l) => /item=(\S+)/.exec(l)?.[1])).toEqual(["/broken", "/latin1"]);

    const check = raw(dir);
    expect(check.query<{ user_version: number }, []>("PRAGMA user_version").get()!.user_version).toBe(4);
    check.close();
    // Once: the next start neither upgrades nor parses.
    const second = logged();
    const reopened = SqliteStore.open(dir, second.log);
    expect([...(await reopened.all()).keys()]).toEqual(["/json"]);
    await reopened.close();
    expect(second.lines().filter((l) => l.includes("store upgraded"))).toEqual([]);
  });
  test("a value is kept in chunks of at most 1 MiB, read back whole and in order, at any size; a value that shrinks leaves none of its old chunks", async () => {
    const dir = tempDir();
    const { log, lines } = logged();
    const store = SqliteStore.open(dir, log);
    const sizes = [0, 1, CHUNK_BYTES - 1, CHUNK_BYTES, CHUNK_BYTES + 1, 2.5 * MiB + 1];
    const values = new Map(sizes.map((size, n) => [`/${size}`, pattern(size, n + 1)]));
    for (const [path, value] of values) await store.put(path, storedOf(value, value.length));

    const chunks = (path: string) => {
      const db = raw(dir);
      const rows = db.query<{ seq: number; size: number }, [string]>("SELECT seq, length(bytes) AS size FROM value_chunks WHERE path = ? ORDER BY seq").all(path);
      db.close();
      return rows;
    };
    expect(chunks(`/${2.5 * MiB + 1}`)).toEqual([
      { seq: 0, size: MiB },
      { seq: 1, size: MiB },
      { seq: 2, size: MiB / 2 + 1 },
    ]);
    expect(chunks(`/${CHUNK_BYTES}`)).toEqual([{ seq: 0, size: MiB }]);
    expect(chunks(`/${CHUNK_BYTES + 1}`)).toEqual([
      { seq: 0, size: MiB },
      { seq: 1, size: 1 },
    ]);
    expect(chunks("/0")).toEqual([]);

    const again = SqliteStore.open(dir, log);
    const all = await again.all();
    expect([...all.keys()].sort()).toEqual([...values.keys()].sort());
    for (const [path, value] of values) {
      expect({ path, equal: Buffer.from(all.get(path)!.value).equals(value), fetchedAt: all.get(path)!.fetchedAt }).toEqual({ path, equal: true, fetchedAt: value.length });
      expect({ path, equal: Buffer.from((await again.get(path))!.value).equals(value) }).toEqual({ path, equal: true });
    }

    // Shrinking and growing in place: the old chunks go, the new ones are the only ones.
    const big = `/${2.5 * MiB + 1}`;
    await again.put(big, storedOf(bytes('"small now"'), 7));
    expect(chunks(big)).toEqual([{ seq: 0, size: 11 }]);
    expect(text((await again.get(big))!.value)).toBe('"small now"');
    const grown = pattern(CHUNK_BYTES + 5, 99);
    await again.put("/1", storedOf(grown, 8));
    expect(chunks("/1").map((c) => c.size)).toEqual([MiB, 5]);

    // A store re-created after its folder went away gets every value held, in chunks too.
    rmSync(dir, { recursive: true });
    await again.put("/0", storedOf(bytes("0"), 9));
    expect(chunks(`/${CHUNK_BYTES - 1}`)).toEqual([{ seq: 0, size: MiB - 1 }]);
    expect(chunks("/1").map((c) => c.size)).toEqual([MiB, 5]);
    await again.close();
    const third = SqliteStore.open(dir, log);
    const after = await third.all();
    expect(Buffer.from(after.get("/1")!.value).equals(grown)).toBe(true);
    expect(Buffer.from(after.get(`/${CHUNK_BYTES + 1}`)!.value).equals(values.get(`/${CHUNK_BYTES + 1}`)!)).toBe(true);
    expect(text(after.get(big)!.value)).toBe('"small now"');
    await third.close();
    expect(lines().filter((l) => l.includes("a stored value is corrupt"))).toEqual([]);
  });

  test("a chunk missing, altered, added or out of place, or a size that does not add up, is corruption: logged and left out", async () => {
    const dir = tempDir();
    const { log, lines } = logged();
    const store = SqliteStore.open(dir, log);
    const value = pattern(3 * MiB, 5);
    const damaged = ["/missing", "/altered", "/added", "/swapped", "/huge-size", "/short-size"];
    for (const path of ["/sound", ...damaged]) await store.put(path, storedOf(value, 1));
    await store.close();
    const db = raw(dir);
    db.run("DELETE FROM value_chunks WHERE path = '/missing' AND seq = 1");
    const flipped = pattern(MiB, 5);
    flipped[12345]! ^= 1;
    db.run("UPDATE value_chunks SET bytes = ? WHERE path = '/altered' AND seq = 0", [flipped]);
    db.run("INSERT INTO value_chunks (path, seq, bytes) VALUES ('/added', 3, ?)", [bytes("x")]);
    // The same bytes, the same sizes: only their order is wrong.
    db.run("UPDATE value_chunks SET seq = -1 WHERE path = '/swapped' AND seq = 0");
    db.run("UPDATE value_chunks SET seq = 0 WHERE path = '/swapped' AND seq = 2");
    db.run("UPDATE value_chunks SET seq = 2 WHERE path = '/swapped' AND seq = -1");
    db.run("UPDATE item_values SET size = 1e15 WHERE path = '/huge-size'");
    db.run("UPDATE item_values SET size = size - 1 WHERE path = '/short-size'");
    db.close();

    const again = SqliteStore.open(dir, log);
    const all = await again.all();
    expect([...all.keys()]).toEqual(["/sound"]);
    expect(Buffer.from(all.get("/sound")!.value).equals(value)).toBe(true);
    for (const path of damaged) expect(await again.get(path)).toBeUndefined();
    const corrupt = lines().filter((l) => l.includes('msg="a stored value is corrupt; it is ignored until the next good fetch"'));
    expect(corrupt.map((l) => [/level=(\w+)/.exec(l)?.[1], /item=(\S+)/.exec(l)?.[1]])).toEqual([...damaged, ...damaged].map((path) => ["error", path]));
    // A good write repairs one.
    await again.put("/missing", storedOf(bytes('"whole"'), 2));
    expect(text((await again.get("/missing"))!.value)).toBe('"whole"');
    await again.close();
  });

  test("a write that fails half-way (as a crash would) leaves the previous value whole", async () => {
    const dir = tempDir();
    const store = SqliteStore.open(dir, logged().log);
    const before = pattern(2 * MiB + 3, 11);
    await store.put("/v", storedOf(before, 1));
    // The third chunk of the next write cannot be written: its first two, and the deletion of the old ones, must not stay.
    const db = raw(dir);
    db.run("CREATE TRIGGER half_way BEFORE INSERT ON value_chunks WHEN NEW.seq = 2 BEGIN SELECT RAISE(ABORT, 'the disk went away'); END");
    db.close();
    await expect(store.put("/v", storedOf(pattern(3 * MiB, 12), 2))).rejects.toThrow("the disk went away");
    await store.close();

    const { log, lines } = logged();
    const again = SqliteStore.open(dir, log);
    const stored = (await again.get("/v"))!;
    expect([Buffer.from(stored.value).equals(before), stored.fetchedAt]).toEqual([true, 1]);
    await again.close();
    expect(lines().filter((l) => l.includes("a stored value is corrupt"))).toEqual([]);
  });

  test("a store of schema 2 (one blob and its digest a row) is upgraded once into chunks; its digests are kept, so a corrupt value stays corrupt", async () => {
    const dir = tempDir();
    const db = raw(dir);
    const big = pattern(2.5 * MiB + 1, 3);
    const digest = (value: Uint8Array) => new Bun.CryptoHasher("sha256").update(value).digest();
    // As schema 2 wrote it.
    db.run("PRAGMA journal_mode = WAL");
    db.run("CREATE TABLE IF NOT EXISTS item_values (path TEXT PRIMARY KEY, value BLOB NOT NULL, fetched_at INTEGER NOT NULL, sha256 BLOB)");
    db.run("INSERT INTO item_values VALUES ('/big', ?, 123, ?)", [big, digest(big)]);
    db.run("INSERT INTO item_values VALUES ('/json', ?, 456, ?)", [bytes('{"a": 1}'), digest(bytes('{"a": 1}'))]);
    db.run("INSERT INTO item_values VALUES ('/altered', ?, 789, ?)", [bytes('{"a": 2}'), digest(bytes('{"a": 1}'))]);
    db.run("INSERT INTO item_values VALUES ('/no-digest', ?, 789, NULL)", [bytes('{"a": 3}')]);
    db.run("PRAGMA user_version = 2");
    db.close();

    const { log, lines } = logged();
    const store = SqliteStore.open(dir, log);
    const all = await store.all();
    expect([...all.keys()].sort()).toEqual(["/big", "/json"]);
    expect(Buffer.from(all.get("/big")!.value).equals(big)).toBe(true);
    expect(all.get("/big")!.fetchedAt).toBe(123);
    expect(text(all.get("/json")!.value)).toBe('{"a": 1}');
    await store.close();
    const upgraded = lines().filter((l) => l.includes("store upgraded"));
    expect(upgraded).toHaveLength(1);
    expect(upgraded[0]).toContain("values=4");
    expect(upgraded[0]).toContain("from_schema=2");
    expect(lines().filter((l) => l.includes("a stored value is corrupt")).map((l) => /item=(\S+)/.exec(l)?.[1])).toEqual(["/altered", "/no-digest"]);

    const check = raw(dir);
    expect(check.query<{ user_version: number }, []>("PRAGMA user_version").get()!.user_version).toBe(4);
    expect(check.query<{ name: string }, []>("SELECT name FROM pragma_table_info('item_values')").all().map((c) => c.name)).toEqual(["path", "fetched_at", "size", "sha256", "etag", "last_modified", "basis"]);
    expect(check.query<{ name: string }, []>("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").all().map((t) => t.name)).toEqual(["item_values", "value_chunks"]);
    expect(check.query<{ n: number }, []>("SELECT count(*) AS n FROM value_chunks WHERE path = '/big'").get()!.n).toBe(3);
    check.close();
    const second = logged();
    const reopened = SqliteStore.open(dir, second.log);
    expect([...(await reopened.all()).keys()].sort()).toEqual(["/big", "/json"]);
    await reopened.close();
    expect(second.lines().filter((l) => l.includes("store upgraded"))).toEqual([]);
  });

  test("a store of schema 3 is upgraded once in place: every value kept as it was, without validators; validators kept from then on", async () => {
    const dir = tempDir();
    const db = raw(dir);
    const big = pattern(CHUNK_BYTES + 7, 4);
    const digest = (value: Uint8Array) => new Bun.CryptoHasher("sha256").update(value).digest();
    // As schema 3 wrote it.
    db.run("PRAGMA journal_mode = WAL");
    db.run("CREATE TABLE item_values (path TEXT PRIMARY KEY, fetched_at INTEGER NOT NULL, size INTEGER NOT NULL, sha256 BLOB)");
    db.run("CREATE TABLE value_chunks (path TEXT NOT NULL, seq INTEGER NOT NULL, bytes BLOB NOT NULL, PRIMARY KEY (path, seq))");
    db.run("INSERT INTO item_values VALUES ('/big', 123, ?, ?)", [big.length, digest(big)]);
    db.run("INSERT INTO value_chunks VALUES ('/big', 0, ?), ('/big', 1, ?)", [big.subarray(0, CHUNK_BYTES), big.subarray(CHUNK_BYTES)]);
    db.run("INSERT INTO item_values VALUES ('/small', 456, 8, ?)", [digest(bytes('{"a": 1}'))]);
    db.run("INSERT INTO value_chunks VALUES ('/small', 0, ?)", [bytes('{"a": 1}')]);
    db.run("PRAGMA user_version = 3");
    db.close();

    const { log, lines } = logged();
    const store = SqliteStore.open(dir, log);
    const all = await store.all();
    expect([...all.keys()].sort()).toEqual(["/big", "/small"]);
    expect([Buffer.from(all.get("/big")!.value).equals(big), all.get("/big")!.fetchedAt, all.get("/big")!.validators]).toEqual([true, 123, undefined]);
    expect([text(all.get("/small")!.value), all.get("/small")!.fetchedAt, all.get("/small")!.validators]).toEqual(['{"a": 1}', 456, undefined]);
    const upgraded = lines().filter((l) => l.includes("store upgraded"));
    expect(upgraded).toHaveLength(1);
    expect(upgraded[0]).toContain("values=2 from_schema=3 schema=4");
    const validators = { etag: 'W/"s-2"', lastModified: "Tue, 15 Nov 1994 12:45:26 GMT", basis: "b".repeat(64) };
    await store.put("/small", storedOf(bytes('{"a": 2}'), 789, validators));
    await store.close();

    const check = raw(dir);
    expect(check.query<{ user_version: number }, []>("PRAGMA user_version").get()!.user_version).toBe(4);
    expect(check.query<{ name: string }, []>("SELECT name FROM pragma_table_info('item_values')").all().map((c) => c.name)).toEqual(["path", "fetched_at", "size", "sha256", "etag", "last_modified", "basis"]);
    check.close();
    const second = logged();
    const reopened = SqliteStore.open(dir, second.log);
    const again = await reopened.all();
    expect([text(again.get("/small")!.value), again.get("/small")!.fetchedAt, again.get("/small")!.validators]).toEqual(['{"a": 2}', 789, validators]);
    expect(Buffer.from(again.get("/big")!.value).equals(big)).toBe(true);
    await reopened.close();
    expect(second.lines().filter((l) => l.includes("store upgraded"))).toEqual([]);
  });

  test("validators read back as they were put (an ETag, a Last-Modified, both, none), and as renew() changed them", async () => {
    const dir = tempDir();
    const store = SqliteStore.open(dir, logged().log);
    const basis = "c".repeat(64);
    const cases = {
      "/etag": { etag: '"x"', basis },
      "/last-modified": { lastModified: "Sun, 06 Nov 1994 08:49:37 GMT", basis },
      "/both": { etag: 'W/"y"', lastModified: "Sun, 06 Nov 1994 08:49:37 GMT", basis },
      "/none": undefined,
    };
    for (const [path, validators] of Object.entries(cases)) await store.put(path, storedOf(bytes(`"${path}"`), 1, validators));
    await store.renew("/etag", storedOf(bytes('"/etag"'), 2, { etag: '"x2"', basis }));
    await store.close();
    const again = SqliteStore.open(dir, logged().log);
    const all = await again.all();
    expect(Object.fromEntries([...all].map(([path, s]) => [path, [text(s.value), s.fetchedAt, s.validators]]))).toEqual({
      "/etag": ['"/etag"', 2, { etag: '"x2"', basis }],
      "/last-modified": ['"/last-modified"', 1, cases["/last-modified"]],
      "/both": ['"/both"', 1, cases["/both"]],
      "/none": ['"/none"', 1, undefined],
    });
    await again.close();
  });

  test("renew() of a value the row does not hold (a write of it failed, or none was made) writes the whole value", async () => {
    const dir = tempDir();
    const store = SqliteStore.open(dir, logged().log);
    await store.put("/v", storedOf(bytes('"old"'), 1));
    await store.renew("/v", storedOf(bytes('"new"'), 2, { etag: '"n"', basis: "d" }));
    await store.renew("/w", storedOf(bytes('"w"'), 3));
    expect(contents(dir)).toEqual([
      ["/v", '"new"'],
      ["/w", '"w"'],
    ]);
    // Gone under the daemon: renewed into a new file with every value held.
    rmSync(dir, { recursive: true });
    await store.renew("/w", storedOf(bytes('"w"'), 4));
    await store.close();
    const again = SqliteStore.open(dir, logged().log);
    const all = await again.all();
    expect([...all].sort(([a], [b]) => a.localeCompare(b)).map(([path, s]) => [path, text(s.value), s.fetchedAt, s.validators?.etag])).toEqual([
      ["/v", '"new"', 2, '"n"'],
      ["/w", '"w"', 4, undefined],
    ]);
    await again.close();
  });

  test("a store of a newer schema is refused, and left as it is", async () => {
    const dir = tempDir();
    const db = raw(dir);
    db.run("PRAGMA user_version = 5");
    db.close();
    expect(() => SqliteStore.open(dir, logged().log)).toThrow("was written by a newer cachish (schema 5); this one knows schema 4");
    const check = raw(dir);
    expect(check.query<{ user_version: number }, []>("PRAGMA user_version").get()!.user_version).toBe(5);
    check.close();
  });

  test("writing a 16 MiB value costs far less than one more copy of it in memory", async () => {
    // The value is made (and touched) first. One blob a value cost about 36 MB here (bun:sqlite's
    // bound copy, then SQLite's record); chunks of 1 MiB cost about 4.
    const store = SqliteStore.open(tempDir(), logged().log);
    const value = pattern(16 * MiB, 7);
    const growth = await peakGrowth(() => store.put("/big", storedOf(value, 1)));
    await store.close();
    expect(growth).toBeLessThan(12 * MiB);
  });

  test("reading a 16 MiB value back costs about its own size in memory, not twice it", async () => {
    // As at start: the value is made of its chunks, each read into a buffer of its own. Left to
    // the garbage collector, those cost as much again: about 33 MB here, against 18 with each
    // chunk freed once copied.
    const dir = tempDir();
    const store = SqliteStore.open(dir, logged().log);
    await store.put("/big", storedOf(pattern(16 * MiB, 8), 1));
    await store.close();
    const again = SqliteStore.open(dir, logged().log);
    let all = new Map<string, Stored>();
    const growth = await peakGrowth(async () => (all = await again.all()));
    await again.close();
    expect(all.get("/big")!.value.length).toBe(16 * MiB);
    expect(growth).toBeLessThan(24 * MiB);
  });
});
