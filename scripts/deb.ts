/**
 * `npm run deb [-- --out DIR]`: cachish_<version>_<arch>.deb with dpkg-deb, from dist/cachish
 * (run `npm run build` first). It replaces the 1.x package of the same name (SPEC 8): the
 * `cachish` user and group are kept when 1.x made them, the operator's /etc/cachish.yml (a
 * conffile) keeps its content, owner and mode, and /var/cache/cachish (1.x's cache, imported at
 * the first start) is kept, both across 1.7.0's postrm, which deletes them on upgrade; 1.x's
 * logrotate conffile is removed.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { gzipSync } from "node:zlib";

const ROOT = join(import.meta.dir, "..");
const { values } = parseArgs({ options: { out: { type: "string", default: join(ROOT, "dist") }, fast: { type: "boolean", default: false } } });
const binary = join(ROOT, "dist/cachish");
if (!existsSync(binary)) throw new Error("dist/cachish is missing: run `npm run build` first");
if (!Bun.which("dpkg-deb")) throw new Error("dpkg-deb is not installed (it comes with dpkg, on Debian and Ubuntu)");

const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string; description: string };
// 2.0.0-dev sorts before 2.0.0 in Debian only as 2.0.0~dev; -1 is the packaging's revision.
const upstreamVersion = pkg.version.replace("-", "~");
const version = `${upstreamVersion}-1`;
const arch = ({ x64: "amd64", arm64: "arm64" } as Record<string, string>)[process.arch];
if (!arch) throw new Error(`no Debian architecture for ${process.arch}`);

// Folders in a package are 0755 whatever the caller's umask (the daemon's store sets 077).
process.umask(0o022);
const stage = join(values.out!, `cachish_${version}_${arch}`);
rmSync(stage, { recursive: true, force: true });
const put = (path: string, content: string | Buffer, mode: number) => {
  const target = join(stage, path);
  mkdirSync(join(target, ".."), { recursive: true });
  writeFileSync(target, content);
  chmodSync(target, mode);
};

copyFileSync(binary, join((mkdirSync(join(stage, "usr/bin"), { recursive: true }), stage), "usr/bin/cachish"));
chmodSync(join(stage, "usr/bin/cachish"), 0o755);
put("lib/systemd/system/cachish.service", readFileSync(join(ROOT, "packaging/cachish.service")), 0o644);
put("etc/cachish.yml", readFileSync(join(ROOT, "packaging/cachish.yml")), 0o640);
put("usr/share/cachish/cachish.schema.json", readFileSync(join(ROOT, "schema/cachish.schema.json")), 0o644);
put("usr/share/doc/cachish/README.md", readFileSync(join(ROOT, "README.md")), 0o644);
put("usr/share/doc/cachish/changelog.gz", gzipSync(readFileSync(join(ROOT, "CHANGELOG.md")), { level: 9 }), 0o644);
const date = new Date(process.env.SOURCE_DATE_EPOCH ? Number(process.env.SOURCE_DATE_EPOCH) * 1000 : Date.now()).toUTCString().replace("GMT", "+0000");
put(
  "usr/share/doc/cachish/changelog.Debian.gz",
  gzipSync(`cachish (${version}) unstable; urgency=medium\n\n  * Built from the cachish sources by \`npm run deb\`; see changelog.gz.\n\n -- cachish maintainers <maintainers@cachish.invalid>  ${date}\n`, { level: 9 }),
  0o644,
);
// What lintian reports about this package that is so on purpose.
put(
  "usr/share/lintian/overrides/cachish",
  [
    "# The program is bundled into Bun's runtime by bun build --compile: stripping the file would",
    "# cut the program off, and the runtime is linked as Bun builds it (its own libjpeg among it).",
    "cachish: unstripped-binary-or-object [usr/bin/cachish]",
    "cachish: embedded-library libjpeg [usr/bin/cachish]",
    "cachish: hardening-no-pie [usr/bin/cachish]",
    "cachish: hardening-no-relro [usr/bin/cachish]",
    "# The configuration may hold tokens and API keys: root:cachish, 0640.",
    "cachish: non-standard-file-perm 0640 != 0644 [etc/cachish.yml]",
    "# `cachish --help` and `cachish COMMAND --help` are the manual for now.",
    "cachish: no-manual-page [usr/bin/cachish]",
    "# Not uploaded to Debian: there is no bug to close.",
    "cachish: initial-upload-closes-no-bugs [usr/share/doc/cachish/changelog.Debian.gz:1]",
    "",
  ].join("\n"),
  0o644,
);
put(
  "usr/share/doc/cachish/copyright",
  `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: cachish\n\nFiles: *\nCopyright: 2026 the cachish authors\nLicense: MIT\n${readFileSync(join(ROOT, "LICENSE"), "utf8")
    .split("\n")
    .map((l) => (l.trim() === "" ? " ." : ` ${l}`))
    .join("\n")}\n`,
  0o644,
);

const installedKb = Math.ceil(Number(Bun.spawnSync(["du", "-sk", join(stage, "usr"), join(stage, "etc"), join(stage, "lib")]).stdout.toString().split("\n").filter(Boolean).reduce((sum, l) => sum + Number(l.split("\t")[0]), 0)));
put(
  "DEBIAN/control",
  [
    "Package: cachish",
    `Version: ${version}`,
    `Architecture: ${arch}`,
    "Maintainer: cachish maintainers <maintainers@cachish.invalid>",
    `Installed-Size: ${installedKb}`,
    // procps: the unit's ExecReload= runs /bin/kill, which a minimal Debian (debootstrap's minbase, a container image) lacks.
    "Depends: adduser, libc6 (>= 2.27), procps",
    "Section: net",
    "Priority: optional",
    "Description: last good values of remote APIs, for local services",
    " cachish fetches configured values (Heroku config vars, JSON APIs, Hawk-signed",
    " JSON APIs) on behalf of local services, hands each service only what its token",
    " allows, and when the upstream is down answers from its SQLite store.",
    "",
  ].join("\n"),
  0o644,
);
put("DEBIAN/conffiles", "/etc/cachish.yml\n", 0o644);
// 1.x's package shipped a logrotate file, a conffile that 2.x has no use for (it logs to the journal).
const RM_LOGROTATE = `dpkg-maintscript-helper rm_conffile /etc/logrotate.d/cachish 2.0.0~ -- "$@"`;
// Where the preinst keeps what 1.x's postrm would delete (SPEC 8); the postinst puts it back.
const KEPT = "/var/lib/cachish/kept-from-1.x";
put(
  "DEBIAN/preinst",
  `#!/bin/sh
set -e
# Over 1.x: 1.7.0's own postrm deletes /etc/cachish.yml and /var/cache/cachish whenever dpkg calls
# it, and dpkg calls it during this upgrade, after unpacking this package. Both are kept aside
# first, with their owner, mode and content (the cache as hard links where it can: no second copy).
if [ "$1" = upgrade ] && dpkg --compare-versions "$2" lt 2~; then
    rm -rf ${KEPT}
    mkdir -p ${KEPT}
    if [ -e /etc/cachish.yml ]; then cp -a /etc/cachish.yml ${KEPT}/cachish.yml; fi
    if [ -d /var/cache/cachish ]; then cp -al /var/cache/cachish ${KEPT}/cache 2>/dev/null || cp -a /var/cache/cachish ${KEPT}/cache; fi
fi
${RM_LOGROTATE}
exit 0
`,
  0o755,
);
put(
  "DEBIAN/postinst",
  `#!/bin/sh
set -e
${RM_LOGROTATE}
if [ "$1" = configure ] && [ -d ${KEPT} ]; then
    # What the preinst kept from 1.x comes back: the operator's file over the example dpkg
    # installed when 1.x's postrm had deleted it, and the cache, for 2.x to import at its start.
    if [ -e ${KEPT}/cachish.yml ]; then cp -a ${KEPT}/cachish.yml /etc/cachish.yml; fi
    if [ -d ${KEPT}/cache ] && [ ! -e /var/cache/cachish ]; then mv ${KEPT}/cache /var/cache/cachish; fi
    rm -rf ${KEPT}
    rmdir /var/lib/cachish 2>/dev/null || true
fi
if [ "$1" = configure ]; then
    # The static user and group of 1.x: kept when they exist, made when they do not.
    getent group cachish >/dev/null || addgroup --quiet --system cachish
    getent passwd cachish >/dev/null || adduser --quiet --system --ingroup cachish --home /var/cache/cachish --no-create-home --shell /usr/sbin/nologin cachish
    # A first install gives the file to root:cachish, 0640; an upgrade leaves the operator's as it
    # is. Over 1.x, the example dpkg installs as root:root (1.x's postrm deleted the file, and
    # nothing was kept) would be unreadable to the service: it is given to the group too.
    if [ -z "$2" ] || { dpkg --compare-versions "$2" lt 2~ && [ "$(stat -c %U:%G /etc/cachish.yml)" = root:root ]; }; then
        chown root:cachish /etc/cachish.yml
        chmod 0640 /etc/cachish.yml
    fi
    # As debhelper's scripts do: enable at the first install, restart on an upgrade.
    deb-systemd-helper unmask cachish.service >/dev/null || true
    if [ -z "$2" ] || deb-systemd-helper --quiet was-enabled cachish.service; then
        deb-systemd-helper enable cachish.service >/dev/null || true
    else
        deb-systemd-helper update-state cachish.service >/dev/null || true
    fi
    if [ -d /run/systemd/system ]; then
        systemctl --system daemon-reload >/dev/null || true
        if [ -n "$2" ] && dpkg --compare-versions "$2" lt 2~; then
            # From 1.x, whose prerm may have stopped its gunicorn service: 2.x runs in its place.
            deb-systemd-invoke restart cachish.service >/dev/null || true
        elif [ -n "$2" ]; then
            deb-systemd-invoke try-restart cachish.service >/dev/null || true
        else
            deb-systemd-invoke start cachish.service >/dev/null || true
        fi
    fi
fi
exit 0
`,
  0o755,
);
put(
  "DEBIAN/prerm",
  `#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
    deb-systemd-invoke stop cachish.service >/dev/null || true
fi
exit 0
`,
  0o755,
);
put(
  "DEBIAN/postrm",
  `#!/bin/sh
set -e
${RM_LOGROTATE}
if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
fi
if [ "$1" = remove ] && command -v deb-systemd-helper >/dev/null; then
    deb-systemd-helper mask cachish.service >/dev/null || true
fi
if [ "$1" = purge ]; then
    if command -v deb-systemd-helper >/dev/null; then
        deb-systemd-helper purge cachish.service >/dev/null || true
        deb-systemd-helper unmask cachish.service >/dev/null || true
    fi
    # The store (and 1.x's cache files). The cachish user stays, as Debian leaves system users.
    rm -rf /var/cache/cachish
fi
exit 0
`,
  0o755,
);

const deb = join(values.out!, `cachish_${version}_${arch}.deb`);
// --fast (the tests) skips compression: xz takes most of a minute on this 110 MB binary.
const built = Bun.spawnSync(["dpkg-deb", "--root-owner-group", values.fast ? "-Znone" : "-Zxz", "--build", stage, deb], { stdout: "inherit", stderr: "inherit" });
if (built.exitCode !== 0) throw new Error("dpkg-deb failed");
rmSync(stage, { recursive: true, force: true });
console.log(deb);
