/**
 * `dist/cachish get` as scripts and unit files use it, against a real daemon and upstream on
 * 127.0.0.1: every output format, every exit code, stale values, waiting for a daemon that
 * starts later, and the local mode beside a running daemon.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cachish } from "../support/cli";
import { Daemon } from "../support/daemon";
import { tempDir } from "../support/temp";
import { closedPort, Upstream } from "../support/upstream";

const upstream = new Upstream();
afterAll(() => upstream.close());

const TOKEN = "get-token-Vb7n2Q";
const HOSTILE = `it's "quoted" $HOME \`id\` $(echo pwned) back\\slash\nnew line\ttab  two spaces é ✓ !*?[a] ; & | > <`;

upstream.json("/db", { DATABASE_URL: "postgres://u:p@db.internal/app", REDIS_URL: "redis://r", PORT: 5432, OPTIONS: { ssl: true } });
// The number is written as text: a JavaScript number would already be rounded.
upstream.on("/hostile", { body: `{"HOSTILE": ${JSON.stringify(HOSTILE)}, "EMPTY": "", "NUM": 12345678901234567890}` });
upstream.json("/list", [1, 2]);
upstream.json("/bad-keys", { "not-a-name": 1 });
upstream.json("/flaky", { v: "still here" });

function config(listen = "127.0.0.1:0"): string {
  const item = (path: string, extra = "") => `  ${path}:\n    module: JsonHttp\n    parameters: {url: "${upstream.url}${path}"}\n${extra}`;
  return [
    `listen: ${listen}`,
    "cache_dir: store",
    "items:",
    item("/db"),
    item("/hostile"),
    item("/list"),
    item("/bad-keys"),
    item("/flaky"),
    item("/public", "    disable_auth: true\n"),
    "auth:",
    `  app: {token: ${TOKEN}, url: "*"}`,
    `  other: {token: other-token, url: /public}`,
    "",
  ].join("\n");
}

let daemon: Daemon;
let env: Record<string, string>;
beforeAll(async () => {
  upstream.json("/public", { open: true });
  daemon = await Daemon.start(config());
  env = { CACHISH_URL: daemon.url, CACHISH_TOKEN: TOKEN };
});
afterAll(() => daemon.stop());

const get = (args: string[], extra: { env?: Record<string, string>; cwd?: string } = {}) =>
  cachish(["get", ...args], { env: { ...env, ...extra.env }, ...(extra.cwd ? { cwd: extra.cwd } : {}) });

/** Runs a shell script with `cachish` on the PATH, as a unit file's ExecStartPre= would. */
async function sh(script: string, extraEnv: Record<string, string> = {}) {
  const child = Bun.spawn(["sh", "-c", script], {
    env: { ...env, ...extraEnv, PATH: `${join(import.meta.dir, "../../dist")}:/usr/bin:/bin` },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { stdout, stderr, code };
}

describe("output", () => {
  test("the JSON value and a newline", async () => {
    expect(await get(["/db"])).toEqual({
      code: 0,
      stdout: '{"DATABASE_URL": "postgres://u:p@db.internal/app", "REDIS_URL": "redis://r", "PORT": 5432, "OPTIONS": {"ssl": true}}\n',
      stderr: "",
    });
  });

  test("--field: a string as it is, anything else as JSON", async () => {
    expect(await get(["/db", "--field", "DATABASE_URL"])).toEqual({ code: 0, stdout: "postgres://u:p@db.internal/app\n", stderr: "" });
    expect((await get(["/db", "--field", "PORT"])).stdout).toBe("5432\n");
    expect((await get(["/db", "--field", "OPTIONS"])).stdout).toBe('{"ssl": true}\n');
    expect((await get(["/hostile", "--field", "NUM"])).stdout).toBe("12345678901234567890\n");
  });

  test("a missing field, or a value that is not an object: exit 1 saying so", async () => {
    expect(await get(["/db", "--field", "NOPE"])).toEqual({
      code: 1,
      stdout: "",
      stderr: 'cachish get: the value of /db has no field "NOPE" (it has "DATABASE_URL", "REDIS_URL", "PORT", "OPTIONS")\n',
    });
    expect((await get(["/list", "--field", "a"])).stderr).toBe('cachish get: the value of /list is not an object, so it has no field "a"\n');
  });

  test("export \"$(cachish get ... --field ...)\" in a shell", async () => {
    const ran = await sh('export DATABASE_URL="$(cachish get /db --field DATABASE_URL)" && printf "%s" "$DATABASE_URL"');
    expect(ran).toEqual({ code: 0, stdout: "postgres://u:p@db.internal/app", stderr: "" });
  });

  test("--format sh: export KEY='value' lines; eval sets and exports them exactly, hostile characters included", async () => {
    const ran = await get(["/hostile", "--format", "sh"]);
    expect(ran.code).toBe(0);
    expect(ran.stdout.split("\n").at(-2)).toBe("export NUM='12345678901234567890'");
    // A program started after the eval sees the values: they are exported.
    const back = await sh('eval "$(cachish get /hostile --format sh)" && exec sh -c \'printf "%s|%s|%s" "$HOSTILE" "$EMPTY" "$NUM"\'');
    expect(back).toEqual({ code: 0, stdout: `${HOSTILE}||12345678901234567890`, stderr: "" });
  });

  test("--format env: KEY=\"value\" lines, as systemd's EnvironmentFile= reads them", async () => {
    const ran = await get(["/hostile", "--format", "env"]);
    expect(ran.code).toBe(0);
    // Only `"`, `\\`, `$` and backquote are escaped; the newline and the tab stay as they are.
    expect(ran.stdout).toBe('HOSTILE="it\'s \\"quoted\\" \\$HOME \\`id\\` \\$(echo pwned) back\\\\slash\nnew line\ttab  two spaces é ✓ !*?[a] ; & | > <"\nEMPTY=""\nNUM="12345678901234567890"\n');
  });

  test("the README's `set -e` script stops at a failed get, before eval and export; with a value, it exports every key", async () => {
    const readme = readFileSync(join(import.meta.dir, "../../README.md"), "utf8");
    const script = /```sh\n(set -e\n[\s\S]*?)```/.exec(readme)![1]!;
    const show = 'exec sh -c \'printf "%s|%s" "$DATABASE_URL" "$REDIS_URL"\'';
    expect(await sh(`${script.replaceAll("/database-url", "/db")}${show}`)).toEqual({ code: 0, stdout: "postgres://u:p@db.internal/app|redis://r", stderr: "" });
    const failed = await sh(`${script.replaceAll("/database-url", "/gone").replaceAll("--wait 30s", "")}echo reached`);
    expect({ code: failed.code, stdout: failed.stdout }).toEqual({ code: 1, stdout: "" });
    // Without the assignment, the README's warning holds: eval of a failed get goes on.
    expect((await sh('eval "$(cachish get /gone --format sh)" && echo reached')).stdout).toBe("reached\n");
  });

  test("--format sh or env with a key that is no variable name: exit 1 naming the key", async () => {
    expect(await get(["/bad-keys", "--format", "sh"])).toEqual({
      code: 1,
      stdout: "",
      stderr: 'cachish get: the key "not-a-name" of /bad-keys is not a valid shell variable name\n',
    });
    expect((await get(["/bad-keys", "--format", "env"])).stderr).toBe('cachish get: the key "not-a-name" of /bad-keys is not a valid environment variable name\n');
  });
});

describe("where the token and the daemon come from", () => {
  test("--token, else $CACHISH_TOKEN, else --token-file", async () => {
    const dir = tempDir({ token: `${TOKEN}\n`, wrong: "wrong\n" });
    expect((await get(["/db", "--token", TOKEN], { env: { CACHISH_TOKEN: "wrong" } })).code).toBe(0);
    expect((await get(["/db", "--token-file", join(dir, "wrong")])).code).toBe(0);
    // An empty $CACHISH_TOKEN counts as unset.
    expect((await get(["/db", "--token-file", join(dir, "token")], { env: { CACHISH_TOKEN: "" } })).code).toBe(0);
    const onlyFile = await cachish(["get", "/db", "--token-file", join(dir, "token")], { env: { CACHISH_URL: daemon.url } });
    expect(onlyFile.code).toBe(0);
    const missing = await cachish(["get", "/db", "--token-file", join(dir, "nope")], { env: { CACHISH_URL: daemon.url } });
    expect(missing).toEqual({ code: 1, stdout: "", stderr: `cachish get: cannot read the token file ${join(dir, "nope")}: no such file\n` });
  });

  test("--server, else $CACHISH_URL, else http://127.0.0.1:2469", async () => {
    expect((await get(["/db", "--server", daemon.url], { env: { CACHISH_URL: "http://127.0.0.1:1" } })).code).toBe(0);
    const fallback = await cachish(["get", "/public"], { env: {} });
    // Nothing of ours listens on 2469 during the tests, unless a developer's daemon does.
    expect([0, 69]).toContain(fallback.code);
    if (fallback.code === 69) expect(fallback.stderr).toStartWith("cachish get: /public: the daemon at http://127.0.0.1:2469 cannot be reached");
  });

  test("a daemon on a unix socket", async () => {
    const dir = tempDir();
    const socket = join(dir, "cachish.sock");
    const onSocket = await Daemon.start(config(`unix:${socket}`), { dir });
    expect(await get(["/db", "--field", "REDIS_URL", "--server", `unix:${socket}`])).toEqual({ code: 0, stdout: "redis://r\n", stderr: "" });
    await onSocket.stop();
  });
});

describe("exit codes", () => {
  test("77 when refused: no token (401), a token that may not read the path (403)", async () => {
    const none = await cachish(["get", "/db"], { env: { CACHISH_URL: daemon.url } });
    expect(none).toEqual({ code: 77, stdout: "", stderr: "cachish get: /db: the daemon wants a token for /db (401); give one with --token, $CACHISH_TOKEN or --token-file\n" });
    const other = await get(["/db", "--token", "other-token"]);
    expect(other).toEqual({ code: 77, stdout: "", stderr: "cachish get: /db: the daemon refused this token for /db (403): it is unknown, or its client may not read this path\n" });
  });

  test("1 for an item the daemon does not have", async () => {
    expect(await get(["/gone"])).toEqual({ code: 1, stdout: "", stderr: "cachish get: /gone: the daemon has no item /gone (404)\n" });
  });

  test("69 when the daemon cannot be reached, or answers 503", async () => {
    const port = await closedPort();
    const unreachable = await get(["/db", "--server", `http://127.0.0.1:${port}`]);
    expect(unreachable).toEqual({ code: 69, stdout: "", stderr: `cachish get: /db: the daemon at http://127.0.0.1:${port} cannot be reached (ECONNREFUSED)\n` });
    upstream.on("/never", { status: 500, body: "no" });
    const dir = tempDir();
    const d = await Daemon.start(config().replace("items:\n", `items:\n  /never:\n    module: JsonHttp\n    parameters: {url: "${upstream.url}/never"}\n`), { dir });
    const down = await get(["/never", "--server", d.url]);
    expect(down).toEqual({ code: 69, stdout: "", stderr: "cachish get: /never: the daemon answered 503: the upstream failed (status-500) and no value is stored\n" });
    await d.stop();
  });

  test("2 for usage errors", async () => {
    for (const args of [[], ["db"], ["/db", "--format", "xml"], ["/db", "--field", "A", "--format", "env"], ["/db", "--field", "A", "--format", "sh"], ["/db", "--max-age", "soon"], ["/db", "--max-age", "0s"], ["/db", "--wait", "x"], ["/db", "--config", "c.yml", "--token", "t"], ["/db", "--bogus"]]) {
      const ran = await get(args);
      expect({ args, code: ran.code, stdout: ran.stdout }).toEqual({ args, code: 2, stdout: "" });
      expect(ran.stderr).toContain("Run `cachish get --help` for usage.");
    }
  });

  test("--help lists the exit codes", async () => {
    const help = await cachish(["get", "--help"]);
    expect(help.code).toBe(0);
    for (const line of ["69  unavailable", "77  refused", "2   usage error", "--max-age", "--wait", "--token-file"]) expect(help.stdout).toContain(line);
  });

  test("no message holds the token", async () => {
    const secret = "tok-never-printed-Xx9";
    const port = await closedPort();
    for (const args of [["/db"], ["/gone"], ["/db", "--server", `http://127.0.0.1:${port}`], ["/bad-keys", "--format", "env"]]) {
      const ran = await get([...args, "--token", secret]);
      expect(ran.stdout + ran.stderr).not.toContain(secret);
    }
  });
});

describe("stale values and age", () => {
  test("a stale value is printed, exit 0, with one warning line saying its age and why", async () => {
    await get(["/flaky"]);
    upstream.on("/flaky", { status: 502, body: "down" });
    const ran = await get(["/flaky"]);
    expect(ran.code).toBe(0);
    expect(ran.stdout).toBe('{"v": "still here"}\n');
    expect(ran.stderr).toMatch(/^cachish get: warning: \/flaky is a stale value, \d+ s old: the upstream failed \(status-502\) and the stored value was served\n$/);
    expect(await get(["/flaky", "--quiet"])).toEqual({ code: 0, stdout: '{"v": "still here"}\n', stderr: "" });
    upstream.json("/flaky", { v: "still here" });
  });

  test("--max-age refuses an older value with 69, and takes a younger one", async () => {
    const dir = tempDir();
    mkdirSync(join(dir, "store"), { mode: 0o700 });
    const file = join(dir, "store", createHash("sha256").update("/old").digest("hex"));
    writeFileSync(file, '{"old": true}');
    const hourAgo = new Date(Date.now() - 3600_000);
    utimesSync(file, hourAgo, hourAgo);
    upstream.on("/old", { status: 500, body: "down" });
    const d = await Daemon.start(config().replace("items:\n", `items:\n  /old:\n    module: JsonHttp\n    parameters: {url: "${upstream.url}/old"}\n`), { dir });
    const refused = await get(["/old", "--server", d.url, "--max-age", "30m"]);
    expect(refused.code).toBe(69);
    expect(refused.stdout).toBe("");
    expect(refused.stderr).toMatch(/^cachish get: \/old: the value is 36\d\d s old, not younger than --max-age 30m \(the upstream failed: status-500\)\n$/);
    const taken = await get(["/old", "--server", d.url, "--max-age", "2h", "--quiet"]);
    expect(taken).toEqual({ code: 0, stdout: '{"old": true}\n', stderr: "" });
    // An `Age` equal to the bound has reached it (a value is fresh while younger, RFC 9111 4.2);
    // the age only grows, so a bound equal to the age seen just before is always reached.
    const age = Number((await d.fetch("/old", { token: TOKEN })).headers.get("age"));
    expect(age).toBeGreaterThanOrEqual(3600);
    expect((await get(["/old", "--server", d.url, "--max-age", `${age}s`])).code).toBe(69);
    expect((await get(["/old", "--server", d.url, "--max-age", `${age + 30}s`, "--quiet"])).code).toBe(0);
    await d.stop();
  });
});

describe("--wait", () => {
  test("waits for a daemon that starts later", async () => {
    const port = await closedPort();
    const dir = tempDir();
    const waiting = get(["/db", "--server", `http://127.0.0.1:${port}`, "--wait", "20s", "--field", "REDIS_URL"]);
    await Bun.sleep(1000);
    const late = await Daemon.start(config(`127.0.0.1:${port}`), { dir });
    expect(await waiting).toEqual({ code: 0, stdout: "redis://r\n", stderr: "" });
    await late.stop();
  });

  test("gives up with 69 and says what it waited for", async () => {
    const port = await closedPort();
    const started = performance.now();
    const ran = await get(["/db", "--server", `http://127.0.0.1:${port}`, "--wait", "1s"]);
    expect(ran).toEqual({
      code: 69,
      stdout: "",
      stderr: `cachish get: /db: the daemon at http://127.0.0.1:${port} cannot be reached (ECONNREFUSED) (gave up after waiting 1s)\n`,
    });
    // The wait is the behaviour: about a second, certainly not ten.
    expect(performance.now() - started).toBeGreaterThan(900);
    expect(performance.now() - started).toBeLessThan(10_000);
  });
});

describe("--config: local mode", () => {
  test("resolves the item here, without a daemon or a token, through the daemon's own store", async () => {
    // The daemon's folder: its store is in use while the local mode reads and writes it.
    const path = join(daemon.dir, "cachish.yml");
    expect(await cachish(["get", "/db", "--config", path, "--field", "REDIS_URL"])).toEqual({ code: 0, stdout: "redis://r\n", stderr: "" });
    upstream.on("/flaky", { status: 503, body: "down" });
    await get(["/flaky"]); // the daemon still answers from the store
    const local = await cachish(["get", "/flaky", "--config", path]);
    expect(local.code).toBe(0);
    expect(local.stdout).toBe('{"v": "still here"}\n');
    expect(local.stderr).toMatch(/^cachish get: warning: \/flaky is a stale value, \d+ s old: the upstream failed \(status-503\)/);
    expect((await get(["/db"])).code).toBe(0);
    upstream.json("/flaky", { v: "still here" });
  });

  test("an invalid configuration, or an item it does not have: exit 1", async () => {
    const dir = tempDir({ "bad.yml": "items: {}\nbogus: 1\n" });
    expect(await cachish(["get", "/db", "--config", join(dir, "bad.yml")])).toEqual({
      code: 1,
      stdout: "",
      stderr: `cachish get: /db: the configuration ${join(dir, "bad.yml")} is invalid (1 error); \`cachish check-config ${join(dir, "bad.yml")}\` explains it\n`,
    });
    const path = join(daemon.dir, "cachish.yml");
    expect(await cachish(["get", "/gone", "--config", path])).toEqual({ code: 1, stdout: "", stderr: `cachish get: /gone: ${path} has no item /gone\n` });
  });

  test("nothing stored and the upstream down: 69", async () => {
    const refused = await closedPort();
    const dir = tempDir({ "c.yml": `cache_dir: store\nitems:\n  /x: {module: JsonHttp, disable_auth: true, parameters: {url: "http://127.0.0.1:${refused}/"}}\n` });
    expect(await cachish(["get", "/x", "--config", join(dir, "c.yml")])).toEqual({
      code: 69,
      stdout: "",
      stderr: "cachish get: /x: the upstream failed (connect) and no value is stored\n",
    });
  });
});
