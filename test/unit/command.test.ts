/**
 * The `Command` backend in-process (src/backends/command.ts, run.ts): real programs, stand-in
 * scripts written here, run as the daemon runs them through fetchItem; and what the
 * configuration accepts for them.
 */
import { describe, expect, test } from "bun:test";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fetchItem } from "../../src/backends";
import { UpstreamFailure } from "../../src/backends/failure";
import { firstLine } from "../../src/backends/run";
import { summarize } from "../../src/config/summary";
import type { Item } from "../../src/config/types";
import { check, yaml } from "../support/config";
import { tempDir } from "../support/temp";

const dir = tempDir();
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** A stand-in program: an `sh` script in the temp folder; its absolute path. */
function script(name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

/** The one item of a configuration whose item lines are `lines` (indented under the item). */
function item(...lines: string[]): Item {
  const { config, problems } = check(yaml("items:", "  /c:", "    module: Command", "    disable_auth: true", ...lines.map((l) => `    ${l}`)), { env: { OP_TOKEN: "op-token-from-env-Zq4" } });
  expect(problems).toEqual([]);
  return config!.items.get("/c")!;
}

/** The failure of one fetch, as kind, message (and the time it took). */
async function failure(of: Item): Promise<{ kind: string; message: string; ms: number }> {
  const started = performance.now();
  try {
    await fetchItem(of, Date.now());
  } catch (error) {
    if (!(error instanceof UpstreamFailure)) throw error;
    return { kind: error.kind, message: error.message, ms: performance.now() - started };
  }
  throw new Error("the fetch succeeded");
}

/** Whether a process runs: a killed one whose parent has not reaped it yet (here, a PID 1 that reaps late) is a zombie, `Z`. */
const alive = (pid: number) => {
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
};

describe("a run", () => {
  test("exit 0 and JSON: the value, as 1.x writes JSON; `field` picks keys; the arguments reach the program as given", async () => {
    const program = script("value.sh", `printf '{"b": [1, 2], "a": "%s", "c": null}' "$1"`);
    const whole = await fetchItem(item("parameters:", `  argv: [${program}, "two words; $HOME *"]`), 0);
    expect(whole).toEqual({ kind: "value", value: new TextEncoder().encode('{"b": [1, 2], "a": "two words; $HOME *", "c": null}') });
    const picked = await fetchItem(item("parameters:", `  argv: [${program}, x]`, "  field: [c, a]"), 0);
    expect(picked.kind === "value" && text(picked.value)).toBe('{"c": null, "a": "x"}');
  });

  test("the program is run with exactly `env` and PATH, from /", async () => {
    const program = script("env.sh", `printf '{"env": "%s", "pwd": "%s"}' "$(env | grep -v '^PWD=' | sort | tr '\\n' ' ')" "$(pwd)"`);
    const got = await fetchItem(item("parameters:", `  argv: [${program}]`, "  env: {ZED: last, API_TOKEN: {env: OP_TOKEN}}"), 0);
    expect(got.kind === "value" && JSON.parse(text(got.value))).toEqual({ env: `API_TOKEN=op-token-from-env-Zq4 PATH=${process.env.PATH} ZED=last `, pwd: "/" });
    // `env` may set PATH itself: a program is then looked up there.
    script("path.sh", `printf '{"path": "%s"}' "$PATH"`);
    const own = await fetchItem(item("parameters:", "  argv: [path.sh]", `  env: {PATH: "${dir}"}`), 0);
    expect(own.kind === "value" && text(own.value)).toBe(`{"path": "${dir}"}`);
  });

  test("a non-zero exit is a `command` failure: its status and the first line of standard error, the item's secrets replaced", async () => {
    const program = script("fails.sh", 'echo "denied for token $API_TOKEN (arg $1), see below" >&2; echo "second line $API_TOKEN" >&2; echo \'{"a": 1}\'; exit 3');
    const failed = await failure(item("parameters:", `  argv: [${program}, {env: OP_TOKEN}]`, "  env: {API_TOKEN: api-token-Hh3}"));
    expect({ kind: failed.kind, message: failed.message }).toEqual({ kind: "command", message: "the program exited with status 3: denied for token [secret] (arg [secret]), see below" });
    // What it left running holds standard error open: killed when the program exits, it does not hold up the failure.
    const leaves = script("fails-leaving.sh", "sleep 1000 & echo oops >&2; exit 1");
    const quick = await failure(item("parameters:", `  argv: [${leaves}]`, "timeout: 5s"));
    expect({ kind: quick.kind, message: quick.message, quick: quick.ms < 2000 }).toEqual({ kind: "command", message: "the program exited with status 1: oops", quick: true });
  });

  test("a program killed by a signal, one that is not found, one that cannot be executed: `command`, naming no argument", async () => {
    const killed = script("killed.sh", "kill -SEGV $$");
    expect(await failure(item("parameters:", `  argv: [${killed}]`))).toMatchObject({ kind: "command", message: "the program was killed by SIGSEGV" });
    expect(await failure(item("parameters:", "  argv: [no-such-program-x9, secret-arg]"))).toMatchObject({ kind: "command", message: "the program cannot be started: not found" });
    expect(await failure(item("parameters:", `  argv: [${dir}/nothing-here]`))).toMatchObject({ kind: "command", message: "the program cannot be started: not found" });
    const plain = join(dir, "not-executable");
    writeFileSync(plain, "#!/bin/sh\n");
    expect(await failure(item("parameters:", `  argv: [${plain}]`))).toMatchObject({ kind: "command", message: "the program cannot be started: permission denied" });
  });

  test("not JSON is `invalid-json`; a missing `field` is `missing-field`; nothing at all is `invalid-json`", async () => {
    expect(await failure(item("parameters:", "  argv: [echo, postgres://not-json]"))).toMatchObject({ kind: "invalid-json" });
    expect(await failure(item("parameters:", `  argv: [echo, '{"a": 1}']`, "  field: b"))).toMatchObject({ kind: "missing-field", message: "the answer has no key named by the 1st of `field`/`config_key`" });
    expect(await failure(item("parameters:", "  argv: ['true']"))).toMatchObject({ kind: "invalid-json" });
  });

  test("a hang is killed at `timeout` with everything it started: a `timeout` failure, and its grandchild is gone", async () => {
    const pidFile = join(dir, "grandchild.pid");
    const program = script("hangs.sh", `sleep 1000 & echo $! > ${pidFile}; echo '{"a":' ; sleep 1000`);
    const failed = await failure(item("parameters:", `  argv: [${program}]`, "timeout: 500ms"));
    expect({ kind: failed.kind, message: failed.message }).toEqual({ kind: "timeout", message: "the program did not finish within 500 ms; its process group was killed" });
    expect(failed.ms).toBeGreaterThan(450);
    expect(failed.ms).toBeLessThan(3000);
    const grandchild = Number(readFileSync(pidFile, "utf8"));
    for (let i = 0; i < 50 && alive(grandchild); i++) await Bun.sleep(20);
    expect({ grandchild, alive: alive(grandchild) }).toEqual({ grandchild, alive: false });
  });

  test("a program that exits leaves nothing behind: what it started and left running is killed", async () => {
    const pidFile = join(dir, "left.pid");
    const program = script("leaves.sh", `sleep 1000 > /dev/null 2>&1 & echo $! > ${pidFile}; echo '{"a": 1}'`);
    expect(await fetchItem(item("parameters:", `  argv: [${program}]`), 0)).toMatchObject({ kind: "value" });
    const left = Number(readFileSync(pidFile, "utf8"));
    for (let i = 0; i < 50 && alive(left); i++) await Bun.sleep(20);
    expect(alive(left)).toBe(false);
  });

  test("standard output over `max_body` is `too-large`: the program is killed, the rest is not read", async () => {
    const marker = join(dir, "flood-ended");
    const program = script("floods.sh", `yes '"flood"' ; touch ${marker}`);
    const failed = await failure(item("parameters:", `  argv: [${program}]`, "max_body: 64KiB", "timeout: 10s"));
    expect({ kind: failed.kind, message: failed.message }).toEqual({ kind: "too-large", message: "the program's standard output is over max_body (65536 bytes); its process group was killed" });
    expect(failed.ms).toBeLessThan(2000);
    // Killed, not ended by a broken pipe: the script's next command never ran.
    await Bun.sleep(200);
    expect(existsSync(marker)).toBe(false);
    // Exactly max_body is still a value.
    const exact = script("exact.sh", `printf '"%s"' "$(head -c 65534 /dev/zero | tr '\\0' x)"`);
    expect(await fetchItem(item("parameters:", `  argv: [${exact}]`, "max_body: 64KiB"), 0)).toMatchObject({ kind: "value" });
  });

  test("a flood of standard error does not block the program: 1 MB of it, then the value", async () => {
    const program = script("noisy.sh", `head -c 1048576 /dev/zero | tr '\\0' e >&2; echo '{"after": "noise"}'`);
    const got = await fetchItem(item("parameters:", `  argv: [${program}]`, "timeout: 5s"), 0);
    expect(got.kind === "value" && text(got.value)).toBe('{"after": "noise"}');
  });
});

describe("the first line of standard error", () => {
  const bytes = (s: string) => new TextEncoder().encode(s);

  test("every secret replaced, and each line of a secret of several lines; the longest first", () => {
    expect(firstLine({ head: bytes("token abc123 and abc here\nnext"), cut: false }, ["abc", "abc123"])).toBe("token [secret] and [secret] here");
    expect(firstLine({ head: bytes("key: -----BEGIN-----\nMIIBOg\n"), cut: false }, ["-----BEGIN-----\nMIIBOg"])).toBe("key: [secret]");
    expect(firstLine({ head: bytes("only MIIBOg\n"), cut: false }, ["-----BEGIN-----\nMIIBOg"])).toBe("only [secret]");
    expect(firstLine({ head: bytes("\r\n"), cut: false }, [])).toBe("");
  });

  test("where what was kept was cut, no beginning of a secret remains at its end", () => {
    const secret = "s3cr3t-value-0123456789";
    const head = bytes(`${"x".repeat(40)} ${secret.slice(0, 10)}`);
    expect(firstLine({ head, cut: true }, [secret])).toBe("x".repeat(40).slice(0, 51 - secret.length));
    expect(firstLine({ head, cut: true }, [secret])).not.toContain(secret.slice(0, 4));
  });

  test("at most 300 characters", () => {
    expect(firstLine({ head: bytes("y".repeat(400)), cut: false }, [])).toBe(`${"y".repeat(300)}…`);
  });
});

describe("the configuration of a Command", () => {
  const problems = (...lines: string[]) => check(yaml("items:", "  /c:", "    module: Command", "    disable_auth: true", ...lines.map((l) => `    ${l}`))).problems;

  test("argv is a non-empty list whose first element is a program name or an absolute path; env's names are variable names; no scalar quoted", () => {
    expect(problems("parameters: {argv: vault kv get secret/x}")).toEqual(["5:24: error: `argv` must be a list"]);
    expect(problems("parameters: {argv: []}")).toEqual(["5:24: error: `argv` is an empty list"]);
    expect(problems("parameters: {argv: [bin/vault, kv]}")).toEqual(["5:25: error: `argv`: the program (the first element) must be a name looked up in PATH or an absolute path"]);
    expect(problems("parameters: {argv: ['', kv]}")).toEqual(["5:25: error: `argv`: the program (the first element) is empty"]);
    expect(problems("parameters: {argv: [vault, [kv]]}")).toEqual(["5:32: error: `argv` must be a string (or a secret reference: `{env: NAME}`, `{file: PATH}` or `{credential: NAME}`), found a list"]);
    expect(problems("parameters: {argv: [vault], env: {1X: a, A-B: b, OK_1: c}}")).toEqual([
      "5:39: error: not a valid environment variable name (letters, digits and `_`, not starting with a digit)",
      "5:46: error: not a valid environment variable name (letters, digits and `_`, not starting with a digit)",
    ]);
    expect(problems("parameters: {env: {A: b}}")).toEqual(["5:5: error: missing `argv` in the parameters of `Command`"]);
  });

  test("an argument given by a secret reference is a secret; one written in the file is not; every `env` value is", () => {
    const { config } = check(yaml("items:", "  /c:", "    module: Command", "    disable_auth: true", "    parameters:", "      argv: [op, {env: T}, read]", "      env: {HOME: /var/lib/cachish}"), { env: { T: "t0k" } });
    const params = config!.items.get("/c")!.parameters as { argv: unknown[]; env: Map<string, unknown> };
    expect(params.argv.map(String)).toEqual(["op", "[secret]", "read"]);
    expect(String(params.env.get("HOME"))).toBe("[secret]");
  });

  test("check-config's summary shows the program, never its arguments", () => {
    const { config } = check(yaml("items:", "  /c:", "    module: Command", "    disable_auth: true", "    parameters:", "      argv: [/usr/bin/vault, kv, get, --token=argument-Tq9, secret/x]", "      env: {VAULT_TOKEN: env-Wd2}"));
    const summary = summarize(config!, "store");
    expect(summary.items.map((i) => [i.module, i.program])).toEqual([["Command", "/usr/bin/vault"]]);
    expect(JSON.stringify(summary)).not.toMatch(/argument-Tq9|secret\/x|env-Wd2|kv/);
  });
});
