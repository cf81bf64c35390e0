import { join } from "node:path";

export const BINARY = join(import.meta.dir, "../../dist/cachish");

export type Ran = { code: number; stdout: string; stderr: string };

/**
 * Runs dist/cachish, the file users run, with a small known environment: nothing of the
 * developer's (a CACHISH_CONFIG_FILE, a CREDENTIALS_DIRECTORY) leaks into what is tested.
 */
export async function cachish(args: string[], options: { env?: Record<string, string>; cwd?: string } = {}): Promise<Ran> {
  const child = Bun.spawn([BINARY, ...args], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp", ...options.env },
    cwd: options.cwd ?? import.meta.dir,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { code, stdout, stderr };
}
