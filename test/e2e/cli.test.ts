import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { cachish } from "../support/cli";
import { yaml } from "../support/config";
import { tempDir } from "../support/temp";

const EXAMPLES = join(import.meta.dir, "../../examples");
const ANSI = "\u001B[";

/** A file that 1.x would have run, broken in the ways operators break it. */
const BROKEN_1X = yaml(
  "items:",
  "  /database-url:",
  "    module: heroku",
  "    parameters:",
  "      api_token: 0123-abcd-secret",
  "      app: my-heroku-app",
  "  /ip-ranges:",
  "    module: JsonHttp",
  "    disable_auth: yes",
  "    parameters:",
  "      url: https://ip-ranges.example.com/ip-ranges.json",
  "      feild: [prefixes]",
  "auth:",
  "  7sZ1p4Kx0wq8rVJb2mT9cA: /database-url",
  "  worker:",
  "    token: Q3nVh8yL2pZ6dR0sW4tB1e",
  "    url: [/database-url, /ip-*]",
  "  cron:",
  "    token: Q3nVh8yL2pZ6dR0sW4tB1e",
  "    url: /databse-url",
);

const SECRETS = ["0123-abcd-secret", "7sZ1p4Kx0wq8rVJb2mT9cA", "Q3nVh8yL2pZ6dR0sW4tB1e"];

describe("cachish --version and --help", () => {
  test("--version prints the package version", async () => {
    expect(await cachish(["--version"])).toEqual({ code: 0, stdout: `${pkg.version}\n`, stderr: "" });
    expect(await cachish(["-v"])).toEqual({ code: 0, stdout: `${pkg.version}\n`, stderr: "" });
  });

  test("--help lists check-config, without colour codes when not on a terminal", async () => {
    const help = await cachish(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("check-config");
    expect(help.stdout).toContain("(cachish v2.0.0-dev)");
    expect(help.stdout).not.toContain(ANSI);
    expect(help.stderr).toBe("");
  });

  test("check-config --help lists its options and exit codes", async () => {
    const help = await cachish(["check-config", "--help"]);
    expect(help.code).toBe(0);
    for (const word of ["--strict", "--json", "--config", "EXIT CODES", "2  usage error"]) expect(help.stdout).toContain(word);
    expect(help.stdout).not.toContain(ANSI);
  });

  test("no command: the help on stderr, exit 2", async () => {
    const ran = await cachish([]);
    expect(ran.code).toBe(2);
    expect(ran.stdout).toBe("");
    expect(ran.stderr).toContain("USAGE");
  });

  test("usage errors exit 2 with one line saying what is wrong", async () => {
    expect(await cachish(["chek-config"])).toEqual({
      code: 2,
      stdout: "",
      stderr: "cachish: unknown command `chek-config`; did you mean `check-config`?\nRun `cachish --help` for usage.\n",
    });
    expect(await cachish(["check-config", "--jsno"])).toEqual({
      code: 2,
      stdout: "",
      stderr: "cachish check-config: unknown option `--jsno`; did you mean `--json`?\nRun `cachish check-config --help` for usage.\n",
    });
    expect((await cachish(["check-config", "--config"])).stderr).toStartWith("cachish check-config: option `--config` needs a value\n");
    expect((await cachish(["check-config", "a.yml", "b.yml"])).stderr).toStartWith("cachish check-config: unexpected argument `b.yml`\n");
    const both = await cachish(["check-config", "a.yml", "--config", "b.yml"]);
    expect(both.code).toBe(2);
    expect(both.stderr).toStartWith("cachish check-config: give the file either as FILE or as --config FILE, not both\n");
  });
});

describe("cachish check-config", () => {
  test("a valid file: exit 0 and a summary of items, clients and public items", async () => {
    const ran = await cachish(["check-config", join(EXAMPLES, "cachish.yml")]);
    expect(ran.stderr).toBe("");
    expect(ran.code).toBe(0);
    expect(ran.stdout).toBe(
      [
        `${join(EXAMPLES, "cachish.yml")}: valid, 3 items, 2 clients`,
        "",
        "listen   127.0.0.1:2469",
        `store    ${join(EXAMPLES, "..", "var/cache/cachish.sqlite")}`,
        "log      logfmt, level info",
        "metrics  served at /metrics",
        "shared   none",
        "",
        "items:",
        "  /database-url      Heroku    timeout 5s, ttl 10s, max_stale 7d, stale_on any, max_backoff 30s",
        "  /ip-ranges         JsonHttp  timeout 5s, ttl 10s, stale_on any, max_backoff 30s, refresh 10m; public",
        "  /partner-settings  Hawk      timeout 5s, ttl 10s, stale_after 500ms, stale_on any, max_backoff 30s",
        "",
        "clients:",
        "  web     /database-url",
        "  worker  /database-url, /partner-settings",
        "",
        "readable without a token:",
        "  /ip-ranges",
        "",
      ].join("\n"),
    );
  });

  test("a 1.x file: valid, with its warning on stderr", async () => {
    const ran = await cachish(["check-config", "cachish-1x.yml"], { cwd: EXAMPLES });
    expect(ran.code).toBe(0);
    expect(ran.stderr).toBe(
      "cachish-1x.yml:44:1: warning: log_config is 1.x's Python logging setup and is ignored; use `log: {format: logfmt|json, level: ...}` instead\n",
    );
    expect(ran.stdout).toStartWith("cachish-1x.yml: valid, 5 items, 2 clients (1 warning)\n");
  });

  test("a broken 1.x file is explained in one run, by line and column, without a secret", async () => {
    const dir = tempDir({ "cachish.yml": BROKEN_1X });
    const ran = await cachish(["check-config", "cachish.yml"], { cwd: dir });
    expect(ran.code).toBe(1);
    expect(ran.stdout).toBe("");
    expect(ran.stderr).toBe(
      [
        "cachish.yml:3:13: error: unknown module; did you mean `Heroku`? (modules are case-sensitive, as in 1.x)",
        "cachish.yml:12:7: error: unknown key in the parameters of `JsonHttp`; did you mean `field`?",
        "cachish.yml:14:27: error: this client entry is in the pre-1.1 form `TOKEN: /path`; rewrite it as `NAME: {token: TOKEN, url: /path}` with a name of your choice (the token is not shown here)",
        "cachish.yml:19:12: error: client `cron` has the same token as client `worker`; give each client its own token (1.x let the last one win, which silently locked the other out)",
        "cachish.yml:20:10: warning: this glob matches no item",
        "cachish.yml: invalid (4 errors, 1 warning)",
        "",
      ].join("\n"),
    );
    for (const secret of SECRETS) expect(ran.stderr).not.toContain(secret);
  });

  test("--strict refuses warnings", async () => {
    const ran = await cachish(["check-config", "--strict", "cachish-1x.yml"], { cwd: EXAMPLES });
    expect(ran.code).toBe(1);
    expect(ran.stdout).toBe("");
    expect(ran.stderr).toBe(
      "cachish-1x.yml:44:1: error: log_config is 1.x's Python logging setup and is ignored; use `log: {format: logfmt|json, level: ...}` instead\n" +
        "cachish-1x.yml: invalid (1 warning, refused by --strict)\n",
    );
  });

  test("--json: one document with problems and summary, no secret in it", async () => {
    const dir = tempDir({ "cachish.yml": BROKEN_1X });
    const broken = await cachish(["check-config", "--json", "cachish.yml"], { cwd: dir });
    expect(broken.code).toBe(1);
    expect(broken.stderr).toBe("");
    const report = JSON.parse(broken.stdout);
    expect(report).toMatchObject({ file: "cachish.yml", valid: false, strict: false, errors: 4, warnings: 1, summary: null });
    expect(report.problems[0]).toEqual({
      severity: "error",
      line: 3,
      column: 13,
      message: "unknown module; did you mean `Heroku`? (modules are case-sensitive, as in 1.x)",
    });
    for (const secret of SECRETS) expect(broken.stdout).not.toContain(secret);

    const good = await cachish(["check-config", "--json", "cachish-1x.yml"], { cwd: EXAMPLES });
    expect(good.code).toBe(0);
    const summary = JSON.parse(good.stdout).summary;
    expect(summary.public).toEqual(["/ip-ranges", "/ip-ranges-raw"]);
    expect(summary.clients).toEqual([
      { name: "web", items: ["/database-url"] },
      { name: "worker", items: ["/database-url", "/database-urls", "/ip-ranges", "/ip-ranges-raw", "/partner"] },
    ]);
    expect(summary.items[0]).toEqual({
      path: "/database-url",
      module: "Heroku",
      public: false,
      policy: { timeout: "5s", ttl: "0s", max_stale: null, stale_after: null, stale_on: ["any"], max_backoff: "30s", refresh: null, proxy: null, max_body: "16MiB" },
      clients: ["web", "worker"],
    });
    for (const secret of ["0123-abcd", "s3cr3t-hawk-key", "7sZ1p4Kx0wq8rVJb2mT9cA"]) expect(good.stdout).not.toContain(secret);
  });

  test("the file comes from --config, else $CACHISH_CONFIG_FILE, else /etc/cachish.yml", async () => {
    const viaOption = await cachish(["check-config", "--config", "cachish-1x.yml"], { cwd: EXAMPLES });
    expect(viaOption.stdout).toStartWith("cachish-1x.yml: valid");
    const viaEnv = await cachish(["check-config"], { cwd: EXAMPLES, env: { CACHISH_CONFIG_FILE: "cachish.yml" } });
    expect(viaEnv.code).toBe(0);
    expect(viaEnv.stdout).toStartWith("cachish.yml: valid");
    if (!existsSync("/etc/cachish.yml")) {
      expect(await cachish(["check-config"])).toEqual({
        code: 1,
        stdout: "",
        stderr: "/etc/cachish.yml: error: cannot read the configuration: no such file\n/etc/cachish.yml: invalid (1 error)\n",
      });
    }
  });

  test("select: a pointer that is none is reported where it stands, unquoted; the summary shows each item's pointer, only where set", async () => {
    const broken = tempDir({
      "cachish.yml": yaml(
        "items:",
        "  /a:",
        "    module: JsonHttp",
        "    parameters: {url: 'http://x/', select: data/SECRET}",
        "  /b:",
        "    module: Hawk",
        "    parameters:",
        "      url: http://x/",
        "      secret_id: i",
        "      secret: k",
        "      select: /data/SECRET~2",
        "auth:",
        "  web: {token: abcdefgh12345678, url: /*}",
      ),
    });
    expect(await cachish(["check-config", "cachish.yml"], { cwd: broken })).toEqual({
      code: 1,
      stdout: "",
      stderr: [
        "cachish.yml:4:44: error: `select`: a JSON Pointer is empty (the whole answer) or starts with `/`, e.g. `/data/data`",
        "cachish.yml:11:15: error: `select`: a `~` in a JSON Pointer (its 13th character) stands only as `~0` (for `~`) or `~1` (for `/`): write a key holding `~` or `/` with them, `a/b` as `/a~1b`",
        "cachish.yml: invalid (2 errors)",
        "",
      ].join("\n"),
    });

    const dir = tempDir({
      "cachish.yml": yaml(
        "items:",
        "  /vault: {module: JsonHttp, parameters: {url: 'http://x/', select: /data/data, field: DATABASE_URL}}",
        "  /whole: {module: Hawk, parameters: {url: 'http://x/', secret_id: i, secret: k, select: ''}}",
        "  /plain: {module: JsonHttp, parameters: {url: 'http://x/'}}",
        "auth:",
        "  web: {token: abcdefgh12345678, url: /*}",
      ),
    });
    const text = await cachish(["check-config", "cachish.yml"], { cwd: dir });
    expect(text.code).toBe(0);
    expect(text.stdout.split("\n").slice(8, 12)).toEqual([
      "items:",
      '  /vault  JsonHttp select "/data/data"  timeout 5s, ttl 0s, stale_on any, max_backoff 30s',
      '  /whole  Hawk select ""                timeout 5s, ttl 0s, stale_on any, max_backoff 30s',
      "  /plain  JsonHttp                      timeout 5s, ttl 0s, stale_on any, max_backoff 30s",
    ]);
    const json = await cachish(["check-config", "--json", "cachish.yml"], { cwd: dir });
    const items = JSON.parse(json.stdout).summary.items as Record<string, unknown>[];
    expect(items.map(({ path, module, select }) => ({ path, module, select }))).toEqual([
      { path: "/vault", module: "JsonHttp", select: "/data/data" },
      { path: "/whole", module: "Hawk", select: "" },
      { path: "/plain", module: "JsonHttp", select: undefined },
    ]);
    expect("select" in items[2]!).toBe(false);
  });

  test("a select or a program given by a secret reference shows as [secret] in the summary, never its content", async () => {
    const dir = tempDir({
      "cachish.yml": yaml(
        "items:",
        "  /a: {module: JsonHttp, parameters: {url: 'http://x/', select: {env: SELECT_REF}}}",
        "  /b: {module: Command, parameters: {argv: [{env: PROGRAM_REF}, x]}}",
        "auth:",
        "  web: {token: abcdefgh12345678, url: /*}",
      ),
    });
    const env = { SELECT_REF: "/pointer-from-env", PROGRAM_REF: "/opt/program-from-env" };
    const text = await cachish(["check-config", "cachish.yml"], { cwd: dir, env });
    expect(text.code).toBe(0);
    expect(text.stdout).not.toContain("from-env");
    expect(text.stdout).toContain('/a  JsonHttp select "[secret]"');
    expect(text.stdout).toContain("/b  Command [secret]");
    const json = await cachish(["check-config", "--json", "cachish.yml"], { cwd: dir, env });
    expect(json.stdout).not.toContain("from-env");
  });

  test("a missing secret is pointed at, neither its reference nor its content shown", async () => {
    const dir = tempDir({
      "cachish.yml": yaml("items:", "  /a: {module: JsonHttp, parameters: {url: 'http://x/'}}", "auth:", "  web: {token: {env: WEB_TOKEN}, url: /a}"),
    });
    const unset = await cachish(["check-config", "cachish.yml"], { cwd: dir });
    expect(unset.code).toBe(1);
    expect(unset.stderr).toStartWith("cachish.yml:4:22: error: `token`: the environment variable it names is not set\n");
    const set = await cachish(["check-config", "cachish.yml"], { cwd: dir, env: { WEB_TOKEN: "env-secret-value" } });
    expect(set.code).toBe(0);
    expect(set.stdout + set.stderr).not.toContain("env-secret-value");
  });

  test("BUN_CONFIG_VERBOSE_FETCH set: it refuses to run, since Bun would print every request with its token", async () => {
    const ran = await cachish(["check-config", "--help"], { env: { BUN_CONFIG_VERBOSE_FETCH: "curl" } });
    expect(ran).toEqual({ code: 1, stdout: "", stderr: "cachish: BUN_CONFIG_VERBOSE_FETCH is set: Bun would print every request with its token; unset it and start again\n" });
    expect((await cachish(["version"], { env: { BUN_CONFIG_VERBOSE_FETCH: "0" } })).code).toBe(0);
  });

  test("the binary ignores .env and bunfig.toml in the folder it starts in", async () => {
    const dir = tempDir({
      ".env": "CACHISH_CONFIG_FILE=from-dotenv.yml\n",
      "bunfig.toml": 'preload = ["./preload.ts"]\n',
      "preload.ts": 'console.log("PRELOADED");\n',
      "from-dotenv.yml": yaml("items:", "  /a: {module: JsonHttp, disable_auth: true, parameters: {url: 'http://x/'}}"),
    });
    const ran = await cachish(["check-config"], { cwd: dir });
    expect(ran.stdout).not.toContain("PRELOADED");
    expect(ran.stdout + ran.stderr).not.toContain("from-dotenv.yml");
    if (!existsSync("/etc/cachish.yml")) {
      expect(ran.stderr).toStartWith("/etc/cachish.yml: error: cannot read the configuration");
      expect(ran.code).toBe(1);
    }
  });
});
