import { describe, expect, test } from "bun:test";
import { CLIENT, check, ITEM, yaml } from "../support/config";

const valid = (...extra: string[]) => yaml("items:", ...ITEM, "auth:", ...CLIENT, ...extra);

describe("validation reports each problem at its line and column", () => {
  test("a YAML syntax error, and nothing the parser guessed after it", () => {
    const { problems, config } = check(valid("listen: 127.0.0.1: 2469", "colour: blue"));
    expect(problems).toEqual([
      "10:9: error: YAML: Nested mappings are not allowed in compact mappings",
      "error: the rest of the file is checked once its YAML syntax is fixed",
    ]);
    expect(config).toBeUndefined();
  });

  test("an empty file starts, serving nothing, as in 1.x (SPEC 3)", () => {
    const { problems, config } = check("");
    expect(problems).toEqual(["1:1: warning: no item is configured: the daemon serves nothing (1.x started with such a file)"]);
    expect(config?.items.size).toBe(0);
  });

  test("an unknown key at the top level is an error, with a suggestion", () => {
    expect(check(valid("cache-dir: /tmp")).problems).toEqual(["10:1: error: unknown key at the top level; did you mean `cache_dir`?"]);
  });

  test("an unknown key at the top level without a close match", () => {
    expect(check(valid("colour: blue")).problems).toEqual(["10:1: error: unknown key at the top level"]);
  });

  test("an unknown key in defaults is an error", () => {
    expect(check(valid("defaults:", "  max_stal: 1h")).problems).toEqual(["11:3: error: unknown key in `defaults`; did you mean `max_stale`?"]);
  });

  test("an unknown key in log is an error", () => {
    expect(check(valid("log:", "  formt: json")).problems).toEqual(["11:3: error: unknown key in `log`; did you mean `format`?"]);
  });

  test("an unknown key in parameters is an error", () => {
    expect(check(yaml("items:", ...ITEM, "      feild: [a]", "auth:", ...CLIENT)).problems).toEqual([
      "6:7: error: unknown key in the parameters of `JsonHttp`; did you mean `field`?",
    ]);
  });

  test("an unknown key in an item is a warning, as 1.x ignored it", () => {
    const { problems, config } = check(yaml("items:", ...ITEM, "    timout: 5s", "auth:", ...CLIENT));
    expect(problems).toEqual(["6:5: warning: unknown key in item `/a`; did you mean `timeout`? (ignored, as 1.x did)"]);
    expect(config).toBeDefined();
  });

  test("an unknown key in a client is a warning", () => {
    const { problems, config } = check(valid().replace("    url: /a", "    url: /a\n    comment: the web app"));
    expect(problems).toEqual(["10:5: warning: unknown key in this client (ignored, as 1.x did)"]);
    expect(config).toBeDefined();
  });

  test("a missing required parameter is reported at `parameters`, naming what the module needs", () => {
    const source = yaml("items:", "  /db:", "    module: Heroku", "    parameters:", "      api_token: t", "      app: my-app", "auth:", "  web:", "    token: x", "    url: /db");
    expect(check(source).problems).toEqual(["4:5: error: missing `config_key` in the parameters of `Heroku`"]);
  });

  test("missing parameters altogether are reported at the item", () => {
    const source = yaml("items:", "  /db:", "    module: Heroku", "auth:", "  web:", "    token: x", "    url: /db");
    expect(check(source).problems).toEqual(["2:3: error: missing `parameters` in item `/db`; `Heroku` needs `api_token`, `app`, `config_key`"]);
  });

  test("a missing module", () => {
    const source = yaml("items:", "  /a:", "    parameters:", "      url: http://x/", "auth:", ...CLIENT);
    expect(check(source).problems).toEqual(["2:3: error: missing `module` in item `/a`"]);
  });

  test("an unknown module, with the right spelling since modules are case-sensitive", () => {
    const source = yaml("items:", "  /a:", "    module: jsonhttp", "    parameters:", "      url: http://x/", "auth:", ...CLIENT);
    expect(check(source).problems).toEqual([
      "3:13: error: unknown module; did you mean `JsonHttp`? (modules are case-sensitive, as in 1.x)",
    ]);
  });

  test("an unknown module that is nothing like a known one", () => {
    const source = yaml("items:", "  /a:", "    module: Redis", "    parameters:", "      url: http://x/", "auth:", ...CLIENT);
    expect(check(source).problems).toEqual(["3:13: error: unknown module; expected one of `JsonHttp`, `Heroku`, `Hawk`, `Command`"]);
  });

  test("an item path that does not start with /", () => {
    const { problems } = check(valid().replace("  /a:", "  a:").replace("url: /a", "url: a"));
    expect(problems).toEqual(["2:3: error: an item path must start with `/`"]);
  });

  test("an item path with ? or #", () => {
    expect(check(valid().replace("  /a:", "  /a?x=1:").replace("url: /a", "url: /a*")).problems).toEqual([
      "2:3: error: an item path must not hold `?` or `#`: the daemon ignores the query string and never sees a fragment",
    ]);
    expect(check(valid().replace("  /a:", "  /a#top:").replace("url: /a", "url: /a*")).problems[0]).toStartWith("2:3: error: an item path must not hold");
  });

  test("item paths that collide with the daemon's own", () => {
    for (const path of ["/metrics", "/-/ready", "/-/anything/else"]) {
      const { problems } = check(valid().replace("  /a:", `  ${path}:`).replace("url: /a", "url: '*'"));
      expect(problems).toEqual([
        "2:3: error: this item path is the daemon's own (`/metrics` and everything under `/-/` are reserved); choose another path",
      ]);
    }
  });

  test("two clients with the same token, pointing at the second and naming the first", () => {
    const source = valid("  worker:", "    token: web-token", "    url: /a");
    expect(check(source).problems).toEqual([
      "11:12: error: client `worker` has the same token as client `web`; give each client its own token (1.x let the last one win, which silently locked the other out)",
    ]);
  });

  test("a token_sha256 that is the hash of another client's token is the same token", () => {
    const hash = new Bun.CryptoHasher("sha256").update("web-token").digest("hex");
    const source = valid("  worker:", `    token_sha256: ${hash.toUpperCase()}`, "    url: /a");
    expect(check(source).problems).toEqual([
      "11:19: error: client `worker` has the same token as client `web`; give each client its own token (1.x let the last one win, which silently locked the other out)",
    ]);
  });

  test("a client in the pre-1.1 form `TOKEN: /path`, with advice and without the token", () => {
    const source = yaml("items:", ...ITEM, "auth:", "  Zx81Secr3tT0ken: /a");
    const { problems } = check(source);
    expect(problems).toEqual([
      "7:20: error: this client entry is in the pre-1.1 form `TOKEN: /path`; rewrite it as `NAME: {token: TOKEN, url: /path}` with a name of your choice (the token is not shown here)",
    ]);
    expect(problems.join("\n")).not.toContain("Zx81Secr3tT0ken");
  });

  test("a client with neither or both of token and token_sha256", () => {
    expect(check(yaml("items:", ...ITEM, "auth:", "  web:", "    url: /a")).problems).toEqual(["7:3: error: this client needs `token` or `token_sha256`"]);
    const both = valid().replace("    url: /a", `    token_sha256: ${"a".repeat(64)}\n    url: /a`);
    expect(check(both).problems).toEqual(["9:5: error: this client has both `token` and `token_sha256`; keep one"]);
  });

  test("a token_sha256 that is not 64 hex digits", () => {
    const source = yaml("items:", ...ITEM, "auth:", "  web:", "    token_sha256: abc", "    url: /a");
    expect(check(source).problems).toEqual(["8:19: error: `token_sha256`: must be 64 hexadecimal digits (the output of `printf %s TOKEN | sha256sum`)"]);
  });

  test("an unparsable duration and a duration that must be positive", () => {
    expect(check(valid("defaults:", "  ttl: 5 minutes")).problems).toEqual([
      "11:8: error: `ttl` is not a duration; write a number of seconds or a string such as `250ms`, `5s`, `10m`, `2h`, `7d`",
    ]);
    expect(check(valid("defaults:", "  timeout: 0s")).problems).toEqual(["11:12: error: `timeout` must be more than 0"]);
    expect(check(valid("defaults:", "  ttl: -1")).problems).toEqual([
      "11:8: error: `ttl` is not a duration; write a number of seconds or a string such as `250ms`, `5s`, `10m`, `2h`, `7d`",
    ]);
  });

  test("an unparsable size", () => {
    expect(check(valid("defaults:", "  max_body: 16 megs")).problems).toEqual([
      "11:13: error: `max_body` is not a size; write a number of bytes or a string such as `512KiB`, `16MiB`",
    ]);
  });

  test("an unparsable or unsupported URL, without echoing it", () => {
    const bad = check(valid().replace("http://127.0.0.1:9/a", "not a url with secret-in-it")).problems;
    expect(bad).toEqual(["5:12: error: `url`: not a valid URL; write it in full, e.g. `https://api.example.com/path`"]);
    const ftp = check(valid().replace("http://127.0.0.1:9/a", "ftp://user:pw@host/a")).problems;
    expect(ftp).toEqual(["5:12: error: `url`: the URL's scheme is not supported; use `http:` or `https:`"]);
    expect(ftp.join()).not.toContain("pw@");
  });

  test("an unparsable listen address", () => {
    expect(check(valid("listen: 2469")).problems).toEqual(["10:9: error: `listen` must be a string, found a number; put it in quotes to make it a string"]);
    expect(check(valid("listen: localhost")).problems).toEqual([
      "10:9: error: `listen`: expected `HOST:PORT` (e.g. `127.0.0.1:2469`, `[::1]:2469`) or `unix:/path/to/socket`",
    ]);
    expect(check(valid("listen: ':2469'")).problems).toEqual([
      "10:9: error: `listen`: the host is missing: write `127.0.0.1:PORT` for this machine only, or `0.0.0.0:PORT` for every interface",
    ]);
    expect(check(valid("listen: 127.0.0.1:99999")).problems).toEqual(["10:9: error: `listen`: the port is out of range (0 to 65535)"]);
    expect(check(valid("listen: 'unix:'")).problems).toEqual(["10:9: error: `listen`: `unix:` needs a socket path, e.g. `unix:/run/cachish/cachish.sock`"]);
  });

  test("an {env:} reference to an unset variable", () => {
    const source = valid().replace("token: web-token", "token: {env: WEB_TOKEN}");
    expect(check(source).problems).toEqual(["8:18: error: `token`: the environment variable it names is not set"]);
    expect(check(source, { env: { WEB_TOKEN: "" } }).problems).toEqual(["8:18: error: `token`: the environment variable it names is empty"]);
  });

  test("a {file:} reference that cannot be read", () => {
    const { problems } = check(valid().replace("token: web-token", "token: {file: missing.txt}"));
    expect(problems).toEqual(["8:19: error: `token`: the file it names cannot be read: no such file"]);
  });

  test("a {credential:} reference without $CREDENTIALS_DIRECTORY, or without the file", () => {
    const source = valid().replace("token: web-token", "token: {credential: web-token}");
    expect(check(source).problems).toEqual([
      "8:25: error: `token`: CREDENTIALS_DIRECTORY is not set (systemd sets it when the unit has LoadCredential=NAME:...)",
    ]);
    expect(check(source, { env: { CREDENTIALS_DIRECTORY: "/nonexistent" } }).problems).toEqual([
      "8:25: error: `token`: the credential it names cannot be read: no such file",
    ]);
    expect(check(valid().replace("token: web-token", "token: {credential: ../etc/passwd}")).problems[0]).toStartWith(
      "8:25: error: `token`: a credential's name must be a plain file name, as in LoadCredential=NAME:...",
    );
  });

  test("a malformed secret reference", () => {
    expect(check(valid().replace("token: web-token", "token: {envv: X}")).problems).toEqual([
      "8:12: error: `token`: a secret reference is a map of one key: `{env: NAME}`, `{file: PATH}` or `{credential: NAME}`; did you mean `env`?",
    ]);
    expect(check(valid().replace("token: web-token", "token: {env: A, file: b}")).problems[0]).toStartWith("8:12: error: `token`: a secret reference is a map of one key");
  });

  test("a secret reference where none is allowed", () => {
    expect(check(valid("cache_dir: {env: DIR}")).problems).toEqual(["10:12: error: `cache_dir` must be a string, found a mapping"]);
  });

  test("a list of globs with one that is not a string: its problem, no crash (a fuzzer found it)", () => {
    expect(check(valid().replace("    url: /a", "    url: [/a, [/b]]")).problems).toEqual(["9:15: error: `url` must be a string, found a list"]);
  });

  test("max_body above 1 GiB (a body is held in memory whole)", () => {
    expect(check(valid("defaults: {max_body: 2GiB}")).problems).toEqual(["10:22: error: `max_body` must be at most 1GiB"]);
    expect(check(valid("defaults: {max_body: 1GiB}")).problems).toEqual([]);
  });

  test("a glob that matches no item is a warning", () => {
    const { problems, config } = check(valid().replace("    url: /a", "    url: [/a, /b*]"));
    expect(problems).toEqual(["9:15: warning: this glob matches no item"]);
    expect(config).toBeDefined();
  });

  test("an item that no client may read is a warning", () => {
    const source = yaml("items:", ...ITEM, "  /b:", "    module: JsonHttp", "    parameters: {url: 'http://x/b'}", "auth:", ...CLIENT);
    expect(check(source).problems).toEqual([
      "6:3: warning: no client may read item `/b`: no glob in `auth` matches it, and it does not have `disable_auth: true`",
    ]);
  });

  test("log_config is accepted, ignored and warned about", () => {
    const { problems, config } = check(valid("log_config:", "  version: 1", "  root: {level: INFO}"));
    expect(problems).toEqual([
      "10:1: warning: log_config is 1.x's Python logging setup and is ignored; use `log: {format: logfmt|json, level: ...}` instead",
    ]);
    expect(config?.log).toEqual({ format: "logfmt", level: "info" });
  });

  test("a key set twice is a warning, and the later one wins as in PyYAML", () => {
    const { problems, config } = check(valid("listen: 127.0.0.1:1", "listen: 127.0.0.1:2"));
    expect(problems).toEqual(["11:1: warning: this key is set again here (first on line 10); the later one wins, as in 1.x"]);
    expect(config?.listen).toEqual({ kind: "tcp", host: "127.0.0.1", port: 2 });
  });

  test("a value of the wrong kind", () => {
    expect(check(valid().replace("http://127.0.0.1:9/a", "[http://a]")).problems).toEqual([
      "5:12: error: `url` must be a string (or a secret reference: `{env: NAME}`, `{file: PATH}` or `{credential: NAME}`), found a list",
    ]);
    expect(check(valid("metrics: maybe")).problems).toEqual(["10:10: error: `metrics` must be true or false"]);
    expect(check(valid("log: json")).problems).toEqual(["10:6: error: `log` must be a mapping of keys (format, level)"]);
    expect(check(valid("log: {format: text}")).problems).toEqual(["10:15: error: unknown format; expected one of `logfmt`, `json`"]);
    expect(check(yaml("items: [/a]")).problems).toEqual(["1:8: error: `items` must be a mapping of item paths to their settings"]);
  });

  test("a key without a value", () => {
    expect(check(valid("listen:")).problems).toEqual(["10:1: error: `listen` has no value"]);
    expect(check(yaml("items:", "  /a:", "auth:", ...CLIENT)).problems).toEqual(["2:3: error: item `/a` is empty; it needs `module` and `parameters`"]);
  });

  test("a file without items, or with `items:` empty, starts serving nothing, as in 1.x", () => {
    const warning = "warning: no item is configured: the daemon serves nothing (1.x started with such a file)";
    expect(check(yaml("auth: {}")).problems).toEqual([`1:1: ${warning}`]);
    expect(check(yaml("items:", "auth: {}")).problems).toEqual([`1:1: ${warning}`]);
    expect(check(yaml("log: {level: warn}", "items: {}")).problems).toEqual([`2:1: ${warning}`]);
    expect(check(yaml("items:", "auth: {}")).config?.items.size).toBe(0);
  });

  test("a client whose url is an empty list can read nothing: a warning, as 1.x started with it; other empty lists are errors", () => {
    const { problems, config } = check(valid().replace("    url: /a", "    url: []"));
    expect(problems).toEqual([
      "2:3: warning: no client may read item `/a`: no glob in `auth` matches it, and it does not have `disable_auth: true`",
      "9:10: warning: `url` is an empty list: this client can read nothing (1.x started with it)",
    ]);
    expect(config?.clients.map((c) => [c.name, c.items.size])).toEqual([["web", 0]]);
    expect(check(valid().replace("      url: http://127.0.0.1:9/a", "      url: http://127.0.0.1:9/a\n      field: []")).problems).toEqual(["6:14: error: `field` is an empty list"]);
  });

  test("an item path that a request's normalised path could never be: `//`, `/./`, `/../`", () => {
    for (const path of ["/a//b", "/a/./b", "/a/../b", "/a/.."]) {
      expect(check(valid().replace("  /a:", `  ${path}:`).replace("url: /a", "url: '*'")).problems).toEqual([
        "2:3: error: an item path must not hold `//`, `/./` or `/../`: a request's path is normalised, so it could never be asked for",
      ]);
    }
  });

  test("an item path with a space, as 1.x allowed", () => {
    const { problems, config } = check(valid().replace("  /a:", "  /sp ace:").replace("url: /a", "url: /sp*"));
    expect(problems).toEqual([]);
    expect([...config!.items.keys()]).toEqual(["/sp ace"]);
  });

  test("a policy that cannot take effect is a warning", () => {
    expect(check(valid("defaults:", "  timeout: 2s", "  stale_after: 3s")).problems).toEqual([
      "12:16: warning: `stale_after` is not shorter than `timeout`, so it never takes effect",
    ]);
    expect(check(valid("defaults:", "  ttl: 2h", "  max_stale: 1h")).problems).toEqual([
      "11:8: warning: `ttl` is longer than `max_stale`: a value becomes unservable before it is due for a refresh",
    ]);
  });

  test("every problem of a broken file comes in one run, in file order", () => {
    const source = yaml(
      "itmes: {}",
      "items:",
      "  /db:",
      "    module: heroku",
      "    parameters: {api_token: t, app: a, config_key: K}",
      "  /x:",
      "    module: JsonHttp",
      "    ttl: soon",
      "    parameters: {url: 'http://x/'}",
      "auth:",
      "  web: {token: t1, url: /db}",
      "  api: {token: t1, url: /x}",
    );
    expect(check(source).problems).toEqual([
      "1:1: error: unknown key at the top level; did you mean `items`?",
      "4:13: error: unknown module; did you mean `Heroku`? (modules are case-sensitive, as in 1.x)",
      "8:10: error: `ttl` is not a duration; write a number of seconds or a string such as `250ms`, `5s`, `10m`, `2h`, `7d`",
      "12:16: error: client `api` has the same token as client `web`; give each client its own token (1.x let the last one win, which silently locked the other out)",
    ]);
  });

  test("shared_store: a URL that is not postgres://, a key that is not 32 bytes of base64, a missing key", () => {
    const key = Buffer.alloc(32, 1).toString("base64");
    expect(check(valid("shared_store:", "  url: mysql://u:p@db/x", `  key: ${key}`)).problems).toEqual([
      "11:8: error: `url`: must be a `postgres://` or `postgresql://` URL, e.g. `postgres://cachish:PASSWORD@db.internal:5432/cachish`",
    ]);
    expect(check(valid("shared_store:", "  url: postgres://u:p@db/x", "  key: c2hvcnQ=")).problems).toEqual([
      "12:8: error: `key`: must be 32 bytes in base64 (make one with `openssl rand -base64 32`)",
    ]);
    expect(check(valid("shared_store:", "  url: postgres://u:p@db/x")).problems).toEqual(["10:1: error: missing `key` in `shared_store`"]);
    const ok = check(valid("shared_store:", "  url: {env: PG_URL}", "  key: {env: PG_KEY}", "  timeout: 500ms"), { env: { PG_URL: "postgresql://u:secret-pw@db:5432/x", PG_KEY: key } });
    expect(ok.problems).toEqual([]);
    expect(ok.config!.shared_store!.timeout).toBe(500);
    expect(ok.config!.shared_store!.url.reveal()).toBe("postgresql://u:secret-pw@db:5432/x");
    expect(JSON.stringify(ok.config!.shared_store)).not.toContain("secret-pw");
  });
});
