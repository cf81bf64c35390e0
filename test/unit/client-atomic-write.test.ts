/**
 * `--output FILE` (src/client/atomic-write.ts): FILE is replaced whole by a new file, mode 0600
 * whatever the umask, and nothing else is left in its folder, whether the write worked or not.
 */
import { afterEach, expect, test } from "bun:test";
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeAtomically } from "../../src/client/atomic-write";
import { tempDir } from "../support/temp";

const umask = process.umask();
afterEach(() => void process.umask(umask));

test.each([
  ["000", 0o000],
  ["022", 0o022],
  ["077", 0o077],
  // One that takes the owner's own bits: the file is still 0600, as --help says.
  ["277", 0o277],
])("a new FILE holds the text, mode 0600 under umask %s, alone in its folder", (_, mask) => {
  process.umask(mask);
  const dir = tempDir();
  const file = join(dir, "app.env");
  expect(writeAtomically(file, 'A="1"\n')).toBeUndefined();
  expect(readFileSync(file, "utf8")).toBe('A="1"\n');
  expect(statSync(file).mode & 0o777).toBe(0o600);
  expect(readdirSync(dir)).toEqual(["app.env"]);
});

test("FILE is replaced, not rewritten: a reader that opened the old one reads it whole, and the new mode is 0600", () => {
  const dir = tempDir();
  const file = join(dir, "app.env");
  const old = "old ".repeat(100_000);
  writeFileSync(file, old, { mode: 0o644 });
  const reader = openSync(file, "r");
  expect(writeAtomically(file, "new")).toBeUndefined();
  const seen = Buffer.alloc(old.length + 10);
  const length = readSync(reader, seen, 0, seen.length, 0);
  closeSync(reader);
  expect(seen.subarray(0, length).toString()).toBe(old);
  expect(readFileSync(file, "utf8")).toBe("new");
  expect(statSync(file).mode & 0o777).toBe(0o600);
  expect(readdirSync(dir)).toEqual(["app.env"]);
});

test("a write that cannot be done says why, naming FILE, and leaves nothing behind", () => {
  const dir = tempDir();
  expect(writeAtomically(join(dir, "missing", "app.env"), "x")).toBe(`cannot write ${join(dir, "missing", "app.env")}: no such file`);
  // FILE is a folder: the temporary file is written, and removed when the rename fails.
  mkdirSync(join(dir, "folder"));
  expect(writeAtomically(join(dir, "folder"), "x")).toBe(`cannot write ${join(dir, "folder")}: it is a folder`);
  expect(readdirSync(dir)).toEqual(["folder"]);
  expect(readdirSync(join(dir, "folder"))).toEqual([]);
});
