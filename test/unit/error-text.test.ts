/**
 * Errors as an operator reads them (src/error-text.ts), made by the real calls that fail: the
 * errno in words, a connection by its code, and never the URL or the password a message held.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { connectProblem, describeError, systemProblem } from "../../src/error-text";
import { tempDir } from "../support/temp";

const thrown = async (work: () => unknown): Promise<unknown> => {
  try {
    await work();
  } catch (error) {
    return error;
  }
  throw new Error("it did not fail");
};

describe("a failed file or socket: its errno in words", () => {
  test.each([
    ["a file that is not there", "no such file", (dir: string) => readFileSync(join(dir, "nope"))],
    ["a folder read as a file", "it is a folder", (dir: string) => readFileSync(dir)],
    ["a socket in a folder that is not there", "no such file", (dir: string) => Bun.serve({ unix: join(dir, "nope/sock"), fetch: () => new Response() })],
    ["an address of no host's (TEST-NET-1)", "the address is not one of this host's", () => Bun.serve({ hostname: "192.0.2.1", port: 0, fetch: () => new Response() })],
  ])("%s: %p", async (_, expected, work) => {
    const dir = tempDir();
    expect(systemProblem(await thrown(() => work(dir)))).toBe(expected);
  });

  test("an address in use", async () => {
    const first = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
    try {
      expect(systemProblem(await thrown(() => Bun.serve({ hostname: "127.0.0.1", port: first.port, fetch: () => new Response() })))).toBe("the address is already in use");
    } finally {
      await first.stop(true);
    }
  });

  test.each([
    ["EACCES", "permission denied"],
    ["EROFS", "read-only file system"],
    ["EPERM", "operation not permitted (an immutable file? see lsattr)"],
    ["EMFILE", "EMFILE"],
  ])("%s: %p", (code, expected) => {
    expect(systemProblem(Object.assign(new Error(`${code}: open '/secret/path'`), { code }))).toBe(expected);
  });
});

test("a failed connection: its code, never the URL and its credentials", async () => {
  const refused = await thrown(() => fetch("http://user:pass-W7q@127.0.0.1:1/path?token=tok-Z3"));
  expect(connectProblem(refused)).toBe("ECONNREFUSED");
  expect(connectProblem(new TypeError("fetch() URL is invalid: http://user:pass-W7q@["))).toBe("TypeError");
});

test("a database error: its message and code, the URL cut out", () => {
  const error = Object.assign(new Error("connect failed to postgres://cachish:pw-K2@db.internal/cachish"), { code: "ECONNREFUSED" });
  expect(describeError(error)).toBe("connect failed to postgres://… (ECONNREFUSED)");
});
