import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load";
import { locateConfig } from "../../src/config/locate";
import { Secret } from "../../src/config/secret";
import { formatDuration, formatSize, parseDuration, parseSize } from "../../src/config/units";
import { CLIENT, check, ITEM, yaml } from "../support/config";
import { tempDir } from "../support/temp";

const EXAMPLES = join(import.meta.dir, "../../examples");
const valid = (...extra: string[]) => yaml("items:", ...ITEM, "auth:", ...CLIENT, ...extra);

describe("a 1.x configuration", () => {
  test("with every 1.x feature loads unchanged, warning only about log_config", () => {
    const result = loadConfig(join(EXAMPLES, "cachish-1x.yml"), {});
    expect(result.problems.map((p) => `${p.at?.line}:${p.at?.column}: ${p.severity}: ${p.message}`)).toEqual([
      "44:1: warning: log_config is 1.x's Python logging setup and is ignored; use `log: {format: logfmt|json, level: ...}` instead",
    ]);
    const config = result.config!;
    expect([...config.items.keys()]).toEqual(["/database-url", "/database-urls", "/ip-ranges", "/ip-ranges-raw", "/partner"]);
    expect(config.items.get("/ip-ranges")!.disable_auth).toBe(true); // `yes`, as PyYAML read it
    expect(config.items.get("/ip-ranges-raw")!.disable_auth).toBe(true); // `True`
    expect(config.items.get("/database-url")!.disable_auth).toBe(false);
    const urls = config.items.get("/database-urls")!;
    expect(urls.module === "Heroku" && urls.parameters.config_key).toEqual(["DATABASE_URL", "REDIS_URL"]);
    expect(urls.module === "Heroku" && urls.parameters.api_url).toBe("https://api.heroku.com");
    const raw = config.items.get("/ip-ranges-raw")!;
    expect(raw.module === "JsonHttp" && raw.parameters.field).toEqual(["syncToken"]);
    const hawk = config.items.get("/partner")!;
    expect(hawk.module === "Hawk" && hawk.parameters.algorithm).toBe("sha1");
    expect(config.cache_dir).toBe("/var/cache/cachish");
    expect(config.clients.map((c) => [c.name, [...c.items]])).toEqual([
      ["web", ["/database-url"]],
      ["worker", ["/database-url", "/database-urls", "/ip-ranges", "/ip-ranges-raw", "/partner"]],
    ]);
  });

  test("values PyYAML read as strings are strings: `field: [x, y]`, `config_key: N`, `app: 1e3`", () => {
    const source = yaml(
      "items:",
      "  /picked:",
      "    module: JsonHttp",
      "    parameters: {url: 'http://127.0.0.1:9/a', field: [x, y]}",
      "  /db:",
      "    module: Heroku",
      "    parameters: {api_token: t0ken, app: 1e3, config_key: N}",
      "auth:",
      "  web: {token: web-token, url: '/*'}",
    );
    const { problems, config } = check(source);
    expect(problems).toEqual([]);
    const picked = config!.items.get("/picked")!;
    expect(picked.module === "JsonHttp" && picked.parameters.field).toEqual(["x", "y"]);
    const db = config!.items.get("/db")!;
    expect(db.module === "Heroku" && [db.parameters.app, db.parameters.config_key]).toEqual(["1e3", ["N"]]);
  });

  test("gets 1.x's behaviour where 2.x adds a key", () => {
    const config = loadConfig(join(EXAMPLES, "cachish-1x.yml"), {}).config!;
    expect(config.listen).toEqual({ kind: "tcp", host: "127.0.0.1", port: 2469 });
    expect(config.log).toEqual({ format: "logfmt", level: "info" });
    expect(config.metrics).toBe(true);
    expect(config.items.get("/database-url")!.policy).toEqual({
      timeout: 5000, ttl: 0, max_stale: null, stale_after: null, stale_on: ["any"], max_backoff: 30_000, refresh: null, max_body: 16 * 1024 * 1024, proxy: null,
    });
  });
});

describe("the demo configuration", () => {
  test("loads without a problem, its secrets read from files beside it", () => {
    const result = loadConfig(join(EXAMPLES, "cachish.yml"), {});
    expect(result.problems).toEqual([]);
    const config = result.config!;
    expect(config.cache_dir).toBe(join(EXAMPLES, "../var/cache"));
    const db = config.items.get("/database-url")!;
    expect(db.module === "Heroku" && db.parameters.api_token.reveal()).toBe("not-a-real-heroku-token");
    expect(db.policy.max_stale).toBe(7 * 86_400_000);
    expect(db.policy.ttl).toBe(10_000);
    const web = config.clients.find((c) => c.name === "web")!;
    expect(Buffer.from(web.tokenSha256).toString("hex")).toBe(new Bun.CryptoHasher("sha256").update("demo-web-token").digest("hex"));
  });
});

describe("resolution", () => {
  test("an item's policy key wins over defaults, which win over the built-in default", () => {
    const source = yaml(
      "defaults: {ttl: 1m, max_stale: 1d, refresh: 5m}",
      "items:",
      "  /a: {module: JsonHttp, parameters: {url: 'http://x/a'}, ttl: 2s, max_stale: null}",
      "  /b: {module: JsonHttp, parameters: {url: 'http://x/b'}}",
      "auth:",
      "  web: {token: t, url: '*'}",
    );
    const { config, problems } = check(source);
    expect(problems).toEqual([]);
    expect(config!.items.get("/a")!.policy).toMatchObject({ ttl: 2000, max_stale: null, refresh: 300_000, timeout: 5000 });
    expect(config!.items.get("/b")!.policy).toMatchObject({ ttl: 60_000, max_stale: 86_400_000, refresh: 300_000 });
  });

  test("secret references: env, file without its trailing newline, credential", () => {
    const source = yaml(
      "items:",
      "  /a:",
      "    module: Heroku",
      "    parameters:",
      "      api_token: {env: HEROKU_TOKEN}",
      "      app: {file: app-name}",
      "      config_key: DATABASE_URL",
      "auth:",
      "  web: {token: {credential: web-token}, url: /a}",
    );
    const credentials = tempDir({ "web-token": "w-456\n" });
    const { config, problems } = check(source, {
      env: { HEROKU_TOKEN: "h-123", CREDENTIALS_DIRECTORY: credentials },
      files: { "app-name": "my-app\n" },
    });
    expect(problems).toEqual([]);
    const item = config!.items.get("/a")!;
    expect(item.module).toBe("Heroku");
    if (item.module !== "Heroku") return;
    expect(item.parameters.api_token.reveal()).toBe("h-123");
    expect(item.parameters.app).toBe("my-app");
    const web = config!.clients[0]!;
    expect(Buffer.from(web.tokenSha256).toString("hex")).toBe(new Bun.CryptoHasher("sha256").update("w-456").digest("hex"));
  });

  test("a value that may be a secret prints as [secret], everywhere", () => {
    const secret = new Secret("hunter2");
    expect(String(secret)).toBe("[secret]");
    expect(JSON.stringify({ secret })).toBe('{"secret":"[secret]"}');
    expect(Bun.inspect({ secret })).not.toContain("hunter2");
    expect(`${secret}`).toBe("[secret]");
    expect(secret.reveal()).toBe("hunter2");
  });

  test("no token or parameter secret can be seen in a loaded configuration", () => {
    const config = loadConfig(join(EXAMPLES, "cachish-1x.yml"), {}).config!;
    const printed = Bun.inspect(config, { depth: 10 }) + JSON.stringify([...config.items.values()]);
    for (const secret of ["0123-abcd", "s3cr3t-hawk-key", "7sZ1p4Kx0wq8rVJb2mT9cA", "Q3nVh8yL2pZ6dR0sW4tB1e"]) {
      expect(printed).not.toContain(secret);
    }
  });

  test("cache_dir: $CACHE_DIRECTORY when systemd sets it, else /var/cache/cachish; relative to the file", () => {
    expect(check(valid()).config!.cache_dir).toBe("/var/cache/cachish");
    expect(check(valid(), { env: { CACHE_DIRECTORY: "/var/cache/cachish-a:/var/cache/other" } }).config!.cache_dir).toBe("/var/cache/cachish-a");
    const relative = check(valid("cache_dir: store"), { env: { CACHE_DIRECTORY: "/ignored" } });
    expect(relative.config!.cache_dir).toBe(join(relative.dir, "store"));
  });

  test("listen: TCP, IPv6 and unix sockets", () => {
    expect(check(valid("listen: '[::1]:8080'")).config!.listen).toEqual({ kind: "tcp", host: "::1", port: 8080 });
    expect(check(valid("listen: 0.0.0.0:0")).config!.listen).toEqual({ kind: "tcp", host: "0.0.0.0", port: 0 });
    expect(check(valid("listen: unix:/run/cachish.sock")).config!.listen).toEqual({ kind: "unix", path: "/run/cachish.sock" });
    const relative = check(valid("listen: unix:cachish.sock"));
    expect(relative.config!.listen).toEqual({ kind: "unix", path: join(relative.dir, "cachish.sock") });
  });

  test("YAML 1.1 booleans and numbers mean what PyYAML made of them", () => {
    for (const word of ["yes", "Yes", "on", "ON", "true", "True"]) {
      expect(check(valid().replace("  /a:", `  /a:\n    disable_auth: ${word}`)).config!.items.get("/a")!.disable_auth).toBe(true);
    }
    for (const word of ["no", "off", "false", "False"]) {
      expect(check(valid().replace("  /a:", `  /a:\n    disable_auth: ${word}`)).config!.items.get("/a")!.disable_auth).toBe(false);
    }
    // 010 is octal in YAML 1.1: eight seconds, as PyYAML would have read it.
    expect(check(valid("defaults: {ttl: 010}")).config!.items.get("/a")!.policy.ttl).toBe(8000);
  });

  test("merge keys, which PyYAML supports, work", () => {
    const { problems, config } = check(
      yaml(
        "items:",
        "  /a: &a",
        "    module: JsonHttp",
        "    parameters: {url: 'http://x/a'}",
        "  /b:",
        "    <<: *a",
        "    ttl: 5s",
        "auth:",
        "  web: {token: t, url: '*'}",
      ),
    );
    expect(problems).toEqual([]);
    expect(config!.items.get("/b")).toMatchObject({ module: "JsonHttp", parameters: { url: "http://x/a" }, policy: { ttl: 5000 } });
  });
});

describe("units", () => {
  test("durations", () => {
    expect(parseDuration(5)).toBe(5000);
    expect(parseDuration(0.25)).toBe(250);
    expect(parseDuration("250ms")).toBe(250);
    expect(parseDuration("5s")).toBe(5000);
    expect(parseDuration("10m")).toBe(600_000);
    expect(parseDuration("2h")).toBe(7_200_000);
    expect(parseDuration("7d")).toBe(604_800_000);
    expect(parseDuration("1h30m")).toBe(5_400_000);
    expect(parseDuration("1.5s")).toBe(1500);
    expect(parseDuration("12")).toBe(12_000);
    for (const bad of ["", "5", "s", "5 s", "5x", "-1s", "1h 30m", "ms5", -1, Number.NaN, true, null]) {
      if (bad !== "5") expect(parseDuration(bad)).toBeUndefined();
    }
    expect(formatDuration(5400_000)).toBe("90m");
    expect(formatDuration(1500)).toBe("1500ms");
    expect(formatDuration(0)).toBe("0s");
  });

  test("sizes", () => {
    expect(parseSize(1024)).toBe(1024);
    expect(parseSize("512KiB")).toBe(524_288);
    expect(parseSize("16MiB")).toBe(16_777_216);
    expect(parseSize("1GiB")).toBe(1_073_741_824);
    expect(parseSize("2MB")).toBe(2_000_000);
    expect(parseSize("500kb")).toBe(500_000);
    expect(parseSize("100B")).toBe(100);
    for (const bad of ["", "16 megs", "1.5", "0.5B", "-1", "MiB", 1.5, -1]) expect(parseSize(bad)).toBeUndefined();
    expect(formatSize(16_777_216)).toBe("16MiB");
    expect(formatSize(1000)).toBe("1000B");
  });
});

describe("where the configuration comes from", () => {
  test("--config, else $CACHISH_CONFIG_FILE, else /etc/cachish.yml", () => {
    expect(locateConfig("a.yml", { CACHISH_CONFIG_FILE: "b.yml" })).toBe("a.yml");
    expect(locateConfig(undefined, { CACHISH_CONFIG_FILE: "b.yml" })).toBe("b.yml");
    expect(locateConfig(undefined, {})).toBe("/etc/cachish.yml");
  });

  test("an unreadable file is one problem, without a position", () => {
    expect(loadConfig("/nonexistent/cachish.yml", {}).problems).toEqual([
      { severity: "error", message: "cannot read the configuration: no such file" },
    ]);
  });

  test("the example files are the ones documented", () => {
    expect(readFileSync(join(EXAMPLES, "cachish.yml"), "utf8")).toStartWith("# yaml-language-server: $schema=../schema/cachish.schema.json");
  });
});
