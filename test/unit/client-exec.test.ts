/**
 * `--exec`'s command (src/client/exec.ts): checked at start, run to its end, its failure told
 * by the program's name and its status or signal, a stop passed on to it.
 */
import { afterEach, expect, test } from "bun:test";
import { chmodSync } from "node:fs";
import { join } from "node:path";
import { cannotRun, runToEnd } from "../../src/client/exec";
import { tempDir } from "../support/temp";

const never = new AbortController().signal;

test("a program on $PATH, or a path that can be run, is accepted at start; anything else is said", () => {
  expect(cannotRun("sh")).toBeUndefined();
  expect(cannotRun("/bin/sh")).toBeUndefined();
  expect(cannotRun("systemclt")).toBe("`systemclt` is not found on $PATH");
  const dir = tempDir({ "script": "#!/bin/sh\n" });
  expect(cannotRun(join(dir, "script"))).toBe(`\`${join(dir, "script")}\` cannot be run: permission denied`);
  chmodSync(join(dir, "script"), 0o755);
  expect(cannotRun(join(dir, "script"))).toBeUndefined();
  expect(cannotRun(join(dir, "gone"))).toBe(`\`${join(dir, "gone")}\` cannot be run: no such file`);
});

test("exit 0 is success; a status or a signal is told by the program's name, never its arguments", async () => {
  expect(await runToEnd(["sh", "-c", "exit 0"], never)).toBeUndefined();
  expect(await runToEnd(["sh", "-c", "exit 3", "secret-arg"], never)).toBe("`sh` exited with status 3");
  expect(await runToEnd(["sh", "-c", "kill -9 $$"], never)).toBe("`sh` was killed by SIGKILL");
  expect(await runToEnd([join(tempDir(), "gone")], never)).toMatch(/^`\/.*\/gone` cannot be run: not found$/);
});

const notify = process.env.NOTIFY_SOCKET;
afterEach(() => {
  if (notify === undefined) delete process.env.NOTIFY_SOCKET;
  else process.env.NOTIFY_SOCKET = notify;
});

test("the command gets cachish's environment, but NOTIFY_SOCKET (it is not the unit's main process)", async () => {
  process.env.NOTIFY_SOCKET = "/run/systemd/notify";
  process.env.CACHISH_TEST_SEEN = "yes";
  expect(await runToEnd(["sh", "-c", 'test -z "${NOTIFY_SOCKET+set}" && test "$CACHISH_TEST_SEEN" = yes'], never)).toBeUndefined();
  delete process.env.CACHISH_TEST_SEEN;
});

test("a stop is passed on to the command, and its end awaited", async () => {
  const stop = new AbortController();
  const started = performance.now();
  const ran = runToEnd(["sleep", "30"], stop.signal);
  await Bun.sleep(200);
  stop.abort("SIGTERM");
  expect(await ran).toBe("`sleep` was killed by SIGTERM");
  expect(performance.now() - started).toBeLessThan(5000);
});
