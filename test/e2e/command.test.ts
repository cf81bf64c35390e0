/**
 * `Command` items through `dist/cachish serve` (SPEC 3, issue 18): stand-in programs written
 * here print what the vendors' CLIs print; a failing program's secret never reaches the log,
 * `Cache-Status` or /metrics; the daemon's environment does not reach the program; a flood of
 * output costs the daemon no memory; a burst of requests is one run; a stored value is served
 * when the program later fails.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Daemon } from "../support/daemon";
import { tempDir } from "../support/temp";

const dir = tempDir();
const TOKEN = "command-client-token-Vb7";
const SECRET = "vault-token-hvs.Kq93xZ2LmP";

function script(name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

/** A configuration of these items (each a YAML block at item level) readable by one client. */
const config = (items: Record<string, string>) =>
  `listen: 127.0.0.1:0\ncache_dir: store\nitems:\n${Object.entries(items)
    .map(([path, block]) => `  ${path}:\n${block.trim().split("\n").map((l) => `    ${l}`).join("\n")}\n`)
    .join("")}auth:\n  app: {token: ${TOKEN}, url: "*"}\n`;

const daemons: Daemon[] = [];
async function start(items: Record<string, string>, env: Record<string, string> = {}): Promise<Daemon> {
  const daemon = await Daemon.start(config(items), { env });
  daemons.push(daemon);
  expect(daemon.address).not.toBe("");
  return daemon;
}
afterAll(() => Promise.all(daemons.map((d) => d.stop())));

const get = async (daemon: Daemon, path: string) => {
  const res = await daemon.fetch(path, { token: TOKEN });
  return { status: res.status, body: await res.text(), cacheStatus: res.headers.get("cache-status"), xCache: res.headers.get("x-cache") };
};

// What the CLIs print, as their documentation shows it.
/** `aws ssm get-parameter --name /myapp/database-url --with-decryption --output json` (AWS CLI v2); with `--query Parameter`, the Parameter alone. */
const AWS = script(
  "aws",
  `PARAMETER='{
        "Name": "/myapp/database-url",
        "Type": "SecureString",
        "Value": "postgres://app:pw@db.internal/app",
        "Version": 3,
        "LastModifiedDate": "2024-05-02T10:41:17.123000+00:00",
        "ARN": "arn:aws:ssm:eu-west-1:123456789012:parameter/myapp/database-url",
        "DataType": "text"
    }'
case "$*" in
  "ssm get-parameter --name /myapp/database-url --with-decryption --output json --query Parameter") printf '%s\\n' "$PARAMETER" ;;
  "ssm get-parameter --name /myapp/database-url --with-decryption --output json") printf '{\\n    "Parameter": %s\\n}\\n' "$PARAMETER" ;;
  *) echo "usage: aws [options] <command> <subcommand>" >&2; exit 252 ;;
esac`,
);
/** `vault kv get -format=json secret/myapp` of a KV v2 engine: the secret at data.data. */
const VAULT = script(
  "vault",
  `[ "$VAULT_TOKEN" = "${SECRET}" ] || { echo "Error making API request. Code: 403. permission denied (token $VAULT_TOKEN)" >&2; exit 2; }
[ "$*" = "kv get -format=json secret/myapp" ] || exit 1
cat <<'EOF'
{
  "request_id": "1c7c2a3e-7d8a-2b4e-9a4f-3b1d6f0e2c11",
  "lease_id": "",
  "lease_duration": 0,
  "renewable": false,
  "data": {
    "data": {
      "password": "s3cr3t",
      "username": "app"
    },
    "metadata": {
      "created_time": "2024-05-02T10:41:17.123456789Z",
      "custom_metadata": null,
      "deletion_time": "",
      "destroyed": false,
      "version": 2
    }
  },
  "warnings": null,
  "mount_type": "kv"
}
EOF`,
);
/** `op item get Database --vault prod --fields label=password --format json`: one field, as an object (`op read` prints plain text, not JSON). */
const OP = script(
  "op",
  `[ "$*" = "item get Database --vault prod --fields label=password --format json" ] || exit 1
cat <<'EOF'
{
  "id": "password",
  "type": "CONCEALED",
  "purpose": "PASSWORD",
  "label": "password",
  "value": "0p-s3cr3t",
  "reference": "op://prod/Database/password"
}
EOF`,
);

describe("Command items served by the daemon", () => {
  test("the recipes: aws ssm, vault kv (KV v2), op item get, through `select` and `field`", async () => {
    const daemon = await start({
      "/aws": `module: Command\nparameters:\n  argv: [${AWS}, ssm, get-parameter, --name, /myapp/database-url, --with-decryption, --output, json, --query, Parameter]\n  field: Value`,
      "/aws-whole": `module: Command\nparameters:\n  argv: [${AWS}, ssm, get-parameter, --name, /myapp/database-url, --with-decryption, --output, json]\n  select: /Parameter\n  field: Value`,
      "/vault": `module: Command\nparameters:\n  argv: [${VAULT}, kv, get, -format=json, secret/myapp]\n  env: {VAULT_ADDR: "https://vault.internal:8200", VAULT_TOKEN: ${SECRET}}\n  select: /data/data\n  field: [username, password]`,
      "/op": `module: Command\nparameters:\n  argv: [${OP}, item, get, Database, --vault, prod, --fields, label=password, --format, json]\n  env: {OP_SERVICE_ACCOUNT_TOKEN: ops_eyJzaWduSW4, HOME: ${dir}}\n  field: value`,
    });
    expect(await get(daemon, "/aws")).toEqual({ status: 200, body: '{"Value": "postgres://app:pw@db.internal/app"}', cacheStatus: "cachish; fwd=miss; fwd-status=200; stored", xCache: "miss" });
    expect((await get(daemon, "/aws-whole")).body).toBe('{"Value": "postgres://app:pw@db.internal/app"}');
    expect(await get(daemon, "/vault")).toMatchObject({ status: 200, body: '{"username": "app", "password": "s3cr3t"}' });
    expect((await get(daemon, "/op")).body).toBe('{"value": "0p-s3cr3t"}');
  });

  test("a failing program: 503 with detail `command`; the log line has its status and first line of standard error, the secret only as [secret]; nowhere else", async () => {
    const daemon = await start({ "/vault": `module: Command\nparameters:\n  argv: [${VAULT}, kv, get, -format=json, secret/myapp]\n  env: {VAULT_TOKEN: ${SECRET}-revoked}` });
    const answer = await get(daemon, "/vault");
    expect(answer).toEqual({ status: 503, body: "Upstream failure", cacheStatus: "cachish; fwd=miss; detail=command", xCache: "miss" });
    const failure = await daemon.waitForLog("upstream failure");
    expect({ item: failure.item, failure: failure.failure, reason: failure.reason }).toEqual({
      item: "/vault",
      failure: "command",
      reason: "the program exited with status 2: Error making API request. Code: 403. permission denied (token [secret])",
    });
    const metrics = await (await daemon.fetch("/metrics")).text();
    expect(metrics).toContain('cachish_upstream_fetches_total{item="/vault",outcome="command"} 1');
    await daemon.stop();
    const everything = [...daemon.lines, daemon.stderr, metrics, JSON.stringify(answer)].join("\n");
    expect(everything).not.toContain(SECRET);
  });

  test("the program sees none of the daemon's environment but PATH", async () => {
    const program = script("env.sh", `printf '{"env": "%s"}' "$(env | grep -v '^PWD=' | sort | tr '\\n' ' ')"`);
    const daemon = await start({ "/env": `module: Command\nparameters:\n  argv: [${program}]\n  env: {ONLY: this}` }, { DAEMON_SECRET: "not-for-the-program", AWS_PROFILE: "prod" });
    expect(JSON.parse((await get(daemon, "/env")).body)).toEqual({ env: `ONLY=this PATH=${process.env.PATH} ` });
  });

  test("a flood of 200 MB on standard output over max_body 1MiB: `too-large`, and the daemon's memory does not grow by it", async () => {
    const program = script("flood.sh", "head -c 200000000 /dev/zero | tr '\\0' '7'");
    const daemon = await start({ "/flood": `module: Command\nmax_body: 1MiB\ntimeout: 20s\nmax_backoff: 0s\nparameters:\n  argv: [${program}]` });
    const status = () => readFileSync(`/proc/${daemon.process.pid}/status`, "utf8");
    const kB = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB$`, "m").exec(status())![1]) * 1024;
    // Measured from the second run: the first one's buffers and code are the daemon's from then on.
    await get(daemon, "/flood");
    // The peak (VmHWM) is set back to the resident size now (proc(5), clear_refs): what the run costs at its height is measured, not what is left after.
    writeFileSync(`/proc/${daemon.process.pid}/clear_refs`, "5");
    const before = kB("VmRSS");
    const started = performance.now();
    const answer = await get(daemon, "/flood");
    expect({ status: answer.status, cacheStatus: answer.cacheStatus }).toEqual({ status: 503, cacheStatus: "cachish; fwd=miss; detail=too-large" });
    expect(performance.now() - started).toBeLessThan(5000);
    expect(kB("VmHWM") - before).toBeLessThan(32 * 1024 * 1024);
  }, 30_000);

  test("many concurrent requests are one run; a stored value is served when the program later fails", async () => {
    const runs = join(dir, "runs");
    const failing = join(dir, "failing");
    rmSync(failing, { force: true });
    const program = script("counted.sh", `echo run >> ${runs}; sleep 0.3; [ -e ${failing} ] && { echo "down for now" >&2; exit 1; }; echo '{"v": 1}'`);
    const daemon = await start({ "/counted": `module: Command\nmax_backoff: 0s\nparameters:\n  argv: [${program}]` });
    const answers = await Promise.all(Array.from({ length: 50 }, () => get(daemon, "/counted")));
    expect(answers.every((a) => a.status === 200 && a.body === '{"v": 1}')).toBe(true);
    expect(answers.filter((a) => a.cacheStatus?.endsWith("; collapsed")).length).toBe(49);
    expect(readFileSync(runs, "utf8")).toBe("run\n");
    writeFileSync(failing, "");
    const stale = await get(daemon, "/counted");
    expect(stale).toEqual({ status: 200, body: '{"v": 1}', cacheStatus: "cachish; hit; detail=command", xCache: "hit" });
    expect(readFileSync(runs, "utf8")).toBe("run\nrun\n");
    expect((await daemon.waitForLog("upstream failure")).reason).toBe("the program exited with status 1: down for now");
  });
});
