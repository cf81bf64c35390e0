import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

const made: string[] = [];

/**
 * Removes every folder tempDir made: once, after the whole run (test/support/setup.ts, preloaded
 * by bunfig.toml). Not in an afterAll of this module: it is evaluated once for the whole run, so
 * such a hook belonged to the first test file alone, and every later file's folders were left
 * behind (about 460 per `npm test`).
 */
export function removeTempDirs(): void {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** A fresh folder under the system's temp folder, removed when the test run ends. */
export function tempDir(files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), "cachish-test-"));
  made.push(dir);
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  return dir;
}
