/**
 * cachish under systemd, as far as a test can be systemd: the environment it sets
 * ($NOTIFY_SOCKET, $WATCHDOG_USEC, $CACHE_DIRECTORY, $CREDENTIALS_DIRECTORY), the notify
 * messages read from a real datagram socket, and reloads on SIGHUP.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Daemon } from "../support/daemon";
import { NotifySocket } from "../support/notify";
import { tempDir } from "../support/temp";
import { Upstream } from "../support/upstream";

const upstream = new Upstream();
afterAll(() => upstream.close());
upstream.json("/a", { a: 1 });
upstream.json("/b", { b: 2 });

function config(token: string, extra = ""): string {
  return [
    "listen: 127.0.0.1:0",
    "items:",
    `  /a: {module: JsonHttp, parameters: {url: "${upstream.url}/a"}}`,
    extra,
    "auth:",
    `  app: {token: {credential: app-token}, url: "*"}`,
    `  ops: {token: ${token}, url: "*"}`,
    "",
  ].join("\n");
}

async function systemdLike(notify: string, extraEnv: Record<string, string> = {}) {
  const dir = tempDir({ "credentials/app-token": "app-token-Cc3\n" });
  const socket = await NotifySocket.open(notify.startsWith("@") ? notify : join(dir, notify));
  const env = { NOTIFY_SOCKET: socket.address, CACHE_DIRECTORY: join(dir, "cache"), CREDENTIALS_DIRECTORY: join(dir, "credentials"), ...extraEnv };
  const daemon = await Daemon.start(config("ops-old-Tt1"), { dir, env });
  return { daemon, socket, dir };
}

describe("sd_notify", () => {
  test("READY with a status once serving; RELOADING then READY around a reload; STOPPING at the end", async () => {
    const { daemon, socket } = await systemdLike("notify.sock");
    const ready = await socket.waitFor((m) => m.startsWith("READY=1"));
    expect(ready).toBe(`READY=1\nSTATUS=serving 1 item to 2 clients on ${daemon.address}\nMAINPID=${daemon.process.pid}`);
    daemon.process.kill("SIGHUP");
    await daemon.waitForLog("reloaded");
    daemon.process.kill("SIGTERM");
    expect(await daemon.exited()).toBe(0);
    await socket.waitFor((m) => m.startsWith("STOPPING=1"));
    expect(socket.messages.map((m) => m.split("\n")[0])).toEqual(["READY=1", "RELOADING=1", "READY=1", "STOPPING=1"]);
    expect(socket.messages[1]).toMatch(/^RELOADING=1\nSTATUS=reloading the configuration\nMONOTONIC_USEC=\d+$/);
    socket.close();
  });

  test("an abstract socket (@name) works too", async () => {
    const name = `@cachish-test-${process.pid}-${Date.now()}`;
    const { daemon, socket } = await systemdLike(name);
    expect(await socket.waitFor((m) => m.startsWith("READY=1"))).toContain("STATUS=serving 1 item");
    await daemon.stop();
    socket.close();
  });

  test("WATCHDOG=1 at half of $WATCHDOG_USEC", async () => {
    const { daemon, socket } = await systemdLike("watchdog.sock", { WATCHDOG_USEC: "200000" });
    await socket.waitFor((m) => m.startsWith("READY=1"));
    await Bun.sleep(1000);
    const pings = socket.messages.filter((m) => m === "WATCHDOG=1").length;
    // About ten in a second at 100 ms; the margin is wide, as the machine may be busy.
    expect(pings).toBeGreaterThanOrEqual(4);
    expect(pings).toBeLessThanOrEqual(15);
    await daemon.stop();
    socket.close();
  });

  test("no watchdog pings for another process ($WATCHDOG_PID)", async () => {
    const { daemon, socket } = await systemdLike("other.sock", { WATCHDOG_USEC: "200000", WATCHDOG_PID: "1" });
    await socket.waitFor((m) => m.startsWith("READY=1"));
    await Bun.sleep(400);
    expect(socket.messages.filter((m) => m === "WATCHDOG=1")).toEqual([]);
    await daemon.stop();
    socket.close();
  });

  test("the store goes to $CACHE_DIRECTORY and tokens come from $CREDENTIALS_DIRECTORY", async () => {
    const { daemon, socket, dir } = await systemdLike("env.sock");
    expect(daemon.logs("ready")[0]!.store).toBe(join(dir, "cache"));
    expect((await daemon.fetch("/a", { token: "app-token-Cc3" })).status).toBe(200);
    await daemon.stop();
    socket.close();
  });
});

describe("SIGHUP reloads the configuration", () => {
  test("a changed token: the old one is refused, the new one accepted, stored values kept", async () => {
    const { daemon, socket, dir } = await systemdLike("reload.sock");
    expect((await daemon.fetch("/a", { token: "ops-old-Tt1" })).status).toBe(200);
    upstream.on("/a", { status: 503, body: "down" });
    writeFileSync(join(dir, "cachish.yml"), config("ops-new-Nn2", `  /b: {module: JsonHttp, parameters: {url: "${upstream.url}/b"}}`));
    daemon.process.kill("SIGHUP");
    expect(await daemon.waitForLog("reloaded")).toMatchObject({ items: "2", clients: "2" });
    expect((await daemon.fetch("/a", { token: "ops-old-Tt1" })).status).toBe(403);
    const kept = await daemon.fetch("/a", { token: "ops-new-Nn2" });
    expect(kept.status).toBe(200);
    expect(await kept.text()).toBe('{"a": 1}');
    expect(kept.headers.get("x-cache")).toBe("hit");
    expect(await (await daemon.fetch("/b", { token: "ops-new-Nn2" })).text()).toBe('{"b": 2}');
    await daemon.stop();
    socket.close();
    upstream.json("/a", { a: 1 });
  });

  test("an invalid file: refused and logged, the old configuration keeps serving", async () => {
    const { daemon, socket, dir } = await systemdLike("invalid.sock");
    writeFileSync(join(dir, "cachish.yml"), "items:\n  /a: {module: Nope}\n");
    daemon.process.kill("SIGHUP");
    const refused = await daemon.waitForLog("reload refused: the configuration is invalid; still serving the previous one");
    expect(refused).toMatchObject({ level: "error", errors: "1" });
    expect(refused.problems).toStartWith(`${join(dir, "cachish.yml")}:2:16: error: unknown module; expected one of`);
    expect((await daemon.fetch("/a", { token: "ops-old-Tt1" })).status).toBe(200);
    // systemd hears that the daemon is ready again, with the old configuration.
    await socket.waitFor((m) => m.startsWith("RELOADING=1"));
    expect(socket.messages.filter((m) => m.startsWith("READY=1")).length).toBe(2);
    await daemon.stop();
    socket.close();
  });

  test("a request in flight during a reload completes", async () => {
    upstream.on("/slow", { body: '{"slow": 1}', delayMs: 800 });
    const dir = tempDir({ "credentials/app-token": "x\n" });
    const env = { CREDENTIALS_DIRECTORY: join(dir, "credentials"), CACHE_DIRECTORY: join(dir, "cache") };
    const withSlow = (token: string) => config(token, `  /slow: {module: JsonHttp, parameters: {url: "${upstream.url}/slow"}}`);
    const daemon = await Daemon.start(withSlow("ops-old-Tt1"), { dir, env });
    const inFlight = daemon.fetch("/slow", { token: "ops-old-Tt1" });
    await Bun.sleep(200);
    writeFileSync(join(dir, "cachish.yml"), withSlow("ops-new-Nn2"));
    daemon.process.kill("SIGHUP");
    await daemon.waitForLog("reloaded");
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('{"slow": 1}');
    await daemon.stop();
  });

  test("a changed listen address is logged as needing a restart", async () => {
    const dir = tempDir({ "credentials/app-token": "x\n" });
    const daemon = await Daemon.start(config("t1"), { dir, env: { CREDENTIALS_DIRECTORY: join(dir, "credentials"), CACHE_DIRECTORY: join(dir, "cache") } });
    writeFileSync(join(dir, "cachish.yml"), config("t1").replace("listen: 127.0.0.1:0", "listen: 127.0.0.1:1"));
    daemon.process.kill("SIGHUP");
    expect((await daemon.waitForLog("reloaded, except")).note).toBe("`listen` changed: it takes effect at the next restart");
    expect((await daemon.fetch("/-/healthy")).status).toBe(200);
    await daemon.stop();
  });

  test("log settings take effect", async () => {
    const dir = tempDir({ "credentials/app-token": "x\n" });
    const daemon = await Daemon.start(config("t1"), { dir, env: { CREDENTIALS_DIRECTORY: join(dir, "credentials"), CACHE_DIRECTORY: join(dir, "cache") } });
    writeFileSync(join(dir, "cachish.yml"), `log: {level: warn}\n${config("t1")}`);
    daemon.process.kill("SIGHUP");
    await daemon.waitForLog("reloaded");
    await daemon.fetch("/a", { token: "t1" });
    await daemon.stop();
    expect(daemon.logs("request")).toEqual([]);
  });
});
