/**
 * A stand-in for cachish 1.7.0's Debian package (SPEC 8), made from what is known of it: its
 * files (a virtualenv in /opt/venvs/cachish, a unit running gunicorn as the `cachish` user,
 * /etc/logrotate.d/cachish as a conffile), a postinst that makes the `cachish` user, writes
 * /etc/cachish.yml root:cachish 0640 when missing and enables and starts the service (as
 * debhelper's scripts do), a prerm that stops the service on upgrade as on removal (as
 * debhelper's `dh_systemd_start` writes it without `--restart-after-upgrade`; with
 * `stopsOnUpgrade: false`, only on removal, as with that option), and a postrm that
 * deletes /etc/cachish.yml and /var/cache/cachish whenever dpkg calls it, upgrades included.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** An operator's 1.x file: one item whose upstream is down, and one client. */
export const OPERATOR = "# the operator's own file\nitems:\n  /db:\n    module: JsonHttp\n    parameters: {url: 'http://127.0.0.1:9/db'}\nauth:\n  web: {token: operator-token-1, url: /db}\n";
/** 1.x's cache file for /db: named by the SHA-256 of the item path. */
export const CACHE_FILE = new Bun.CryptoHasher("sha256").update("/db").digest("hex");

const POSTINST = `#!/bin/sh
set -e
getent group cachish >/dev/null || addgroup --quiet --system cachish
getent passwd cachish >/dev/null || adduser --quiet --system --ingroup cachish --no-create-home cachish
if [ ! -e /etc/cachish.yml ]; then printf 'items: {}\\n' > /etc/cachish.yml; chown root:cachish /etc/cachish.yml; chmod 0640 /etc/cachish.yml; fi
mkdir -p /var/cache/cachish && chown cachish:cachish /var/cache/cachish
deb-systemd-helper enable cachish.service >/dev/null || true
if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
    deb-systemd-invoke start cachish.service >/dev/null || true
fi
`;

/** Builds the stand-in in `out` and returns the path of its .deb. */
export function oldPackage(out: string, options: { stopsOnUpgrade?: boolean } = {}): string {
  const stage = join(out, "cachish-1.7.0");
  const put = (path: string, content: string, mode = 0o644) => {
    mkdirSync(join(stage, path, ".."), { recursive: true });
    writeFileSync(join(stage, path), content, { mode });
  };
  // 1.x's server stays up, as gunicorn would, until it is stopped.
  put("opt/venvs/cachish/bin/gunicorn", "#!/bin/sh\nwhile :; do sleep 1; done\n", 0o755);
  put("lib/systemd/system/cachish.service", "[Unit]\nDescription=cachish 1.x\n\n[Service]\nUser=cachish\nExecStart=/opt/venvs/cachish/bin/gunicorn cachish.app\n\n[Install]\nWantedBy=multi-user.target\n");
  put("etc/logrotate.d/cachish", "/var/log/cachish/*.log {\n  weekly\n}\n");
  put("DEBIAN/control", `Package: cachish\nVersion: 1.7.0\nArchitecture: ${process.arch === "arm64" ? "arm64" : "amd64"}\nMaintainer: 1.x <x@example.invalid>\nDescription: cachish 1.x (stand-in)\n`);
  put("DEBIAN/conffiles", "/etc/logrotate.d/cachish\n");
  put("DEBIAN/postinst", POSTINST, 0o755);
  const when = options.stopsOnUpgrade === false ? '[ "$1" = remove ] && ' : "";
  put("DEBIAN/prerm", `#!/bin/sh\nset -e\nif ${when}[ -d /run/systemd/system ]; then deb-systemd-invoke stop cachish.service >/dev/null || true; fi\n`, 0o755);
  put("DEBIAN/postrm", "#!/bin/sh\nrm -f /etc/cachish.yml\nrm -rf /var/cache/cachish\nexit 0\n", 0o755);
  // Modes as a package has them, whatever umask this process runs with (a store opened by another test sets 077).
  const chmod = Bun.spawnSync(["chmod", "-R", "u+rwX,go+rX,go-w", stage]);
  if (chmod.exitCode !== 0) throw new Error(chmod.stderr.toString());
  const deb = join(out, "cachish_1.7.0.deb");
  const built = Bun.spawnSync(["dpkg-deb", "--root-owner-group", "--build", stage, deb], { stdout: "pipe", stderr: "pipe" });
  if (built.exitCode !== 0) throw new Error(built.stderr.toString());
  return deb;
}
