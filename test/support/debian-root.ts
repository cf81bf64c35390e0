/**
 * A Debian bookworm root file system (debootstrap's minbase, with adduser and procps, which the
 * package depends on, and systemd 252 with D-Bus to boot it in a container), for the tests that need dpkg to run a package's maintainer
 * scripts for real (`dpkg --root` runs them chrooted) and for those that need a real systemd
 * (test/support/container.ts).
 * It is made once per machine, in a cache folder outside the clone, from the mirror this machine's
 * apt uses, and each test works on a copy of it. Where it cannot be made (not root, no
 * debootstrap, no mirror), `debianRoot` says why, and the tests are skipped by that name.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "./temp";

const CACHE = process.env.CACHISH_TEST_ROOTS ?? "/var/cache/cachish-tests";
const PACKAGES = ["adduser", "procps", "systemd", "systemd-sysv", "dbus"];
// Named by what it holds: a root cached by a test run that needed other packages is not taken for it.
const ROOT = join(CACHE, `bookworm-${PACKAGES.join("-")}`);

/** The first http(s) mirror of Debian itself in this machine's apt sources. */
function mirror(): string | undefined {
  const files = ["/etc/apt/sources.list", ...(existsSync("/etc/apt/sources.list.d") ? readdirSync("/etc/apt/sources.list.d").map((f) => join("/etc/apt/sources.list.d", f)) : [])];
  for (const file of files) {
    if (!existsSync(file)) continue;
    const text = readFileSync(file, "utf8");
    const found = /^(?:URIs:|deb)\s+(https?:\/\/\S+\/debian)\/?\s*$/m.exec(text) ?? /^(?:URIs:|deb)\s+(?:\[[^\]]*\]\s+)?(https?:\/\/\S+\/debian)\/?(?:\s|$)/m.exec(text);
    if (found) return found[1];
  }
  return undefined;
}

/** Why no root can be had here, or undefined when one can. */
export function rootMissing(): string | undefined {
  if (existsSync(join(ROOT, "usr/bin/dpkg"))) return undefined;
  if (process.getuid?.() !== 0) return "not root (dpkg --root and debootstrap need it)";
  if (!Bun.which("debootstrap")) return "debootstrap is not installed (.ci/run installs it)";
  if (!mirror()) return "no Debian mirror in this machine's apt sources";
  return undefined;
}

/** A fresh copy of the root, made first if this machine has none (about a minute, once); the caller removes it when done (`rm -rf`: 250 MB). */
export function debianRoot(): string {
  if (!existsSync(join(ROOT, "usr/bin/dpkg"))) {
    const building = `${ROOT}.tmp`;
    mkdirSync(CACHE, { recursive: true });
    // Roots of other package lists (earlier versions of these tests), and a build cut short: about 250 MB each.
    for (const old of readdirSync(CACHE)) if (old.startsWith("bookworm")) rmSync(join(CACHE, old), { recursive: true, force: true });
    const made = Bun.spawnSync(["debootstrap", "--variant=minbase", `--include=${PACKAGES.join(",")}`, "bookworm", building, mirror()!], { stdout: "ignore", stderr: "pipe" });
    if (made.exitCode !== 0) throw new Error(`debootstrap failed: ${made.stderr.toString().slice(-2000)}`);
    renameSync(building, ROOT);
  }
  // cp -a: owners, modes, links and device files as they are.
  const copy = join(tempDir(), "root");
  const copied = Bun.spawnSync(["cp", "-a", ROOT, copy], { stdout: "ignore", stderr: "pipe" });
  if (copied.exitCode !== 0) throw new Error(`copying the root failed: ${copied.stderr.toString()}`);
  return copy;
}
