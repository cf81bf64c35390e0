import { describe, expect, test } from "bun:test";
import Ajv from "ajv";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { configReference, withReference } from "../../src/config/reference";
import { configSchema, configSchemaText } from "../../src/config/schema";

const ROOT = join(import.meta.dir, "../..");
const read = (path: string) => readFileSync(join(ROOT, path), "utf8");

describe("what is generated from the one description of the keys", () => {
  test("schema/cachish.schema.json is up to date (run `npm run generate`)", () => {
    expect(read("schema/cachish.schema.json")).toBe(configSchemaText());
  });

  test("the README's configuration reference is up to date (run `npm run generate`)", () => {
    const readme = read("README.md");
    expect(withReference(readme)).toBe(readme);
    expect(readme).toContain("| `stale_after` | duration | none |");
  });

  test("the reference names every key of every module", () => {
    const reference = configReference();
    for (const key of ["api_token", "app", "config_key", "api_url", "secret_id", "secret", "algorithm", "headers", "token_sha256", "max_body"]) {
      expect(reference).toContain(`| \`${key}\` |`);
    }
  });
});

describe("the JSON Schema, as an editor would apply it", () => {
  const ajv = new Ajv({ allErrors: true, strict: false });
  const validate = ajv.compile(configSchema());
  // Read as cachish reads them (YAML 1.1: the 1.x example's `yes` is a boolean), so that
  // what is judged here is the schema, not the YAML version.
  const load = (path: string) => parse(read(path), { version: "1.1" });

  test("accepts the demo and the 1.x example", () => {
    expect(validate(load("examples/cachish.yml")) ? [] : validate.errors).toEqual([]);
    expect(validate(load("examples/cachish-1x.yml")) ? [] : validate.errors).toEqual([]);
  });

  test("refuses what check-config refuses as a matter of shape", () => {
    const base = load("examples/cachish.yml");
    const cases: [string, (c: any) => void][] = [
      ["an unknown top-level key", (c) => (c.colour = "blue")],
      ["an unknown module", (c) => (c.items["/ip-ranges"].module = "jsonhttp")],
      ["an unknown parameter", (c) => (c.items["/ip-ranges"].parameters.feild = ["x"])],
      ["a missing Heroku parameter", (c) => delete c.items["/database-url"].parameters.app],
      ["a bad duration", (c) => (c.defaults.ttl = "5 minutes")],
      ["a bad listen address", (c) => (c.listen = "localhost")],
      ["a relative item path", (c) => (c.items["no-slash"] = c.items["/ip-ranges"])],
      ["a client with both token forms", (c) => (c.auth.worker.token_sha256 = "a".repeat(64))],
      ["a malformed secret reference", (c) => (c.auth.worker.token = { env: "A", file: "b" })],
    ];
    for (const [what, change] of cases) {
      const config = structuredClone(base);
      change(config);
      expect({ what, valid: validate(config) }).toEqual({ what, valid: false });
    }
  });
});
