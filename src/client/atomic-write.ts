/**
 * `--output FILE`: each value replaces FILE whole, so that a reader (systemd's
 * EnvironmentFile=, a `.path` unit, the service) finds the old value or the new one, never a
 * part of either. The text goes to a new file in the same folder (a rename is atomic only within
 * one file system), mode 0600 whatever the umask, written in full and fsynced, then renamed over
 * FILE. Every call is synchronous: a signal's handler cannot run in the middle, so a stop never
 * leaves the temporary file behind.
 */
import { closeSync, fchmodSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { systemProblem } from "../error-text";

/** Writes `text` to `file` as described above; the problem, in words, when it could not. */
export function writeAtomically(file: string, text: string): string | undefined {
  const folder = dirname(file);
  // Hidden, and unique to this process and call: never a reader's FILE, nor another writer's.
  const temporary = join(folder, `.${basename(file)}.${process.pid}-${Math.random().toString(36).slice(2, 10)}.tmp`);
  let fd: number | undefined;
  try {
    fd = openSync(temporary, "wx", 0o600);
    fchmodSync(fd, 0o600);
    const bytes = Buffer.from(text);
    for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(temporary, file);
  } catch (error) {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(temporary);
    } catch {
      // Never created, or already renamed.
    }
    return `cannot write ${file}: ${systemProblem(error)}`;
  }
  syncFolder(folder);
  return undefined;
}

/** The rename survives a power loss once the folder is synced; a file system that cannot sync a folder has nothing to sync. */
function syncFolder(folder: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(folder, "r");
    fsyncSync(fd);
  } catch {
    // Best effort: FILE already holds the new value for every reader.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
