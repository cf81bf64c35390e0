/**
 * `cachish get --format sh` and `--format env` (src/client/output.ts), asked of their readers: the
 * lines, sourced by dash and bash, must give back every generated value byte for byte, and
 * `env` lines must come back exactly from systemd's own reader of environment files
 * (`load_env_file` of libsystemd-shared, the code behind `EnvironmentFile=`), or be refused by
 * cachish. test/e2e/real-systemd.test.ts asks a booted systemd the same of the README's units.
 */
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { CString, dlopen, FFIType, ptr, read } from "bun:ffi";
import fc from "fast-check";
import { type Format, render } from "../../src/client/output";
import { envValues, parseEnv0 } from "../support/env-values";
import { tempDir } from "../support/temp";

const SHELLS = ["/bin/sh", "/bin/bash"].filter((shell) => Bun.which(shell));

/** What a shell's variables hold after reading the lines: each key's bytes, read back by `printf %s`. */
function readBack(shell: string, format: Format, text: string, keys: string[]): Buffer[] {
  const file = join(tempDir(), "vars");
  writeFileSync(file, text);
  // `sh` lines must export (a program started from the shell sees them); `env` lines only set.
  const show = format === "sh" ? "exec env -0" : `printf '%s\\0' ${keys.map((k) => `"${k}=$${k}"`).join(" ")}`;
  const ran = Bun.spawnSync([shell, "-c", `eval "$(cat '${file}')" && ${show}`], { env: { PATH: "/usr/bin:/bin" }, stderr: "pipe" });
  expect(ran.stderr.toString()).toBe("");
  expect(ran.exitCode).toBe(0);
  const seen = parseEnv0(ran.stdout);
  return keys.map((k) => seen.get(k) ?? Buffer.from("<unset>"));
}

describe.each(["sh", "env"] as const)("--format %s", (format) => {
  test.each(SHELLS)(`generated values come back exactly from %s`, (shell) => {
    fc.assert(
      fc.property(envValues, (vars) => {
        const rendered = render(JSON.stringify(vars), "/p", { format });
        if (!rendered.ok) throw new Error(rendered.why);
        const keys = Object.keys(vars);
        expect(readBack(shell, format, rendered.text, keys)).toEqual(keys.map((k) => Buffer.from(vars[k]!, "utf8")));
      }),
      { numRuns: 60, seed: 20261130 },
    );
  });

  test("the lines: one per key, exported for sh, double-quoted for env; numbers and objects as JSON", () => {
    const body = '{"A": "it\'s \\"x\\" $HOME `id` \\\\", "N": 12345678901234567890, "O": {"k": [1.0]}, "E": ""}';
    const rendered = render(body, "/p", { format });
    expect(rendered).toEqual({
      ok: true,
      text:
        format === "sh"
          ? `export A='it'\\''s "x" $HOME \`id\` \\'\nexport N='12345678901234567890'\nexport O='{"k": [1.0]}'\nexport E=''\n`
          : `A="it's \\"x\\" \\$HOME \\\`id\\\` \\\\"\nN="12345678901234567890"\nO="{\\"k\\": [1.0]}"\nE=""\n`,
    });
  });

  test("a value that cannot be carried exactly is an error naming its key, never a changed value", () => {
    expect(render('{"OK": "x", "NUL": "a\\u0000b"}', "/p", { format })).toEqual({ ok: false, why: `the value of NUL holds a NUL character, which no ${format === "sh" ? "shell" : "environment"} variable can hold` });
    expect(render('{"HALF": "a\\ud800b"}', "/p", { format })).toEqual({ ok: false, why: "the value of HALF holds a lone UTF-16 surrogate (a \\uD800-\\uDFFF escape without its pair), which has no UTF-8 form" });
    expect(render('{"not-a-name": 1}', "/p", { format })).toEqual({ ok: false, why: `the key "not-a-name" of /p is not a valid ${format === "sh" ? "shell" : "environment"} variable name` });
  });
});

test("--format env refuses a value too long for any program's environment; --format sh carries it to the shell", () => {
  // KEY=value and its NUL: 131,072 bytes is the most Linux passes to a program.
  const fits = "x".repeat(128 * 1024 - "BIG=".length - 1);
  expect(render(JSON.stringify({ BIG: fits }), "/p", { format: "env" }).ok).toBe(true);
  expect(render(JSON.stringify({ BIG: `${fits}x` }), "/p", { format: "env" })).toEqual({
    ok: false,
    why: "the value of BIG is 131068 bytes: more than a program's environment can hold (131072 bytes for KEY=value on Linux); use --field and a file instead",
  });
  expect(render(JSON.stringify({ BIG: `${fits}x` }), "/p", { format: "sh" }).ok).toBe(true);
});

/** systemd's shared library, where `load_env_file` lives (Debian: /usr/lib/<triplet>/systemd/). */
function systemdShared(): string | undefined {
  for (const pattern of ["systemd/libsystemd-shared-*.so", "*/systemd/libsystemd-shared-*.so"]) {
    for (const found of new Bun.Glob(pattern).scanSync({ cwd: "/usr/lib" })) return `/usr/lib/${found}`;
  }
  return undefined;
}

const SHARED = systemdShared();
describe.skipIf(!SHARED)(`--format env against systemd's reader of environment files${SHARED ? ` (${SHARED})` : " (skipped: no libsystemd-shared; the systemd package has it)"}`, () => {
  /** What systemd reads from this file: its KEY=value strings, or the error it returns. */
  function systemdReads(text: string): string[] | number {
    const lib = dlopen(SHARED!, { load_env_file: { args: [FFIType.ptr, FFIType.cstring, FFIType.ptr], returns: FFIType.i32 }, log_set_max_level: { args: [FFIType.i32], returns: FFIType.i32 } });
    lib.symbols.log_set_max_level(0); // its "invalid UTF-8 value ... ignoring" lines would fill the test's output
    const file = join(tempDir(), "env");
    writeFileSync(file, text);
    const list = new BigUint64Array(1);
    const error = lib.symbols.load_env_file(null, Buffer.from(`${file}\0`), ptr(list));
    lib.close();
    if (error < 0) return error;
    const strings: string[] = [];
    for (let i = 0, entry = 0; list[0] && (entry = read.ptr(Number(list[0]), i * 8)); i++) strings.push(new CString(entry).toString());
    return strings;
  }

  // Any code point, noncharacters and lone surrogates among them, besides the characters quoting must get right.
  const anyValue = fc.string({ unit: fc.oneof(fc.constantFrom("\uFFFF", "\uFDD0", "\u{10FFFE}", "\0", "\uD800"), fc.string({ unit: "binary", minLength: 1, maxLength: 1 })), maxLength: 20 });

  test("every value cachish writes comes back exactly; every value it refuses, systemd would not have read exactly", () => {
    let refused = 0;
    fc.assert(
      fc.property(fc.oneof(envValues, anyValue.map((v) => ({ V_0: v }))), (vars) => {
        const rendered = render(JSON.stringify(vars), "/p", { format: "env" });
        const expected = Object.entries(vars).map(([k, v]) => `${k}=${v}`);
        if (rendered.ok) {
          expect(systemdReads(rendered.text)).toEqual(expected);
          return;
        }
        refused++;
        // Written without cachish's check, as a plain quoting would: systemd refuses the file or reads something else.
        const unchecked = Object.entries(vars).map(([k, v]) => `${k}="${v.replace(/["\\`$]/g, "\\$&")}"\n`).join("");
        expect(systemdReads(unchecked)).not.toEqual(expected);
      }),
      { numRuns: 400, seed: 20261130 },
    );
    expect(refused).toBeGreaterThan(10);
  }, 60_000);
});
