/**
 * Proxies (SPEC 3): none is taken from the environment, as 1.x (requests with trust_env=False)
 * took none; the `proxy` key names one for an item. Against a real proxy from Debian's packages,
 * tinyproxy, on 127.0.0.1: what went through it is told by the `Via` header it adds and by its
 * log. `.ci/run` installs it when it is missing; without it these tests are skipped by name.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { cachish } from "../support/cli";
import { Daemon } from "../support/daemon";
import { tempDir } from "../support/temp";
import { closedPort, Upstream } from "../support/upstream";

const TINYPROXY = Bun.which("tinyproxy") ?? (existsSync("/usr/bin/tinyproxy") ? "/usr/bin/tinyproxy" : null);
const suite = TINYPROXY ? describe : describe.skip;
const title = TINYPROXY ? "proxies, with tinyproxy" : "proxies (skipped: tinyproxy is not installed; `apt-get install tinyproxy`, as .ci/run does)";

const upstream = new Upstream();
upstream.json("/v", { v: 1 });
const TOKEN = "proxy-token-Lk3p9";
const dir = tempDir();
let proxy: Subprocess | undefined;
let proxyUrl = "";
let authUrl = "";

/** tinyproxy in the foreground on a free port of 127.0.0.1; `auth`: it asks for these credentials. */
async function startTinyproxy(name: string, auth?: string): Promise<{ child: Subprocess; url: string; log: string }> {
  const port = await closedPort();
  const log = join(dir, `${name}.log`);
  const conf = join(dir, `${name}.conf`);
  writeFileSync(conf, [`Port ${port}`, "Listen 127.0.0.1", "Allow 127.0.0.1", "Timeout 10", "MaxClients 10", `LogFile "${log}"`, "LogLevel Info", ...(auth ? [`BasicAuth ${auth.replace(":", " ")}`] : [])].join("\n"));
  const child = Bun.spawn([TINYPROXY!, "-d", "-c", conf], { stdout: "ignore", stderr: "pipe" });
  // Listening once its log says so (the port was free a moment ago; another process may have taken it).
  for (let i = 0; i < 250 && !(existsSync(log) && readFileSync(log, "utf8").includes("listening on fd")); i++) {
    if (child.exitCode !== null) break;
    await Bun.sleep(20);
  }
  if (!existsSync(log) || !readFileSync(log, "utf8").includes("listening on fd")) {
    child.kill();
    throw new Error(`tinyproxy did not start on port ${port}: ${await new Response(child.stderr).text()}`);
  }
  return { child, url: `http://${auth ? `${auth}@` : ""}127.0.0.1:${port}`, log };
}

const children: Subprocess[] = [];
let plainLog = "";
beforeAll(async () => {
  if (!TINYPROXY) return;
  const plain = await startTinyproxy("plain");
  const withAuth = await startTinyproxy("auth", "cachish:Pr0xy-Pass");
  children.push(plain.child, withAuth.child);
  proxy = plain.child;
  proxyUrl = plain.url;
  authUrl = withAuth.url;
  plainLog = plain.log;
});
afterAll(async () => {
  for (const child of children) child.kill();
  await upstream.close();
});

const config = (itemExtra = "") => `listen: 127.0.0.1:0
cache_dir: store
items:
  /v:
    module: JsonHttp
    parameters: {url: "${upstream.url}/v"}
${itemExtra}auth:
  app: {token: ${TOKEN}, url: "*"}
`;

/** What the plain proxy has logged since `from` (a length of its log). */
const proxied = (from: number) => readFileSync(plainLog, "utf8").slice(from);
const logLength = () => readFileSync(plainLog, "utf8").length;

/** Every proxy variable Bun's fetch would read, pointing at the proxy. */
const proxyEnvironment = () => Object.fromEntries(["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"].flatMap((name) => [[name, proxyUrl], [name.toLowerCase(), proxyUrl]]));

suite(title, () => {
  test("HTTP_PROXY and its kin in the daemon's environment are ignored: the upstream is asked directly", async () => {
    const before = upstream.requests("/v").length;
    const logged = logLength();
    const daemon = await Daemon.start(config(), { env: proxyEnvironment() });
    const res = await daemon.fetch("/v", { token: TOKEN });
    expect({ status: res.status, body: await res.text() }).toEqual({ status: 200, body: '{"v": 1}' });
    await daemon.stop();
    const seen = upstream.requests("/v").slice(before);
    expect(seen.length).toBe(1);
    expect(seen[0]!.headers.via).toBeUndefined();
    expect(proxied(logged)).not.toContain("Established connection");
  });

  test("`cachish get` asks the daemon directly too, whatever its environment says", async () => {
    const daemon = await Daemon.start(config());
    const logged = logLength();
    const ran = await cachish(["get", "/v", "--server", daemon.url, "--token", TOKEN], { env: proxyEnvironment() });
    expect(ran).toEqual({ code: 0, stdout: '{"v": 1}\n', stderr: "" });
    await daemon.stop();
    expect(proxied(logged)).not.toContain("Established connection");
  });

  test("`proxy` on an item (or in defaults): its upstream requests go through it, credentials and secret references too", async () => {
    const before = upstream.requests("/v").length;
    const logged = logLength();
    const daemon = await Daemon.start(config(`    proxy: "${proxyUrl}"\n`));
    expect((await daemon.fetch("/v", { token: TOKEN })).status).toBe(200);
    await daemon.stop();
    const withAuth = await Daemon.start(config("").replace("items:", "defaults: {proxy: {env: PROXY_URL}}\nitems:"), { env: { PROXY_URL: authUrl } });
    expect((await withAuth.fetch("/v", { token: TOKEN })).status).toBe(200);
    await withAuth.stop();
    // The environment's own proxy variable, named by a secret reference: kept for the configuration.
    const named = await Daemon.start(config(`    proxy: {env: HTTPS_PROXY}\n`), { env: { HTTPS_PROXY: proxyUrl } });
    expect((await named.fetch("/v", { token: TOKEN })).status).toBe(200);
    await named.stop();
    const seen = upstream.requests("/v").slice(before);
    expect(seen.map((r) => r.headers.via?.includes("tinyproxy"))).toEqual([true, true, true]);
    expect(proxied(logged).split("Established connection").length - 1).toBe(2);
  });

  test("a proxy that refuses the credentials is a failure of the fetch; check-config shows that a proxy is set, never its URL", async () => {
    const daemon = await Daemon.start(config(`    proxy: "${authUrl.replace("Pr0xy-Pass", "wrong")}"\n`));
    const res = await daemon.fetch("/v", { token: TOKEN });
    expect(res.status).toBe(503);
    // tinyproxy refuses wrong credentials with 401 to a plain HTTP request (407 to CONNECT): what the proxy answered is the failure.
    expect(res.headers.get("cache-status")).toMatch(/^cachish; fwd=miss; fwd-status=40[17]; detail=status-40[17]$/);
    await daemon.stop();
    expect(`${daemon.lines.join("\n")}${daemon.stderr}`).not.toMatch(/wrong|Pr0xy-Pass/);
    writeFileSync(join(dir, "cachish.yml"), config(`    proxy: "${authUrl}"\n`));
    const checked = await cachish(["check-config", join(dir, "cachish.yml")]);
    expect(checked.code).toBe(0);
    expect(checked.stdout).toContain("proxy set");
    expect(checked.stdout + checked.stderr).not.toContain("Pr0xy-Pass");
  });
});
