/**
 * What an operator installs: the systemd unit, the Debian package, and the version report.
 * Tests that need a tool of Debian's (dpkg-deb, systemd-analyze) say so by name when it is
 * missing, and are skipped.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { BINARY, cachish } from "../support/cli";
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
    expect(field("Depends")).toBe("adduser, libc6 (>= 2.27)");

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
    expect(postinst).toContain('if [ -z "$2" ]; then\n        chown root:cachish /etc/cachish.yml');

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
