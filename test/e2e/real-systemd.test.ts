/**
 * cachish under a real systemd 252 (SPEC 8, issue 15): a Debian bookworm container booted by
 * systemd-nspawn (test/support/container.ts), loopback only, where the package built by
 * `npm run deb` is installed over a stand-in for 1.7.0's, and the README's units for a dependent
 * service are installed as the README writes them. The upstream is a small Bun server inside the
 * container (the test's own Bun binary, bound in read-only). The tests share one container and
 * run in order: each leaves cachish as the next expects it.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import fc from "fast-check";
import { Container, containerMissing } from "../support/container";
import { debianRoot } from "../support/debian-root";
import { envValue, NAMED_VALUES, parseEnv0 } from "../support/env-values";
import { CACHE_FILE, OPERATOR, oldPackage } from "../support/old-package";
import { tempDir } from "../support/temp";

const REPO = join(import.meta.dir, "../..");
const missing = containerMissing() ?? (Bun.which("dpkg-deb") ? undefined : "dpkg-deb is not installed");
const TOKEN = "myapp-token-Qe8wZ3";
const UPSTREAM_KEY = "upstream-key-Jd72kP";

/** The value of /database-url: every kind of character the SPEC names, and generated ones (fixed seed). */
const GENERATED = fc.sample(envValue, { numRuns: 60, seed: 20261130 });
const VALUES: Record<string, string> = { DATABASE_URL: "postgres://u:p@db.internal/app", ...NAMED_VALUES, ...Object.fromEntries(GENERATED.map((v, i) => [`GEN_${i}`, v])) };

/** Serves /srv/upstream/PATH.json; /secret only with the key that cachish gets through LoadCredential=. */
const UPSTREAM_JS = `Bun.serve({ hostname: "127.0.0.1", port: 8080, async fetch(request) {
  const path = new URL(request.url).pathname;
  if (path === "/secret" && request.headers.get("x-key") !== (await Bun.file("/srv/upstream/key").text())) return new Response("no", { status: 401 });
  const file = Bun.file("/srv/upstream" + path + ".json");
  return (await file.exists()) ? new Response(file, { headers: { "content-type": "application/json" } }) : new Response("none", { status: 404 });
} });
`;

/** The dependent service's program: it writes the environment it was started with, then runs on. */
const MYAPP = `#!/bin/sh
env -0 > "/var/lib/seen/$SEEN_AS.tmp" && mv "/var/lib/seen/$SEEN_AS.tmp" "/var/lib/seen/$SEEN_AS"
exec sleep infinity
`;

function config(extra = ""): string {
  return `${extra}items:
  /database-url:
    module: JsonHttp
    parameters: {url: "http://127.0.0.1:8080/database-url"}
    ttl: 1s
  /secret:
    module: JsonHttp
    parameters:
      url: http://127.0.0.1:8080/secret
      headers: {X-Key: {credential: upstream-key}}
auth:
  myapp: {token_sha256: ${new Bun.CryptoHasher("sha256").update(TOKEN).digest("hex")}, url: "*"}
`;
}

/** The README's unit files named `unit` in `section` (up to the next heading), as written. */
function readmeUnits(section = "### In a systemd unit", unit = "myapp.service"): string[] {
  const readme = readFileSync(join(REPO, "README.md"), "utf8");
  const start = readme.indexOf(section) + section.length;
  const end = readme.slice(start).search(/\n#{2,3} /);
  const text = readme.slice(start, end < 0 ? undefined : start + end);
  return [...text.matchAll(new RegExp(`\`\`\`ini\\n(# /etc/systemd/system/${unit.replaceAll(".", "\\.")}\\n[\\s\\S]*?)\`\`\``, "g"))].map((m) => m[1]!);
}

/** What a started program saw: its environment, byte for byte. */
const environmentOf = (file: string) => parseEnv0(readFileSync(file));

describe.skipIf(missing !== undefined)(`under a real systemd${missing ? ` (skipped: ${missing})` : ""}`, () => {
  let box: Container;
  let root: string;
  const inRoot = (path: string) => join(root, path);
  const put = (path: string, content: string, mode = 0o644) => {
    mkdirSync(dirname(inRoot(path)), { recursive: true });
    writeFileSync(inRoot(path), content);
    chmodSync(inRoot(path), mode);
  };
  /** Runs a command inside and expects it to succeed (its standard error shown if not); its standard output. */
  const ok = async (...args: string[]) => {
    const ran = await box.run(args);
    expect({ args, code: ran.code, stderr: ran.code === 0 ? "" : ran.stderr }).toEqual({ args, code: 0, stderr: "" });
    return ran.stdout;
  };
  const show = async (unit: string, property: string) => (await ok("systemctl", "show", "-p", property, "--value", unit)).trim();
  const get = (path: string, ...more: string[]) => box.run(["cachish", "get", path, "--token", TOKEN, ...more]);
  /** Where the journal is now, as `--after-cursor=...`: given to `journal`, only what came after is read. */
  const mark = async () => `--after-cursor=${/^-- cursor: (.+)$/m.exec(await ok("journalctl", "-q", "-n", "0", "--show-cursor"))![1]!}`;
  /** A unit's journal, as its lines were written; `more`: journalctl's options (a mark, `-b` for this boot). */
  const journal = async (unit: string, ...more: string[]) => (await box.run(["journalctl", "-q", "-o", "cat", "--no-pager", "-u", unit, ...more])).stdout;
  /** Waits for a condition inside the container, up to `ms`. */
  const until = async (what: string, check: () => Promise<boolean>, ms = 20_000) => {
    const deadline = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`waited ${ms} ms for ${what}`);
      await Bun.sleep(100);
    }
  };
  const setConfig = (text: string) => put("etc/cachish.yml", text, 0o640);
  /** The environment the dependent service `name` was started with, once its program has written it. */
  const seenBy = async (name: string) => {
    await until(`${name} to start its program`, async () => (await box.run(["test", "-e", `/var/lib/seen/${name}`])).code === 0);
    return environmentOf(inRoot(`var/lib/seen/${name}`));
  };
  /** Every value of /database-url, byte for byte, in what `name`'s program saw. */
  const expectAllValues = async (name: string) => {
    const seen = await seenBy(name);
    for (const [key, value] of Object.entries(VALUES)) expect({ name, key, value: seen.get(key)?.toString("hex") }).toEqual({ name, key, value: Buffer.from(value).toString("hex") });
  };

  beforeAll(async () => {
    const out = tempDir();
    const built = Bun.spawnSync([process.execPath, "scripts/deb.ts", "--out", out, "--fast"], { cwd: REPO, stdout: "pipe", stderr: "pipe" });
    if (built.exitCode !== 0) throw new Error(built.stderr.toString());
    root = debianRoot();
    copyFileSync(built.stdout.toString().trim().split("\n").at(-1)!, inRoot("root/cachish.deb"));
    copyFileSync(oldPackage(join(out, "stops")), inRoot("root/cachish-1.7.0.deb"));
    copyFileSync(oldPackage(join(out, "keeps"), { stopsOnUpgrade: false }), inRoot("root/cachish-1.7.0-keeps-running.deb"));
    put("usr/local/lib/upstream.js", UPSTREAM_JS);
    put("etc/systemd/system/upstream.service", "[Service]\nExecStart=/usr/local/bin/bun /usr/local/lib/upstream.js\nEnvironment=HOME=/tmp\n");
    put("srv/upstream/database-url.json", JSON.stringify(VALUES));
    put("srv/upstream/secret.json", JSON.stringify({ secret: "behind a credential" }));
    put("srv/upstream/key", UPSTREAM_KEY);
    put("etc/cachish/upstream-key", UPSTREAM_KEY, 0o600);
    put("etc/myapp/cachish-token", `${TOKEN}\n`, 0o600);
    put("usr/bin/myapp", MYAPP, 0o755);
    mkdirSync(inRoot("var/lib/seen"), { recursive: true });
    box = await Container.boot(root, [`${process.execPath}:/usr/local/bin/bun`]);
    await ok("systemctl", "start", "upstream.service");
  }, 300_000);
  afterAll(async () => {
    await box?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  }, 90_000);

  /** Where every test after the upgrade starts, whatever the one before did or failed to undo: config(), only the credentials' drop-in, cachish running. */
  afterEach(async () => {
    setConfig(config());
    await ok("rm", "-f", "/etc/systemd/system/cachish.service.d/watchdog.conf", "/etc/systemd/system/cachish.service.d/heroku.conf", "/etc/systemd/system/myapp-sh.service.d/socket.conf");
    put("etc/systemd/system/cachish.service.d/credentials.conf", "[Service]\nLoadCredential=upstream-key:/etc/cachish/upstream-key\n");
    await ok("systemctl", "daemon-reload");
    await ok("systemctl", "restart", "cachish");
  }, 30_000);

  test("installed over 1.7.0's package: the operator's file, 1.x's values served with the upstream down, as the cachish user, nothing of 1.x left", async () => {
    await ok("dpkg", "-i", "/root/cachish-1.7.0.deb");
    expect(await show("cachish", "ExecStart")).toContain("/opt/venvs/cachish/bin/gunicorn");
    expect(await show("cachish", "ActiveState")).toBe("active");
    const uid = (await ok("id", "-u", "cachish")).trim();
    expect(await ok("sh", "-c", `sed -n 's/^Uid:\\t//p' /proc/${await show("cachish", "MainPID")}/status`)).toBe(`${uid}\t${uid}\t${uid}\t${uid}\n`);
    setConfig(OPERATOR);
    await ok("chown", "root:cachish", "/etc/cachish.yml");
    put(`var/cache/cachish/${CACHE_FILE}`, '{"db": "postgres://kept"}');
    await ok("chown", "cachish:cachish", `/var/cache/cachish/${CACHE_FILE}`);

    await ok("dpkg", "-i", "/root/cachish.deb");
    expect(await show("cachish", "ActiveState")).toBe("active");
    expect(await show("cachish", "UnitFileState")).toBe("enabled");
    expect(readFileSync(inRoot("etc/cachish.yml"), "utf8")).toBe(OPERATOR);
    expect(await ok("stat", "-c", "%U:%G %a", "/etc/cachish.yml")).toBe("root:cachish 640\n");
    const pid = await show("cachish", "MainPID");
    expect(await ok("cat", `/proc/${pid}/cmdline`)).toBe("/usr/bin/cachish\0serve\0--config\0/etc/cachish.yml\0");
    // The same user as 1.x's service, not one made anew.
    expect((await ok("id", "-u", "cachish")).trim()).toBe(uid);
    expect(await ok("sh", "-c", `sed -n 's/^Uid:\\t//p' /proc/${pid}/status`)).toBe(`${uid}\t${uid}\t${uid}\t${uid}\n`);
    // As the README's upgrade steps say: the journal shows the imported 1.x file, then the ready line.
    expect(await journal("cachish")).toMatch(new RegExp(`msg="imported the 1\\.x cache file" item=/db file=/var/cache/cachish/${CACHE_FILE} [^\\n]*\\n[^]*msg=ready `));
    // The value 1.x stored, with its upstream (127.0.0.1:9) down: stale, and served.
    const served = await box.run(["cachish", "get", "/db", "--token", "operator-token-1"]);
    expect(served.stdout).toBe('{"db": "postgres://kept"}\n');
    expect(served.stderr).toStartWith("cachish get: warning: /db is a stale value");
    expect(served.code).toBe(0);
    const processes = await ok("sh", "-c", "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done");
    expect(processes).not.toContain("gunicorn");
    expect(await box.run(["test", "-e", "/etc/logrotate.d/cachish"])).toMatchObject({ code: 1 });
    expect(await box.run(["test", "-e", "/opt/venvs/cachish"])).toMatchObject({ code: 1 });
  }, 60_000);

  test("Type=notify: `systemctl restart` returns once cachish serves; its status line and the journal say so; LoadCredential= hands it a secret", async () => {
    // afterEach gave it config() and LoadCredential=upstream-key.
    expect(await show("cachish", "Type")).toBe("notify");
    const since = await mark();
    await ok("systemctl", "restart", "cachish");
    // No --wait: systemd let `restart` return only after READY=1.
    expect(await get("/secret")).toEqual({ code: 0, stdout: '{"secret": "behind a credential"}\n', stderr: "" });
    expect(await show("cachish", "StatusText")).toBe("serving 2 items to 1 client on 127.0.0.1:2469");
    expect(await journal("cachish", since)).toMatch(/^time=\S+ level=info msg=ready version=\S+ listen=127\.0\.0\.1:2469 items=2 clients=1 store=\/var\/cache\/cachish config=\/etc\/cachish\.yml$/m);
    expect(await journal("cachish")).not.toContain(UPSTREAM_KEY);
  }, 60_000);

  test("the sandbox as shipped: no new privileges, a seccomp filter, no capabilities, a read-only /etc, an empty /root, a /tmp of its own", async () => {
    const pid = await show("cachish", "MainPID");
    const status = await ok("cat", `/proc/${pid}/status`);
    expect(/^NoNewPrivs:\t(\d)$/m.exec(status)?.[1]).toBe("1");
    expect(/^Seccomp:\t(\d)$/m.exec(status)?.[1]).toBe("2");
    expect(/^CapEff:\t(\w+)$/m.exec(status)?.[1]).toBe("0000000000000000");
    // In the service's own mount namespace, as it sees the file system.
    const inService = (script: string) => box.run(["nsenter", "-t", pid, "-m", "sh", "-c", script]);
    expect((await inService("touch /etc/cachish-was-here")).stderr).toContain("Read-only file system");
    // /root holds the packages out there; ProtectHome= leaves an empty, inaccessible folder in its place.
    expect(await inService("ls -A /root")).toEqual({ code: 0, stdout: "", stderr: "" });
    await ok("touch", "/tmp/outside");
    expect((await inService("test -e /tmp/outside")).code).toBe(1);
  }, 30_000);

  test("a Command item under the shipped sandbox: its program runs, starts a child, writes in the HOME it is given, and its value is served", async () => {
    // A stand-in for `vault kv get -format=json`: a child of its own (as a CLI's helpers are), a file in its HOME.
    put("usr/local/bin/vault", `#!/bin/sh
sh -c 'echo "$PPID" > "$HOME/child-of"'
mkdir -p "$HOME/.cache" && echo "$VAULT_TOKEN" > "$HOME/.cache/seen-token"
cat <<'EOF'
{"request_id": "1c7c2a3e", "lease_id": "", "lease_duration": 0, "renewable": false,
 "data": {"data": {"password": "s3cr3t", "username": "app"}, "metadata": {"created_time": "2024-05-02T10:41:17.123456789Z", "custom_metadata": null, "deletion_time": "", "destroyed": false, "version": 2}},
 "warnings": null, "mount_type": "kv"}
EOF
`, 0o755);
    setConfig(config().replace("items:\n", "items:\n  /vault:\n    module: Command\n    parameters:\n      argv: [vault, kv, get, -format=json, secret/myapp]\n      env: {HOME: /var/lib/cachish, VAULT_TOKEN: {credential: upstream-key}}\n      field: data\n"));
    await ok("systemctl", "restart", "cachish");
    const served = await get("/vault");
    expect({ code: served.code, stderr: served.stderr }).toEqual({ code: 0, stderr: "" });
    expect(JSON.parse(served.stdout).data.data).toEqual({ password: "s3cr3t", username: "app" });
    expect(await ok("cat", "/var/lib/cachish/.cache/seen-token")).toBe(`${UPSTREAM_KEY}\n`);
    expect(Number(await ok("cat", "/var/lib/cachish/child-of"))).toBeGreaterThan(1);
    expect(await ok("stat", "-c", "%U %a", "/var/lib/cachish")).toBe("cachish 700\n");
    expect(await journal("cachish")).not.toContain(UPSTREAM_KEY);
  }, 60_000);

  test("the README's two dependent units: the program sees every value byte for byte", async () => {
    const units = readmeUnits();
    expect(units.length).toBe(2);
    for (const [i, name] of ["myapp-sh", "myapp-env"].entries()) {
      put(`etc/systemd/system/${name}.service`, units[i]!);
      put(`etc/systemd/system/${name}.service.d/seen.conf`, `[Service]\nEnvironment=SEEN_AS=${name}\n`);
    }
    await ok("systemctl", "daemon-reload");
    await ok("systemctl", "enable", "--now", "myapp-sh.service", "myapp-env.service");
    for (const name of ["myapp-sh", "myapp-env"]) await expectAllValues(name);
  }, 60_000);

  test("the README's watcher: myapp gets every value, is restarted exactly once when the upstream's value changes, and not while it stays the same", async () => {
    const section = "### Restarting a service when its value changes";
    const watcher = readmeUnits(section, "myapp-values.service");
    const app = readmeUnits(section, "myapp.service");
    expect([watcher.length, app.length]).toEqual([1, 1]);
    put("etc/systemd/system/myapp-values.service", watcher[0]!);
    put("etc/systemd/system/myapp.service", app[0]!);
    put("etc/systemd/system/myapp.service.d/seen.conf", "[Service]\nEnvironment=SEEN_AS=myapp-watched\nExecStartPost=/bin/sh -c 'echo started >> /var/lib/seen/myapp-watched.starts'\n");
    const starts = () => readFileSync(inRoot("var/lib/seen/myapp-watched.starts"), "utf8").split("\n").filter(Boolean).length;
    const changed = { ...VALUES, DATABASE_URL: "postgres://u:p@db2.internal/app" };
    await ok("systemctl", "daemon-reload");
    try {
      await ok("systemctl", "start", "myapp.service");
      await expectAllValues("myapp-watched");
      // The item's ttl is 1s: while the watcher waits, cachish fetches the same bytes every second.
      await Bun.sleep(3500);
      expect(starts()).toBe(1);
      put("srv/upstream/database-url.json", JSON.stringify(changed));
      await until("myapp to start again with the new value", async () => starts() === 2 && environmentOf(inRoot("var/lib/seen/myapp-watched")).get("DATABASE_URL")?.toString() === changed.DATABASE_URL);
      const seen = environmentOf(inRoot("var/lib/seen/myapp-watched"));
      for (const [key, value] of Object.entries(changed)) expect({ key, value: seen.get(key)?.toString("hex") }).toEqual({ key, value: Buffer.from(value).toString("hex") });
      await Bun.sleep(3500);
      expect(starts()).toBe(2);
      expect(await show("myapp-values.service", "ActiveState")).toBe("active");
    } finally {
      put("srv/upstream/database-url.json", JSON.stringify(VALUES));
      await box.run(["systemctl", "stop", "myapp.service", "myapp-values.service"]);
      await ok("rm", "-rf", "/etc/systemd/system/myapp.service", "/etc/systemd/system/myapp.service.d", "/etc/systemd/system/myapp-values.service", "/var/lib/seen/myapp-watched", "/var/lib/seen/myapp-watched.starts");
      await ok("systemctl", "daemon-reload");
    }
  }, 90_000);

  test("when `cachish get` fails, the README's units fail and their program does not start", async () => {
    for (const [i, name] of ["fail-sh", "fail-env"].entries()) {
      put(`etc/systemd/system/${name}.service`, readmeUnits()[i]!.replace("/database-url", "/no-such-item").replaceAll("/run/myapp/", "/run/fail-env/").replace("RuntimeDirectory=myapp", "RuntimeDirectory=fail-env"));
      put(`etc/systemd/system/${name}.service.d/seen.conf`, `[Service]\nEnvironment=SEEN_AS=${name}\n`);
    }
    await ok("systemctl", "daemon-reload");
    await box.run(["systemctl", "start", "fail-sh.service", "fail-env.service"]);
    for (const name of ["fail-sh", "fail-env"]) {
      await until(`${name} to fail`, async () => (await show(name, "ActiveState")) === "failed");
      expect(await box.run(["test", "-e", `/var/lib/seen/${name}`])).toMatchObject({ code: 1 });
      expect(await journal(name)).toContain("cachish get: /no-such-item:");
    }
  }, 60_000);

  test("reloads under load: every request answered, the same process, the new configuration served; an invalid file is refused and the old one serves", async () => {
    const pid = await show("cachish", "MainPID");
    setConfig(config().replace("items:\n", `items:\n  /added:\n    module: JsonHttp\n    parameters: {url: "http://127.0.0.1:8080/database-url", field: DATABASE_URL}\n    disable_auth: true\n`));
    const since = await mark();
    // Requests until the last reload is done (a flag file), counted: the load spans every reload.
    await ok("rm", "-f", "/tmp/reloaded");
    const load = box.sh(`n=0; until [ -e /tmp/reloaded ]; do cachish get /database-url --token ${TOKEN} >/dev/null || echo failed; n=$((n+1)); done; echo "$n requests"`);
    await Bun.sleep(300);
    for (let reload = 0; reload < 8; reload++) {
      await ok("systemctl", "reload", "cachish");
      await Bun.sleep(150);
    }
    await ok("touch", "/tmp/reloaded");
    const loaded = await load;
    expect({ code: loaded.code, failed: loaded.stdout.includes("failed"), stderr: loaded.stderr }).toEqual({ code: 0, failed: false, stderr: "" });
    expect(Number(/^(\d+) requests$/m.exec(loaded.stdout)?.[1])).toBeGreaterThan(10);
    expect(await show("cachish", "MainPID")).toBe(pid);
    expect(await show("cachish", "NRestarts")).toBe("0");
    expect(await box.run(["cachish", "get", "/added"])).toEqual({ code: 0, stdout: `{"DATABASE_URL": "${VALUES.DATABASE_URL}"}\n`, stderr: "" });
    expect((await journal("cachish", since)).match(/msg=reloaded /g)?.length).toBe(8);

    setConfig("items: [\n");
    await ok("systemctl", "reload", "cachish");
    await until("the refusal", async () => (await journal("cachish", since)).includes("msg=\"reload refused: the configuration is invalid; still serving the previous one\""));
    expect(await show("cachish", "ActiveState")).toBe("active");
    expect(await show("cachish", "MainPID")).toBe(pid);
    expect((await get("/database-url")).code).toBe(0);
  }, 60_000);

  test("the watchdog: pinged while cachish runs, and a stuck cachish is killed and restarted", async () => {
    put("etc/systemd/system/cachish.service.d/watchdog.conf", "[Service]\nWatchdogSec=2s\n");
    await ok("systemctl", "daemon-reload");
    await ok("systemctl", "restart", "cachish");
    const pid = await show("cachish", "MainPID");
    await Bun.sleep(5000); // 2.5 watchdog intervals: unpinged, it would be killed by now
    expect({ pid: await show("cachish", "MainPID"), restarts: await show("cachish", "NRestarts") }).toEqual({ pid, restarts: "0" });
    const since = await mark();
    await ok("systemctl", "kill", "--kill-whom=main", "-s", "SIGSTOP", "cachish");
    await until("a restart after the watchdog's timeout", async () => (await show("cachish", "NRestarts")) === "1" && (await show("cachish", "ActiveState")) === "active");
    expect(await journal("cachish", since)).toContain("cachish.service: Watchdog timeout");
  }, 60_000);

  test("listen: unix:/run/cachish/cachish.sock, as the shipped file suggests: served to another user, kept across restarts and a crash, removed at stop", async () => {
    setConfig(config("listen: unix:/run/cachish/cachish.sock\n"));
    await ok("systemctl", "restart", "cachish");
    const asNobody = () => box.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "cachish", "get", "/database-url", "--field", "DATABASE_URL", "--server", "unix:/run/cachish/cachish.sock", "--token", TOKEN]);
    expect(await asNobody()).toEqual({ code: 0, stdout: `${VALUES.DATABASE_URL}\n`, stderr: "" });
    const inode = await ok("stat", "-c", "%i", "/run/cachish");
    await ok("systemctl", "restart", "cachish");
    expect(await ok("stat", "-c", "%i", "/run/cachish")).toBe(inode);
    expect((await asNobody()).code).toBe(0);
    // A crash leaves the socket file behind; the restarted daemon replaces it.
    const restarts = Number(await show("cachish", "NRestarts"));
    await ok("systemctl", "kill", "-s", "KILL", "cachish");
    await until("the restart after the crash", async () => (await show("cachish", "ActiveState")) === "active" && Number(await show("cachish", "NRestarts")) > restarts);
    expect(await ok("stat", "-c", "%i", "/run/cachish")).toBe(inode);
    expect((await asNobody()).code).toBe(0);
    // The README's first unit, told to ask the socket.
    put("etc/systemd/system/myapp-sh.service.d/socket.conf", "[Service]\nEnvironment=CACHISH_URL=unix:/run/cachish/cachish.sock SEEN_AS=myapp-socket\n");
    await ok("systemctl", "daemon-reload");
    await ok("systemctl", "restart", "myapp-sh.service");
    expect((await seenBy("myapp-socket")).get("ALL")?.toString()).toBe(VALUES.ALL);
    await ok("systemctl", "stop", "cachish");
    expect(await box.run(["test", "-e", "/run/cachish"])).toMatchObject({ code: 1 });
  }, 90_000);

  test("the shipped /etc/cachish.yml starts as it is, and with every suggestion it comments out taken", async () => {
    const shipped = readFileSync(join(REPO, "packaging/cachish.yml"), "utf8");
    // Every suggestion taken: below the header, `# key: value   # note` becomes `key: value`, and
    // the example items replace `items: {}`.
    const header = shipped.slice(0, shipped.indexOf("\n# listen:") + 1);
    const taken = (header + shipped.slice(header.length).replace(/^items: \{\}\n/m, "").replace(/^# ( *[a-z0-9_/-]+:.*?)(?:[ \t]+#.*)?$/gm, "$1"))
      .replace("<the output of: printf %s \"$TOKEN\" | sha256sum>", new Bun.CryptoHasher("sha256").update(TOKEN).digest("hex"));
    put("etc/systemd/system/cachish.service.d/heroku.conf", "[Service]\nLoadCredential=heroku-token:/etc/cachish/upstream-key\n");
    await ok("systemctl", "daemon-reload");
    for (const [what, text] of [
      ["as shipped", shipped],
      ["with every suggestion", taken],
      ["with the unix socket", taken.replace(/^listen: .*$/m, "listen: unix:/run/cachish/cachish.sock")],
    ] as const) {
      setConfig(text);
      // Type=notify: the restart fails unless cachish, with this file, came to READY=1.
      await ok("systemctl", "restart", "cachish");
      expect({ what, state: await show("cachish", "ActiveState") }).toEqual({ what, state: "active" });
    }
    expect(taken).toMatch(/^listen: 127\.0\.0\.1:2469$/m);
    expect(taken).toMatch(/^ {2}\/database-url:$/m);
    expect(taken).toMatch(/^ {4}token_sha256: [0-9a-f]{64}$/m);
  }, 60_000);

  test("systemd-analyze security: the README gives the unit's score as this run measures it", async () => {
    const report = await ok("systemd-analyze", "security", "--no-pager", "cachish.service");
    const [, score, label] = /Overall exposure level for cachish\.service: (\d+\.\d+) (\w+)/.exec(report) ?? [];
    expect(score).toBeDefined();
    const claim = `\`systemd-analyze security\` rates it ${score}, "${label}"`;
    expect({ claim, inReadme: readFileSync(join(REPO, "README.md"), "utf8").includes(claim) }).toEqual({ claim, inReadme: true });
  }, 30_000);

  test("a reboot with the upstream down: cachish and the dependent units start at boot, and the program gets the stored values", async () => {
    for (const name of ["myapp-sh", "myapp-env", "myapp-socket"]) await ok("rm", "-f", `/var/lib/seen/${name}`);
    // The upstream is not enabled: after the reboot, nothing answers on 127.0.0.1:8080.
    expect(await show("upstream", "UnitFileState")).toBe("static");
    await box.reboot();
    expect(await show("upstream", "ActiveState")).toBe("inactive");
    expect(await box.run(["systemctl", "is-system-running"])).toMatchObject({ stdout: "running\n" });
    for (const name of ["myapp-sh", "myapp-env"]) await expectAllValues(name);
    // Past its ttl of 1s, the value was fetched, the fetch failed, and the stored value was served.
    expect(await journal("myapp-sh", "-b")).toContain("cachish get: warning: /database-url is a stale value");
  }, 120_000);

  test("stop, removal and purge: a clean stop; the unit gone with the package; the operator's file kept until purge; a first install; 1.7.0's own file", async () => {
    const since = await mark();
    await ok("systemctl", "stop", "cachish");
    expect({ state: await show("cachish", "ActiveState"), result: await show("cachish", "Result"), code: await show("cachish", "ExecMainCode"), status: await show("cachish", "ExecMainStatus") }).toEqual({ state: "inactive", result: "success", code: "1", status: "0" });
    expect(await journal("cachish", since)).toMatch(/msg=stopping signal=SIGTERM$[\s\S]*msg=stopped$/m);
    await ok("systemctl", "start", "cachish");
    await ok("dpkg", "-r", "cachish");
    expect(await show("cachish", "ActiveState")).toBe("inactive");
    expect(await box.run(["test", "-e", "/lib/systemd/system/cachish.service"])).toMatchObject({ code: 1 });
    expect(await box.run(["test", "-e", "/usr/bin/cachish"])).toMatchObject({ code: 1 });
    expect(await box.run(["test", "-e", "/etc/cachish.yml"])).toMatchObject({ code: 0 });
    await ok("dpkg", "-P", "cachish");
    expect(await box.run(["test", "-e", "/etc/cachish.yml"])).toMatchObject({ code: 1 });
    // A first install on this machine now: enabled and started, with the shipped file.
    await ok("dpkg", "-i", "/root/cachish.deb");
    expect({ state: await show("cachish", "ActiveState"), enabled: await show("cachish", "UnitFileState") }).toEqual({ state: "active", enabled: "enabled" });
    expect(readFileSync(inRoot("etc/cachish.yml"), "utf8")).toBe(readFileSync(join(REPO, "packaging/cachish.yml"), "utf8"));
    // Over a 1.7.0 whose operator wrote no file, and whose prerm leaves its service running
    // (debhelper's `--restart-after-upgrade`): the file 1.7.0's postinst wrote runs.
    await ok("dpkg", "-P", "cachish");
    await ok("dpkg", "-i", "/root/cachish-1.7.0-keeps-running.deb");
    expect(await show("cachish", "ExecStart")).toContain("/opt/venvs/cachish/bin/gunicorn");
    await ok("dpkg", "-i", "/root/cachish.deb");
    expect(readFileSync(inRoot("etc/cachish.yml"), "utf8")).toBe("items: {}\n");
    expect({ state: await show("cachish", "ActiveState"), status: await show("cachish", "StatusText") }).toEqual({ state: "active", status: "serving 0 items to 0 clients on 127.0.0.1:2469" });
    expect(await show("cachish", "ExecStart")).toContain("/usr/bin/cachish serve");
  }, 60_000);
});
