/**
 * What cachish takes from its environment. Bun's fetch reads `HTTP_PROXY` and its kin from the
 * process's environment at each request; 1.x never used them (requests with `trust_env=False`),
 * and a proxy named there would see every upstream request and its token, so they are removed
 * when cachish starts (SPEC 3). The environment as it was is kept for the configuration: a
 * secret reference such as `proxy: {env: HTTPS_PROXY}` may name one of them.
 */

/** The environment cachish was started with, proxy variables included. */
export const startEnvironment: Readonly<Record<string, string | undefined>> = { ...process.env };

const PROXY_VARIABLES = ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"].flatMap((name) => [name, name.toLowerCase()]);

export function ignoreProxyEnvironment(env: Record<string, string | undefined> = process.env): void {
  for (const name of PROXY_VARIABLES) delete env[name];
}

/**
 * Variables with which Bun itself would print what cachish must never print: with
 * BUN_CONFIG_VERBOSE_FETCH, every request as a curl command, its Authorization header included
 * (read by Bun at start, so it cannot be removed here). cachish refuses to run with them.
 */
export function leakyVariables(env: Readonly<Record<string, string | undefined>> = startEnvironment): string[] {
  return ["BUN_CONFIG_VERBOSE_FETCH"].filter((name) => env[name] !== undefined && env[name] !== "" && env[name] !== "0" && env[name] !== "false");
}
