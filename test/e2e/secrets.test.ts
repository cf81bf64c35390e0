/**
 * No secret in a message (SPEC 3, Validation; 5.6), on configurations nobody here wrote: a
 * seeded mutator breaks files whose every secret is a canary, and everything cachish prints
 * about them (check-config as text and as JSON, serve's start, a refused or accepted reload)
 * must hold no piece of any canary. A mutation may split a canary, so every run of 8 of its
 * characters is looked for.
 *
 * The seed is fixed, so that a run is repeatable and CI never fails by chance; FUZZ_SEED=N or
 * FUZZ_SEED=random explores others, FUZZ_RUNS=N runs more in-process cases (16,000 over 8 random
 * seeds passed when this was written).
 */
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { defineCommand } from "citty";
import { checkConfigCommand } from "../../src/cli/check-config";
import { runCli } from "../../src/cli/run";
import { cachish } from "../support/cli";
import { Daemon } from "../support/daemon";
import { Mutator } from "../support/mutate";
import { tempDir } from "../support/temp";

const SEED = process.env.FUZZ_SEED === "random" ? Math.floor(Math.random() * 2 ** 31) : Number(process.env.FUZZ_SEED ?? 20261130);
const RUNS = Number(process.env.FUZZ_RUNS ?? 400);
const seeds = new Mutator(SEED);

/** 24 characters nobody writes by chance. */
const canary = () => Array.from({ length: 24 }, () => "abcdefghijklmnopqrstuvwxyz0123456789"[seeds.int(36)]).join("");
const CANARIES = Array.from({ length: 14 }, canary);
const KEY = Buffer.from(Array.from({ length: 32 }, () => seeds.int(256))).toString("base64");
const [api, app, password, header, hawkId, hawkKey, web, worker, legacy, pgPassword, partner, quoted, halfway, headerName] = CANARIES;
const SECRETS = [...CANARIES, KEY];

/** A configuration with a canary wherever a secret may stand, in each quoting style. */
const FULL = `items:
  /database-url:
    module: Heroku
    parameters:
      api_url: http://127.0.0.1:9/heroku
      api_token: ${api}
      app: ${app}
      config_key: [DATABASE_URL, REDIS_URL]
    ttl: 5s
  /ip-ranges:
    module: JsonHttp
    disable_auth: true
    parameters:
      url: http://cachish:${password}@127.0.0.1:9/ip-ranges.json
      field: [prefixes]
      headers:
        Authorization: Bearer ${header}
  /partner:
    module: Hawk
    parameters:
      secret_id: "${hawkId}"
      secret: '${hawkKey}'
      url: http://127.0.0.1:9/partner
defaults:
  timeout: 2s
  max_backoff: 30s
auth:
  web:
    token: ${web}
    url: /database-url
  worker: {token: "${worker}", url: ["/database-url", "/partner*"]}
  partner:
    token: >-
      ${partner}
    url:
      - /partner
`;

/** A 1.x file, its tokens in the pre-1.1 form among others, and a shared tier. */
const OLD = `items:
  /database-url:
    module: Heroku
    parameters: {api_token: ${quoted}, app: my-app, config_key: DATABASE_URL}
auth:
  ${legacy}: /database-url
  web: {token: ${web}, url: /database-url}
shared_store:
  url: postgres://cachish:${pgPassword}@127.0.0.1:1/cachish
  key: ${KEY}
  timeout: 1s
`;

/** Keys that are secrets: a 1.x client half rewritten (its name is still its token), a header name written where its value belongs. */
const KEYS = `items:
  /a:
    module: JsonHttp
    parameters:
      url: http://127.0.0.1:9/a
      headers:
        ${headerName}:
auth:
  ${halfway}: {url: /a}
`;

/** The pieces of a secret that must not be seen: every run of 8 characters. */
const PIECES = SECRETS.flatMap((secret) => Array.from({ length: secret.length - 7 }, (_, i) => secret.slice(i, i + 8)));

function leaks(output: string): string[] {
  return SECRETS.filter((secret) => PIECES.some((piece) => secret.includes(piece) && output.includes(piece)));
}

/** What to show when a secret leaked: the seed, the file, and the output. */
function report(what: string, file: string, output: string): string {
  return `${what} (FUZZ_SEED=${SEED}) showed a secret.\n--- file ---\n${file}\n--- output ---\n${output}`;
}

function expectNoLeak(what: string, file: string, output: string): void {
  if (leaks(output).length > 0) throw new Error(report(what, file, output));
  expect(leaks(output)).toEqual([]);
}

/** check-config in this process: the same command the binary runs, hundreds of times a second. */
async function checkInProcess(file: string, json: boolean): Promise<string> {
  let output = "";
  const io = { out: (text: string) => void (output += text), err: (text: string) => void (output += text), color: false };
  const root = defineCommand({ meta: { name: "cachish" }, subCommands: { "check-config": checkConfigCommand(io) } });
  const code = await runCli(root, ["check-config", ...(json ? ["--json"] : []), file], io);
  return `${output}\nexit ${code}`;
}

describe(`no secret in any message about a mutated configuration (FUZZ_SEED=${SEED})`, () => {
  const dir = tempDir();
  const file = join(dir, "cachish.yml");
  const bases = [FULL, OLD, KEYS];

  test("the unmutated files themselves", async () => {
    for (const base of bases) {
      writeFileSync(file, base);
      expectNoLeak("check-config", base, await checkInProcess(file, false));
      expectNoLeak("check-config --json", base, await checkInProcess(file, true));
    }
    expect(await checkInProcess(file, false)).toContain("this client needs `token` or `token_sha256`");
    // The first is valid: the summary is shown, and it holds no secret either.
    writeFileSync(file, FULL);
    expect(await checkInProcess(file, false)).toContain("valid, 3 items, 3 clients");
  });

  test(`check-config, as text and as JSON, on ${RUNS} mutations`, async () => {
    const mutator = new Mutator(SEED + 1);
    let valid = 0;
    for (let i = 0; i < RUNS; i++) {
      const mutated = mutator.mutate(mutator.pick(bases));
      writeFileSync(file, mutated);
      const text = await checkInProcess(file, false);
      expectNoLeak("check-config", mutated, text);
      expectNoLeak("check-config --json", mutated, await checkInProcess(file, true));
      if (text.endsWith("exit 0")) valid++;
    }
    // The mutations are not all fatal, nor all harmless: both sides are exercised.
    expect(valid).toBeGreaterThan(RUNS / 20);
    expect(valid).toBeLessThan(RUNS - RUNS / 20);
  }, 60_000);

  test("dist/cachish check-config and serve on 30 mutations", async () => {
    const mutator = new Mutator(SEED + 2);
    for (let i = 0; i < 30; i++) {
      const mutated = mutator.mutate(mutator.pick(bases));
      writeFileSync(file, mutated);
      for (const args of [["check-config", file], ["check-config", "--json", file]]) {
        const ran = await cachish(args, { cwd: dir });
        expectNoLeak(args.join(" "), mutated, ran.stdout + ran.stderr);
      }
    }
    for (let i = 0; i < 10; i++) {
      const mutated = mutator.mutate(mutator.pick(bases));
      const daemon = await Daemon.start(mutated, { args: ["--listen", "127.0.0.1:0"] });
      if (daemon.address) await daemon.stop();
      await daemon.exited();
      expectNoLeak("serve", mutated, `${daemon.lines.join("\n")}\n${daemon.stderr}`);
    }
  }, 60_000);

  test("a running daemon reloading 40 mutations", async () => {
    const mutator = new Mutator(SEED + 3);
    const daemon = await Daemon.start(FULL, { args: ["--listen", "127.0.0.1:0"] });
    const reloads = () => daemon.lines.filter((line) => /msg="?(reloaded|reload refused)/.test(line)).length;
    for (let i = 0; i < 40; i++) {
      const mutated = mutator.mutate(FULL);
      writeFileSync(join(daemon.dir, "cachish.yml"), mutated);
      const before = reloads();
      daemon.process.kill("SIGHUP");
      const end = Date.now() + 5000;
      while (reloads() === before && Date.now() < end) await Bun.sleep(10);
      expect(reloads()).toBe(before + 1);
      expectNoLeak("a reload", mutated, daemon.lines.join("\n"));
    }
    expect((await daemon.fetch("/-/healthy")).status).toBe(200);
    await daemon.stop();
    expectNoLeak("the daemon's whole log", FULL, `${daemon.lines.join("\n")}\n${daemon.stderr}`);
  }, 60_000);
});
