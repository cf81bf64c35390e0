/**
 * Upgrading from 1.x: 1.x kept each value as a JSON file in `cache_dir`, named by the
 * lowercase hex SHA-256 of the item path. At start, each configured item that has no stored
 * value takes its 1.x file, with the file's modification time as the fetch time. The files
 * are left in place (a downgrade still finds them).
 */
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseJson, stringifyJson } from "../json";
import type { Logger } from "../log";
import { type Store, type Stored, storedOf } from "./store";

export function legacyFileName(path: string): string {
  return new Bun.CryptoHasher("sha256").update(path).digest("hex");
}

/** Imports what it can; returns the values it imported, by item path. */
export async function importLegacyFiles(store: Store, cacheDir: string, paths: Iterable<string>, have: ReadonlyMap<string, Stored>, log: Logger): Promise<Map<string, Stored>> {
  const imported = new Map<string, Stored>();
  for (const path of paths) {
    if (have.has(path)) continue;
    const file = join(cacheDir, legacyFileName(path));
    let text: string;
    let fetchedAt: number;
    try {
      fetchedAt = Math.floor(statSync(file).mtimeMs);
      text = readFileSync(file, "utf8");
    } catch {
      continue; // No 1.x file for this item: nothing to import.
    }
    let value: Uint8Array;
    try {
      value = new TextEncoder().encode(stringifyJson(parseJson(text)));
    } catch {
      log.warn("a 1.x cache file is not JSON; not imported", { item: path, file });
      continue;
    }
    const stored = storedOf(value, fetchedAt);
    await store.put(path, stored);
    imported.set(path, stored);
    log.info("imported the 1.x cache file", { item: path, file, fetched_at: new Date(fetchedAt).toISOString() });
  }
  return imported;
}
