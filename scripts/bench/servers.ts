/**
 * The servers the bench compares, each started as a child process on 127.0.0.1 and stopped by
 * its own signal: dist/cachish, nginx configured for the same job (scripts/bench/nginx.conf),
 * and the bare server of scripts/bench/floor.ts.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { until200 } from "./load";

export const BINARY = join(import.meta.dir, "../../dist/cachish");
export const NGINX = Bun.which("nginx") ?? (existsSync("/usr/sbin/nginx") ? "/usr/sbin/nginx" : null);
export const TOKEN = "bench-token-0123456789";

export type Target = { url: string; pid: number; stop(): Promise<void>; upstreamAttempts(): Promise<number> };

const children = new Set<Subprocess>();
/** On the way out, whatever is still running. */
export function killAll(): void {
  for (const child of children) child.kill("SIGKILL");
}

export async function freePort(): Promise<number> {
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
  const port = server.port!;
  await server.stop(true);
  return port;
}

/** Starts a server process and waits until `readyUrl` answers 200 (or the process exits, or `limitMs` passes); `stdout` is the child's when it is a pipe. */
export async function launch(
  args: string[],
  readyUrl: string,
  stopSignal: NodeJS.Signals,
  stdout: ReturnType<typeof Bun.file> | "ignore" | "pipe",
  failure: string,
  limitMs = 10_000,
): Promise<{ pid: number; stop(): Promise<void>; stdout: ReadableStream<Uint8Array> | undefined }> {
  const child = Bun.spawn(args, { stdout, stderr: "inherit" });
  children.add(child);
  const started = await Promise.race([until200(readyUrl, limitMs), child.exited.then(() => Number.NaN)]);
  if (Number.isNaN(started)) {
    child.kill("SIGKILL");
    throw new Error(failure);
  }
  return {
    pid: child.pid,
    stdout: child.stdout instanceof ReadableStream ? child.stdout : undefined,
    async stop() {
      child.kill(stopSignal);
      await child.exited;
      children.delete(child);
    },
  };
}

function cachishConfig(port: number, up: string, failing: string): string {
  const item = (path: string, url: string, policy: string) => `  ${path}:\n    module: JsonHttp\n    parameters: {url: "${url}"}\n${policy}`;
  return [
    `listen: 127.0.0.1:${port}`,
    "cache_dir: store",
    "items:",
    item("/hit", `http://${up}/value`, "    ttl: 1h\n    disable_auth: true\n"),
    item("/hit-token", `http://${up}/value`, "    ttl: 1h\n"),
    item("/live", `http://${up}/value`, "    ttl: 0s\n    max_backoff: 0s\n    disable_auth: true\n"),
    // The same job as nginx's proxy_cache_background_update: past ttl, the stored value at once.
    item("/failing", `http://${failing}/value`, "    ttl: 1s\n    timeout: 2s\n    stale_after: 0s\n    disable_auth: true\n"),
    item("/slow", `http://${up}/slow`, "    ttl: 1s\n    stale_after: 0s\n    disable_auth: true\n"),
    // The defaults: past ttl, a client waits for the upstream (one timeout per outage at most).
    item("/failing-wait", `http://${failing}/value`, "    ttl: 1s\n    timeout: 2s\n    disable_auth: true\n"),
    item("/slow-wait", `http://${up}/slow`, "    ttl: 1s\n    disable_auth: true\n"),
    "auth:",
    `  bench: {token: ${TOKEN}, url: "*"}`,
    "",
  ].join("\n");
}

/** dist/cachish with its items' upstream at `up` (/failing's at `failing`); its log goes to `log.txt` in `dir`, or to a pipe (`stdout: "pipe"`, for W13). */
export async function startCachish(dir: string, up: string, failing = up, stdout: "file" | "pipe" = "file"): Promise<Target & { stdout: ReadableStream<Uint8Array> | undefined }> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  writeFileSync(join(dir, "cachish.yml"), cachishConfig(port, up, failing));
  const url = `http://127.0.0.1:${port}`;
  const log = stdout === "pipe" ? "pipe" : Bun.file(join(dir, "log.txt"));
  const server = await launch([BINARY, "serve", "--config", join(dir, "cachish.yml")], `${url}/-/ready`, "SIGTERM", log, `dist/cachish did not start; see ${dir}/log.txt`);
  return {
    url,
    ...server,
    async upstreamAttempts() {
      const text = await (await fetch(`${url}/metrics`)).text();
      return [...text.matchAll(/^cachish_upstream_fetches_total\{item="\/failing",outcome="([^"]+)"\} (\d+)$/gm)].filter((m) => m[1] !== "ok").reduce((sum, m) => sum + Number(m[2]), 0);
    },
  };
}

export async function startNginx(dir: string, up: string, failing = up, timeout = "2s"): Promise<Target> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  writeFileSync(
    join(dir, "nginx.conf"),
    readFileSync(join(import.meta.dir, "nginx.conf"), "utf8")
      .replaceAll("{{DIR}}", dir)
      .replaceAll("{{PORT}}", String(port))
      .replaceAll("{{UPSTREAM}}", up)
      .replaceAll("{{FAILING}}", failing)
      .replaceAll("{{TOKEN}}", TOKEN)
      .replaceAll("{{TIMEOUT}}", timeout)
      .replaceAll("{{USER}}", Bun.spawnSync(["id", "-un"]).stdout.toString().trim()),
  );
  const url = `http://127.0.0.1:${port}`;
  const server = await launch([NGINX!, "-c", join(dir, "nginx.conf"), "-p", dir], `${url}/hit`, "SIGQUIT", "ignore", `nginx did not start; see ${dir}/error.log`);
  return {
    url,
    ...server,
    async upstreamAttempts() {
      const log = existsSync(join(dir, "error.log")) ? readFileSync(join(dir, "error.log"), "utf8") : "";
      return (log.match(/connect\(\) failed|upstream timed out/g) ?? []).length;
    },
  };
}

/** An answer as a server sends it: the body, and the headers that are not the connection's own (Date, Content-Length). */
export type Answer = { body: string; headers: Record<string, string> };

/**
 * scripts/bench/floor.ts compiled into `dir` as scripts/build.ts compiles dist/cachish
 * (minified, bytecode, `--smol`, no files read from the folder it starts in), so that the two
 * differ by cachish's code alone.
 */
export async function buildFloor(dir: string): Promise<string> {
  const outfile = join(dir, "floor");
  const result = await Bun.build({
    entrypoints: [join(import.meta.dir, "floor.ts")],
    format: "esm",
    minify: true,
    bytecode: true,
    compile: { outfile, autoloadDotenv: false, autoloadBunfig: false, autoloadTsconfig: false, autoloadPackageJson: false, execArgv: ["--smol"] },
  });
  if (!result.success) throw new AggregateError(result.logs, "the bare server did not compile");
  return outfile;
}

/** The compiled bare server, answering `answer` to every request; it has no upstream to count. */
export async function startFloor(binary: string, answer: Answer): Promise<Target> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const server = await launch([binary, String(port), JSON.stringify(answer)], `${url}/`, "SIGTERM", "ignore", "the bare server did not start");
  return { url, ...server, upstreamAttempts: async () => Number.NaN };
}
