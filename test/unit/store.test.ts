/**
 * The SQLite store in-process, in a temp folder: what it keeps, how it tells a corrupt value
 * (the SHA-256 of each value's bytes beside it), and its schema's upgrade.
 */
import { describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { createLogger } from "../../src/log";
import { SqliteStore } from "../../src/store/sqlite";
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

describe("the store", () => {
  test("a value whose bytes do not match their digest, or that has none, is corrupt: logged and left out", async () => {
    const dir = tempDir();
    const { log, lines } = logged();
    const store = SqliteStore.open(dir, log);
    for (const path of ["/sound", "/altered", "/no-digest"]) await store.put(path, { value: bytes(`{"path": "${path}"}`), fetchedAt: 1 });
    await store.close();
    const db = raw(dir);
    // Still valid JSON: only the digest tells.
    db.run("UPDATE item_values SET value = ? WHERE path = '/altered'", [bytes('{"path": "/elsewhere"}')]);
    db.run("UPDATE item_values SET sha256 = NULL WHERE path = '/no-digest'");
    db.run("INSERT INTO item_values (path, value, fetched_at) VALUES ('/written-around', ?, 1)", [bytes("{not json")]);
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
    await again.put("/altered", { value: bytes('{"path": "/altered"}'), fetchedAt: 2 });
    expect(text((await again.get("/altered"))!.value)).toBe('{"path": "/altered"}');
    await again.close();
  });

  test("writes to a store nobody touched re-create nothing; a removed one is re-created with every value held; a closed one refuses", async () => {
    const dir = tempDir();
    const { log, lines } = logged();
    const store = SqliteStore.open(dir, log);
    for (let n = 0; n < 5; n++) await store.put(`/${n % 2}`, { value: bytes(String(n)), fetchedAt: n });
    expect(lines().filter((l) => l.includes("level=error"))).toEqual([]);

    rmSync(dir, { recursive: true });
    await store.put("/2", { value: bytes("2"), fetchedAt: 9 });
    expect(lines().filter((l) => l.includes("level=error")).map((l) => /change="?([^"]+)"? /.exec(l)?.[1])).toEqual(["folder removed"]);
    const db = raw(dir);
    expect(db.query<{ path: string; value: Uint8Array }, []>("SELECT path, value FROM item_values ORDER BY path").all().map((r) => [r.path, text(r.value)])).toEqual([
      ["/0", "4"],
      ["/1", "3"],
      ["/2", "2"],
    ]);
    db.close();
    await store.close();
    await expect(store.put("/3", { value: bytes("3"), fetchedAt: 10 })).rejects.toThrow("is closed");
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
    expect(check.query<{ user_version: number }, []>("PRAGMA user_version").get()!.user_version).toBe(2);
    check.close();
    // Once: the next start neither upgrades nor parses.
    const second = logged();
    const reopened = SqliteStore.open(dir, second.log);
    expect([...(await reopened.all()).keys()]).toEqual(["/json"]);
    await reopened.close();
    expect(second.lines().filter((l) => l.includes("store upgraded"))).toEqual([]);
  });
});
