/**
 * Which files a store's connection has open, by device and inode: the database, its -wal and
 * its -shm. Another file at a path, or none, is not the store any more (SPEC 5.4): an
 * operator's rm, a cleanup job, the whole folder removed, or another database moved over it.
 */
import { existsSync, statSync } from "node:fs";
import { basename, dirname } from "node:path";

/** Device and inode of the database, its -wal and its -shm, as the connection opened them. */
export type Identity = Map<string, { dev: number; ino: number }>;
export const SUFFIXES = ["", "-wal", "-shm"];

export function statOf(file: string): { dev: number; ino: number } | undefined {
  try {
    const { dev, ino } = statSync(file);
    return { dev, ino };
  } catch {
    return undefined;
  }
}

export function identify(file: string): Identity {
  const identity: Identity = new Map();
  for (const suffix of SUFFIXES) {
    const now = statOf(file + suffix);
    if (now) identity.set(suffix, now);
  }
  return identity;
}

/**
 * What happened to the files the connection has open, or undefined when nothing did. One
 * stat per file before a write, which costs an fsync anyway.
 */
export function changeOf(file: string, identity: Identity): string | undefined {
  for (const suffix of SUFFIXES) {
    const then = identity.get(suffix);
    const now = statOf(file + suffix);
    if (!then) {
      // Not there at open (SQLite makes its -wal and -shm when it first needs them): from now on, it is ours.
      if (now) identity.set(suffix, now);
      continue;
    }
    if (!now) return existsSync(dirname(file)) ? `${basename(file)}${suffix} removed` : "folder removed";
    if (now.dev !== then.dev || now.ino !== then.ino) return `${basename(file)}${suffix} replaced`;
  }
  return undefined;
}
