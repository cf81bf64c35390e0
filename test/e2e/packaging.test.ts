/**
 * What an operator installs: the systemd unit, the Debian package, and the version report.
 * Tests that need a tool of Debian's (dpkg-deb, systemd-analyze) say so by name when it is
 * missing, and are skipped.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { BINARY, cachish } from "../support/cli";
import { debianRoot, rootMissing } from "../support/debian-root";
import { CACHE_FILE, OPERATOR, oldPackage } from "../support/old-package";
import { tempDir } from "../support/temp";

const ROOT = join(import.meta.dir, "../..");
const run = (args: string[], cwd = ROOT) => {
  const ran = Bun.spawnSync(args, { cwd, stdout: "pipe", stderr: "pipe" });
  return { code: ran.exitCode, stdout: ran.stdout.toString(), stderr: ran.stderr.toString() };
};

describe("cachish version", () => {
  test("--json says exactly what ran: version, commit, build date, target, Bun", async () => {
    const ran = await cachish(["version", "--json"]);
    expect(ran.code).toBe(0);
    const info = JSON.parse(ran.stdout);
    expect(info.version).toBe(pkg.version);
    expect(info.commit).toMatch(/^[0-9a-f]{12}(-dirty)?$|^unknown$/);
    expect(Number.isNaN(Date.parse(info.build_date))).toBe(false);
    expect(info.target).toBe(`bun-${process.platform}-${process.arch}`);
    expect(info.bun).toMatch(/^\d+\.\d+\.\d+/);
    expect((await cachish(["version"])).stdout).toStartWith(`cachish ${pkg.version} (commit `);
  });
});

describe("the systemd unit", () => {
  const unit = readFileSync(join(ROOT, "packaging/cachish.service"), "utf8");

  test("is Type=notify, reloads with SIGHUP, keeps its store in CacheDirectory=, runs as cachish", () => {
    for (const line of ["Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "CacheDirectory=cachish", "User=cachish", "Group=cachish", "ExecStart=/usr/bin/cachish serve --config /etc/cachish.yml", "WatchdogSec=30s"]) {
      expect(unit.split("\n")).toContain(line);
    }
    expect(unit).not.toMatch(/^MemoryDenyWriteExecute=yes/m);
    expect(unit).not.toMatch(/^DynamicUser=/m);
  });

  const analyze = Bun.which("systemd-analyze");
  test.skipIf(!analyze)(`passes systemd-analyze verify${analyze ? "" : " (skipped: systemd-analyze is not installed)"}`, () => {
    const dir = tempDir({ "cachish.service": unit.replace("/usr/bin/cachish", BINARY) });
    const ran = run([analyze!, "verify", join(dir, "cachish.service")]);
    expect(ran.stderr).toBe("");
    expect(ran.code).toBe(0);
  });
});

describe("the Debian package", () => {
  const dpkgDeb = Bun.which("dpkg-deb");
  test.skipIf(!dpkgDeb)(`has the binary, the unit, a conffile that validates, and user creation${dpkgDeb ? "" : " (skipped: dpkg-deb is not installed)"}`, async () => {
    const out = tempDir();
    const built = run([process.execPath, "scripts/deb.ts", "--out", out, "--fast"]);
    expect({ code: built.code, stderr: built.stderr }).toEqual({ code: 0, stderr: "" });
    const version = `${pkg.version.replace("-", "~")}-1`;
    const arch = process.arch === "arm64" ? "arm64" : "amd64";
    const deb = join(out, `cachish_${version}_${arch}.deb`);
    expect(built.stdout.trim().split("\n").at(-1)).toBe(deb);

    const field = (name: string) => run([dpkgDeb!, "--field", deb, name]).stdout.trim();
    expect(field("Package")).toBe("cachish");
    expect(field("Version")).toBe(version);
    expect(field("Architecture")).toBe(arch);
    expect(field("Depends")).toBe("adduser, libc6 (>= 2.27), procps");

    const contents = run([dpkgDeb!, "--contents", deb]).stdout;
    const entry = (path: string) => contents.split("\n").find((l) => l.endsWith(` ./${path}`));
    expect(entry("usr/bin/cachish")).toStartWith("-rwxr-xr-x root/root");
    expect(entry("lib/systemd/system/cachish.service")).toStartWith("-rw-r--r-- root/root");
    expect(entry("etc/cachish.yml")).toStartWith("-rw-r----- root/root");
    expect(entry("usr/share/cachish/cachish.schema.json")).toBeDefined();
    expect(entry("usr/share/doc/cachish/copyright")).toBeDefined();

    const control = join(out, "control");
    run([dpkgDeb!, "--control", deb, control]);
    expect(readFileSync(join(control, "conffiles"), "utf8")).toBe("/etc/cachish.yml\n");
    const postinst = readFileSync(join(control, "postinst"), "utf8");
    expect(postinst).toContain("getent passwd cachish >/dev/null || adduser --quiet --system --ingroup cachish");
    expect(postinst).toContain('if [ -z "$2" ] || { dpkg --compare-versions "$2" lt 2~ && [ "$(stat -c %U:%G /etc/cachish.yml)" = root:root ]; }; then\n        chown root:cachish /etc/cachish.yml');

    // The conffile is a commented example that the packaged binary accepts as it is, with the
    // one warning SPEC 3 names for a file without items (--strict would refuse it for that).
    const tree = join(out, "tree");
    run([dpkgDeb!, "--extract", deb, tree]);
    const conffile = join(tree, "etc/cachish.yml");
    const checked = run([join(tree, "usr/bin/cachish"), "check-config", conffile]);
    expect(checked.stderr).toBe(`${conffile}:16:1: warning: no item is configured: the daemon serves nothing (1.x started with such a file)\n`);
    expect(checked.code).toBe(0);
    expect(readFileSync(join(tree, "lib/systemd/system/cachish.service"), "utf8")).toBe(readFileSync(join(ROOT, "packaging/cachish.service"), "utf8"));
  }, 60_000);
});

/**
 * SPEC 8: the real 2.x package installed over a stand-in for 1.7.0's (test/support/old-package.ts),
 * in a Debian root by dpkg itself, maintainer scripts and all (chrooted: no systemd runs;
 * test/e2e/real-systemd.test.ts does the same under a real one).
 */
describe("the upgrade over 1.7.0's package", () => {
  const missing = rootMissing() ?? (Bun.which("dpkg-deb") ? undefined : "dpkg-deb is not installed");

  test.skipIf(missing !== undefined)(
    `keeps the operator's /etc/cachish.yml (content, owner, mode) and 1.x's cache, removes 1.x's logrotate file and runtime${missing ? ` (skipped: ${missing})` : ""}`,
    () => {
      const out = tempDir();
      const built = run([process.execPath, "scripts/deb.ts", "--out", out, "--fast"]);
      expect({ code: built.code, stderr: built.stderr }).toEqual({ code: 0, stderr: "" });
      const newDeb = built.stdout.trim().split("\n").at(-1)!;
      const root = debianRoot();
      const inRoot = (...args: string[]) => run(["chroot", root, ...args]);

      expect(run(["dpkg", `--root=${root}`, "-i", oldPackage(out)]).code).toBe(0);
      // The operator's configuration and a value 1.x kept.
      writeFileSync(join(root, "etc/cachish.yml"), OPERATOR);
      expect(inRoot("chmod", "0640", "/etc/cachish.yml").code).toBe(0);
      writeFileSync(join(root, "var/cache/cachish", CACHE_FILE), '{"db": "postgres://kept"}');
      expect(inRoot("chown", "cachish:cachish", `/var/cache/cachish/${CACHE_FILE}`).code).toBe(0);

      const upgraded = run(["dpkg", `--root=${root}`, "-i", newDeb]);
      expect({ code: upgraded.code, stderr: upgraded.stderr }).toMatchObject({ code: 0 });
      expect(inRoot("dpkg-query", "-W", "-f", "${Version} ${db:Status-Status}", "cachish").stdout).toBe(`${pkg.version.replace("-", "~")}-1 installed`);

      expect(readFileSync(join(root, "etc/cachish.yml"), "utf8")).toBe(OPERATOR);
      expect(inRoot("stat", "-c", "%U:%G %a", "/etc/cachish.yml").stdout.trim()).toBe("root:cachish 640");
      expect(readFileSync(join(root, "var/cache/cachish", CACHE_FILE), "utf8")).toBe('{"db": "postgres://kept"}');
      expect(inRoot("stat", "-c", "%U:%G", `/var/cache/cachish/${CACHE_FILE}`).stdout.trim()).toBe("cachish:cachish");
      expect(existsSync(join(root, "etc/logrotate.d/cachish"))).toBe(false);
      expect(existsSync(join(root, "opt/venvs/cachish"))).toBe(false);
      expect(existsSync(join(root, "var/lib/cachish"))).toBe(false);
      // The packaged binary accepts the kept file (run from outside: a chroot without /proc cannot start a Bun executable).
      const checked = run([join(root, "usr/bin/cachish"), "check-config", join(root, "etc/cachish.yml")]);
      expect({ code: checked.code, stderr: checked.stderr }).toEqual({ code: 0, stderr: "" });
      rmSync(root, { recursive: true, force: true });
    },
    600_000,
  );
});
