import { join } from "node:path";
import { loadConfig } from "../../src/config/load";
import type { Config } from "../../src/config/types";
import { tempDir } from "./temp";

/** Lines of YAML, joined: keeps indentation visible in the tests. */
export const yaml = (...lines: string[]) => `${lines.join("\n")}\n`;

/**
 * Loads `source` as <temp>/cachish.yml (beside `files`) and gives each problem as
 * "LINE:COLUMN: severity: message", the form check-config prints after the file name.
 */
export function check(source: string, options: { env?: Record<string, string>; files?: Record<string, string> } = {}): { problems: string[]; config?: Config; dir: string } {
  const dir = tempDir({ "cachish.yml": source, ...options.files });
  const result = loadConfig(join(dir, "cachish.yml"), options.env ?? {});
  const problems = result.problems.map((p) => `${p.at ? `${p.at.line}:${p.at.column}: ` : ""}${p.severity}: ${p.message}`);
  return { problems, dir, ...(result.config ? { config: result.config } : {}) };
}

/** A valid item and client to build a broken file around. */
export const ITEM = ["  /a:", "    module: JsonHttp", "    parameters:", "      url: http://127.0.0.1:9/a"];
export const CLIENT = ["  web:", "    token: web-token", "    url: /a"];
