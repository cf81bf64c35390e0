/**
 * `dist/cachish get --watch` against a real daemon (its long polls, SPEC 5.8) and a real
 * upstream on 127.0.0.1 whose value the tests change: printed, written (--output) or run
 * (--exec) exactly once per change, nothing for an unchanged value (a refresh of the same bytes,
 * a reload's 304, a daemon's restart), a file never seen half-written, a clean stop.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { BINARY, cachish } from "../support/cli";
import { Daemon } from "../support/daemon";
import { NotifySocket } from "../support/notify";
import { tempDir } from "../support/temp";
import { Upstream } from "../support/upstream";

// The daemon refreshes watched items every 250 ms; the waits below are for those refreshes.
setDefaultTimeout(60_000);

const upstream = new Upstream();
afterAll(() => upstream.close());

const TOKEN = "watch-token-k3Jq9";
const PATHS = ["/printed", "/field", "/run", "/literal", "/big", "/kept", "/revoked", "/stopped", "/stopped-exec", "/ready", "/failing"];

function config(listen = "127.0.0.1:0", clients = `  app: {token: ${TOKEN}, url: "*"}\n`): string {
  const items = PATHS.map((path) => `  ${path}:\n    module: JsonHttp\n    parameters: {url: "${upstream.url}${path}"}\n`).join("");
  return `listen: ${listen}\ncache_dir: store\ndefaults: {refresh: 250ms}\nitems:\n${items}auth:\n${clients}`;
}

let daemon: Daemon;
beforeAll(async () => {
  for (const path of PATHS) upstream.json(path, { V: "0", OTHER: "a" });
  daemon = await Daemon.start(config());
});
afterAll(() => daemon.stop());

/** Every watcher started: one a failed test did not stop is killed at the end, not left running. */
const started = new Set<Subprocess>();
afterAll(() => {
  for (const child of started) child.kill("SIGKILL");
});

/** `cachish get --watch ...` running, its output collected as it comes. */
class Watcher {
  stdout = "";
  stderr = "";
  readonly child: Subprocess<"ignore", "pipe", "pipe">;
  readonly #read: Promise<unknown>;

  constructor(args: string[], env: Record<string, string> = {}, server = daemon) {
    this.child = Bun.spawn([BINARY, "get", "--watch", ...args], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", CACHISH_URL: server.url, CACHISH_TOKEN: TOKEN, ...env },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    started.add(this.child);
    const collect = async (stream: ReadableStream<Uint8Array>, into: "stdout" | "stderr") => {
      const decoder = new TextDecoder();
      for await (const chunk of stream) this[into] += decoder.decode(chunk, { stream: true });
    };
    this.#read = Promise.all([collect(this.child.stdout, "stdout"), collect(this.child.stderr, "stderr")]);
  }

  /** Stops it with `signal`: its exit code, once its output is read, and how long that took. */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<{ code: number; ms: number }> {
    const started = performance.now();
    this.child.kill(signal);
    const code = await this.child.exited;
    await this.#read;
    return { code, ms: performance.now() - started };
  }

  async exited(): Promise<number> {
    const code = await this.child.exited;
    await this.#read;
    return code;
  }
}

async function until(what: string, condition: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`not within ${ms} ms: ${what}`);
    await Bun.sleep(20);
  }
}

/** True once `count` clients wait for a change of `path` at `server` (cachish_waiting_clients). */
async function waiting(path: string, count = 1, server = daemon): Promise<boolean> {
  const metrics = await (await server.fetch("/metrics")).text();
  return metrics.includes(`cachish_waiting_clients{item="${path}"} ${count}\n`);
}

/** SIGHUP, and its `reloaded` line: every waiting client has had its 304. */
async function reload(server: Daemon): Promise<void> {
  const before = server.logs("reloaded").length;
  server.process.kill("SIGHUP");
  await until("the reload", () => server.logs("reloaded").length > before);
}

/** A change of the upstream's value, and the daemon's refresh that stores it. */
async function change(path: string, value: object): Promise<void> {
  upstream.json(path, value);
  const body = JSON.stringify(value).replaceAll('":"', '": "').replaceAll('","', '", "');
  await until(`the daemon holds ${body}`, async () => (await (await daemon.fetch(path, { token: TOKEN })).text()) === body);
}

describe("--watch prints", () => {
  test("each change once; nothing for a refresh of the same bytes, nor for a reload's 304", async () => {
    const w = new Watcher(["/printed"]);
    await until("the first value", () => w.stdout === '{"V": "0", "OTHER": "a"}\n');
    for (const v of ["1", "2", "3"]) {
      await until("a long poll", () => waiting("/printed"));
      // Refreshes of the same bytes (four a second) meanwhile; then a reload answers every waiter 304.
      await Bun.sleep(600);
      await reload(daemon);
      await until("a long poll again", () => waiting("/printed"));
      await change("/printed", { V: v, OTHER: "a" });
      await until(`value ${v}`, () => w.stdout.endsWith(`{"V": "${v}", "OTHER": "a"}\n`));
    }
    await Bun.sleep(1000);
    expect(await w.stop()).toMatchObject({ code: 0 });
    expect(w.stdout).toBe(['{"V": "0", "OTHER": "a"}', '{"V": "1", "OTHER": "a"}', '{"V": "2", "OTHER": "a"}', '{"V": "3", "OTHER": "a"}', ""].join("\n"));
    expect(w.stderr).toBe("");
  });

  test("what is compared is what is printed: with --field, a change of another key prints nothing", async () => {
    const w = new Watcher(["/field", "--field", "V"]);
    await until("the first value", () => w.stdout === "0\n");
    await until("a long poll", () => waiting("/field"));
    await change("/field", { V: "0", OTHER: "b" });
    await until("a long poll again", () => waiting("/field"));
    await change("/field", { V: "1", OTHER: "b" });
    await until("the change", () => w.stdout === "0\n1\n");
    await Bun.sleep(1000);
    expect(await w.stop()).toMatchObject({ code: 0 });
    expect({ stdout: w.stdout, stderr: w.stderr }).toEqual({ stdout: "0\n1\n", stderr: "" });
  });
});

describe("--exec", () => {
  test("runs after each change, never for the first value, never twice at once; a change during a run runs it once more after", async () => {
    const dir = tempDir();
    const [out, log] = [join(dir, "v"), join(dir, "log")];
    // The run reads --output's file: written before the command runs.
    const w = new Watcher(["/run", "--field", "V", "--output", out, "--exec", `sh -c 'echo run "$(cat ${out})" >> ${log}; sleep 1; echo done >> ${log}'`]);
    await until("a long poll", () => waiting("/run"));
    expect(readFileSync(out, "utf8")).toBe("0\n");
    expect(existsSync(log)).toBe(false);
    const logged = () => (existsSync(log) ? readFileSync(log, "utf8") : "");
    await change("/run", { V: "1", OTHER: "a" });
    await until("the first run", () => logged() === "run 1\n");
    // The command sleeps: this change comes while it runs.
    await change("/run", { V: "2", OTHER: "a" });
    await until("the second run", () => logged().endsWith("run 2\ndone\n"));
    // The same output: nothing runs.
    await until("a long poll", () => waiting("/run"));
    await change("/run", { V: "2", OTHER: "b" });
    await Bun.sleep(1000);
    await until("a long poll", () => waiting("/run"));
    await change("/run", { V: "3", OTHER: "b" });
    await until("the third run", () => logged().endsWith("run 3\ndone\n"));
    expect(await w.stop()).toMatchObject({ code: 0 });
    expect(logged()).toBe("run 1\ndone\nrun 2\ndone\nrun 3\ndone\n");
    expect({ stdout: w.stdout, stderr: w.stderr }).toEqual({ stdout: "", stderr: "" });
  });

  test("no shell: quotes group words and a backslash escapes, but $, *, ~ and ; reach the command as they are", async () => {
    const w = new Watcher(["/literal", "--exec", `printf '[%s]' "a b" $HOME * ~ ; 'it''s' \\n`]);
    await until("a long poll", () => waiting("/literal"));
    await change("/literal", { V: "1", OTHER: "a" });
    await until("the run", () => w.stdout.length > 0);
    expect(await w.stop()).toMatchObject({ code: 0 });
    expect({ stdout: w.stdout, stderr: w.stderr }).toEqual({ stdout: "[a b][$HOME][*][~][;][its][n]", stderr: "" });
  });

  test("a command that fails, or is gone, is said on stderr and the watch goes on; its output is cachish's", async () => {
    const dir = tempDir();
    const script = join(dir, "on-change");
    const write = (status: number) => writeFileSync(script, `#!/bin/sh\necho "to stdout"\necho "to stderr" >&2\nexit ${status}\n`, { mode: 0o755 });
    write(3);
    const w = new Watcher(["/failing", "--exec", `${script} an-argument`]);
    await until("a long poll", () => waiting("/failing"));
    await change("/failing", { V: "1", OTHER: "a" });
    await until("the report", () => w.stderr.includes("status 3"));
    unlinkSync(script);
    await until("a long poll", () => waiting("/failing"));
    await change("/failing", { V: "2", OTHER: "a" });
    await until("the report", () => w.stderr.includes("not found"));
    write(0);
    await until("a long poll", () => waiting("/failing"));
    await change("/failing", { V: "3", OTHER: "a" });
    await until("the last run", () => w.stdout === "to stdout\nto stdout\n");
    expect(await w.stop()).toMatchObject({ code: 0 });
    expect(w.stdout).toBe("to stdout\nto stdout\n");
    expect(w.stderr).toBe(
      [
        "to stderr",
        `cachish get: /failing: --exec: \`${script}\` exited with status 3`,
        `cachish get: /failing: --exec: \`${script}\` cannot be run: not found`,
        "to stderr",
        "",
      ].join("\n"),
    );
  });
});

describe("--output", () => {
  test("a reader in a tight loop never sees FILE partial or empty while 1 MiB values change; mode 0600; nothing else left in the folder", async () => {
    const SIZE = 1024 * 1024;
    const letters = "abcdefg";
    const body = (letter: string) => `{"V": "${letter.repeat(SIZE)}"}`;
    upstream.on("/big", { body: body("a") });
    const dir = tempDir();
    const file = join(dir, "big.json");
    const stopFile = join(tempDir(), "stop");
    const w = new Watcher(["/big", "--output", file]);
    await until("the first value", () => existsSync(file) && readFileSync(file, "utf8") === `${body("a")}\n`, 30_000);
    // Another process, so that its loop does not stop this one's upstream.
    const reader = Bun.spawn(
      [
        "python3",
        "-c",
        [
          "import json, os, sys",
          "file, stop, size, letters = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]",
          "whole = {l: ('{\"V\": \"' + l * size + '\"}\\n').encode() for l in letters}",
          "reads = bad = 0; first = None",
          "while not os.path.exists(stop):",
          "    with open(file, 'rb') as f: data = f.read()",
          "    reads += 1",
          "    if len(data) < 8 or whole.get(chr(data[7])) != data:",
          "        bad += 1; first = first or len(data)",
          "json.dump({'reads': reads, 'bad': bad, 'first_bad_length': first}, sys.stdout)",
        ].join("\n"),
        file,
        stopFile,
        String(SIZE),
        letters,
      ],
      { stdout: "pipe", stderr: "inherit" },
    );
    for (const letter of letters.slice(1)) {
      upstream.on("/big", { body: body(letter) });
      await until(`value ${letter}`, () => readFileSync(file, "utf8") === `${body(letter)}\n`, 30_000);
    }
    writeFileSync(stopFile, "");
    const seen = JSON.parse(await new Response(reader.stdout).text());
    expect(await w.stop()).toMatchObject({ code: 0 });
    expect(seen.bad).toBe(0);
    expect(seen.reads).toBeGreaterThan(50);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(["big.json"]);
    expect({ stdout: w.stdout, stderr: w.stderr }).toEqual({ stdout: "", stderr: "" });
  });

  test("without --watch: the value written once, atomically, mode 0600, nothing printed", async () => {
    const dir = tempDir();
    const ran = await cachish(["get", "/printed", "--format", "env", "--output", join(dir, "app.env")], { env: { CACHISH_URL: daemon.url, CACHISH_TOKEN: TOKEN } });
    expect(ran).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(readFileSync(join(dir, "app.env"), "utf8")).toMatch(/^V="\d"\nOTHER="a"\n$/);
    expect(statSync(join(dir, "app.env")).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(["app.env"]);
  });

  test("a first value that cannot be written: exit 1 saying why, with or without --watch", async () => {
    const file = join(tempDir(), "missing", "app.env");
    for (const watch of [[], ["--watch"]]) {
      const ran = await cachish(["get", "/printed", "--output", file, ...watch], { env: { CACHISH_URL: daemon.url, CACHISH_TOKEN: TOKEN } });
      expect(ran).toEqual({ code: 1, stdout: "", stderr: `cachish get: cannot write ${file}: no such file\n` });
    }
  });
});

describe("the daemon", () => {
  test("restarted mid-watch: waited for, nothing printed for the same value, the next change printed; a change while it was down printed once", async () => {
    const dir = tempDir();
    let server = await Daemon.start(config(), { dir });
    const listen = server.address;
    const w = new Watcher(["/kept", "--field", "V"], {}, server);
    await until("a long poll", () => waiting("/kept", 1, server));
    expect(await server.stop()).toBe(0);
    await until("the loss said", () => w.stderr.includes("waiting for it"));
    server = await Daemon.start(config(listen), { dir });
    await until("the return said", () => w.stderr.includes("answers again"));
    await until("a long poll", () => waiting("/kept", 1, server));
    expect(w.stdout).toBe("0\n");
    upstream.json("/kept", { V: "1", OTHER: "a" });
    await until("the change", () => w.stdout === "0\n1\n");
    await server.stop();
    upstream.json("/kept", { V: "2", OTHER: "a" });
    await until("the loss said again", () => w.stderr.split("waiting for it").length === 3);
    server = await Daemon.start(config(listen), { dir });
    await until("the change made while the daemon was down", () => w.stdout === "0\n1\n2\n");
    await Bun.sleep(1000);
    expect(await w.stop()).toMatchObject({ code: 0 });
    await server.stop();
    expect(w.stdout).toBe("0\n1\n2\n");
    const lost = `cachish get: /kept: the daemon at http://${listen} cannot be reached \\((ECONNREFUSED|ECONNRESET)\\); waiting for it\n`;
    const back = "cachish get: /kept: the daemon answers again; watching\n";
    expect(w.stderr).toMatch(new RegExp(`^${lost}${back}${lost}${back}$`));
  });

  test("a token revoked while watching (a reload): exit 77", async () => {
    const dir = tempDir();
    const server = await Daemon.start(config(), { dir });
    const w = new Watcher(["/revoked"], {}, server);
    await until("a long poll", () => waiting("/revoked", 1, server));
    writeFileSync(join(dir, "cachish.yml"), config(server.address, `  app: {token: ${TOKEN}, url: /printed}\n`));
    server.process.kill("SIGHUP");
    expect(await w.exited()).toBe(77);
    await server.stop();
    expect(w.stdout).toBe('{"V": "0", "OTHER": "a"}\n');
    expect(w.stderr).toBe("cachish get: /revoked: the daemon refused this token for /revoked (403): it is unknown, or its client may not read this path\n");
  });
});

describe("stopping and systemd", () => {
  test.each(["SIGTERM", "SIGINT"] as const)("%s: exit 0 at once, no temporary file left", async (signal) => {
    const dir = tempDir();
    const w = new Watcher(["/stopped", "--output", join(dir, "v.json")]);
    // The file first: the waiter of the test before may still be counted at /stopped.
    await until("the first value", () => existsSync(join(dir, "v.json")));
    await until("a long poll", () => waiting("/stopped"));
    const stopped = await w.stop(signal);
    expect(stopped.code).toBe(0);
    expect(stopped.ms).toBeLessThan(2000);
    expect(readdirSync(dir)).toEqual(["v.json"]);
    expect({ stdout: w.stdout, stderr: w.stderr }).toEqual({ stdout: "", stderr: "" });
  });

  test("SIGTERM while the command runs: the command is stopped too, and the watcher exits 0", async () => {
    const dir = tempDir();
    const mark = join(dir, "running");
    // A path of its own: the waiters of the tests before may still be counted at /stopped.
    const w = new Watcher(["/stopped-exec", "--exec", `sh -c 'touch ${mark}; exec sleep 30'`]);
    await until("a long poll", () => waiting("/stopped-exec"));
    await change("/stopped-exec", { V: "1", OTHER: "a" });
    await until("the command", () => existsSync(mark));
    const stopped = await w.stop();
    expect(stopped.code).toBe(0);
    expect(stopped.ms).toBeLessThan(2000);
    expect({ stdout: w.stdout, stderr: w.stderr }).toEqual({ stdout: "", stderr: "" });
  });

  test("under Type=notify: READY=1 once the first value is written", async () => {
    const dir = tempDir();
    const notify = await NotifySocket.open(join(dir, "notify"));
    const file = join(dir, "app.env");
    const w = new Watcher(["/ready", "--format", "env", "--output", file], { NOTIFY_SOCKET: notify.address });
    try {
      const ready = await notify.waitFor((m) => m.startsWith("READY=1"));
      expect(readFileSync(file, "utf8")).toBe('V="0"\nOTHER="a"\n');
      expect(ready).toBe(`READY=1\nSTATUS=watching /ready\nMAINPID=${w.child.pid}`);
    } finally {
      notify.close();
    }
    expect(await w.stop()).toMatchObject({ code: 0 });
  });
});

describe("the command line", () => {
  const get = (args: string[]) => cachish(["get", ...args], { env: { CACHISH_URL: daemon.url, CACHISH_TOKEN: TOKEN } });

  test.each([
    [["/printed", "--watch", "--config", "c.yml"], "--watch follows a running daemon's value, --config resolves it once here: leave out one of them"],
    [["/printed", "--exec", "true"], "--exec runs a command after each change of the value: it needs --watch"],
    [["/printed", "--watch", "--exec", "echo 'a"], "--exec: a single quote is not closed"],
    [["/printed", "--watch", "--exec", "echo a\\"], "--exec: it ends with a backslash, which escapes nothing"],
    [["/printed", "--watch", "--exec", "  "], "--exec: no command given"],
    [["/printed", "--watch", "--exec", "systemclt try-restart myapp"], "--exec: `systemclt` is not found on $PATH"],
    [["/printed", "--output", ""], "--output needs a file name"],
  ])("%p: usage error, exit 2: %s", async (args, message) => {
    expect(await get(args)).toEqual({ code: 2, stdout: "", stderr: `cachish get: ${message}\nRun \`cachish get --help\` for usage.\n` });
  });

  test("--help tells --watch, --exec and --output, with an example", async () => {
    const help = await cachish(["get", "--help"]);
    expect(help.code).toBe(0);
    for (const text of ["--watch", "--exec", "--output", "--format env --output /run/myapp/cachish.env --watch --exec 'systemctl try-restart myapp'"]) expect(help.stdout).toContain(text);
  });
});
