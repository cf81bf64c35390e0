/**
 * `dist/cachish serve` as a test runs it: a real process on a config in a temp folder,
 * listening on a free port of 127.0.0.1, with its log lines collected.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { afterAll } from "bun:test";
import { BINARY } from "./cli";
import { tempDir } from "./temp";

export type LogLine = Record<string, string>;

const running = new Set<Subprocess>();
afterAll(() => {
  for (const child of running) child.kill("SIGKILL");
});

/** Parses one logfmt line (as the daemon writes it) into its fields. */
export function parseLogfmt(line: string): LogLine {
  // A JSON line (log.format: json) reads as the same fields, as text.
  if (line.startsWith("{")) return Object.fromEntries(Object.entries(JSON.parse(line) as object).map(([k, v]) => [k, String(v)]));
  const fields: LogLine = {};
  const pattern = /(\w+)=("(?:[^"\\]|\\.)*"|\S*)/g;
  for (const m of line.matchAll(pattern)) fields[m[1]!] = m[2]!.startsWith('"') ? JSON.parse(m[2]!) : m[2]!;
  return fields;
}

export class Daemon {
  readonly lines: string[] = [];
  stderr = "";
  address = "";
  #exited: Promise<number>;
  #stderrRead: Promise<void> = Promise.resolve();

  private constructor(
    readonly process: Subprocess<"ignore", "pipe", "pipe">,
    readonly dir: string,
  ) {
    this.#exited = process.exited;
  }

  /** Starts the binary and waits for its ready line (or its exit). */
  static async start(config: string, options: { dir?: string; env?: Record<string, string>; args?: string[] } = {}): Promise<Daemon> {
    const dir = options.dir ?? tempDir();
    writeFileSync(join(dir, "cachish.yml"), config);
    const child = Bun.spawn([BINARY, "serve", "--config", join(dir, "cachish.yml"), ...(options.args ?? [])], {
      // A configuration without cache_dir must not reach the machine's /var/cache/cachish.
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir, CACHE_DIRECTORY: join(dir, "cache"), ...options.env },
      cwd: dir,
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    running.add(child);
    void child.exited.then(() => running.delete(child));
    const daemon = new Daemon(child, dir);
    await daemon.#collect();
    return daemon;
  }

  async #collect(): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = "";
    let readyResolve: () => void = () => {};
    const ready = new Promise<void>((resolve) => (readyResolve = resolve));
    (async () => {
      for await (const chunk of this.process.stdout) {
        buffer += decoder.decode(chunk, { stream: true });
        let newline: number;
        while ((newline = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, newline);
          buffer = buffer.slice(newline + 1);
          this.lines.push(line);
          const fields = parseLogfmt(line);
          if (fields.msg === "ready") {
            this.address = fields.listen!;
            readyResolve();
          }
        }
      }
      readyResolve();
    })();
    this.#stderrRead = (async () => {
      this.stderr = await new Response(this.process.stderr).text();
    })();
    await Promise.race([ready, this.#exited]);
  }

  get url(): string {
    return `http://${this.address}`;
  }

  /** A request to the daemon, with `token` as a Bearer token when given. */
  fetch(path: string, init: RequestInit & { token?: string } = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (init.token !== undefined) headers.set("Authorization", `Bearer ${init.token}`);
    return fetch(`${this.url}${path}`, { ...init, headers });
  }

  /** Log lines parsed, optionally only those with this `msg`. */
  logs(msg?: string): LogLine[] {
    return this.lines.map(parseLogfmt).filter((l) => msg === undefined || l.msg === msg);
  }

  /** Waits until a log line with this `msg` has been written (at most `ms`), and returns it. */
  async waitForLog(msg: string, ms = 5000): Promise<LogLine> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const found = this.logs(msg)[0];
      if (found) return found;
      await Bun.sleep(20);
    }
    throw new Error(`no log line "${msg}" within ${ms} ms; got:\n${this.lines.join("\n")}`);
  }

  /** The exit code, once standard error is read too (what the process said before it ended). */
  async exited(): Promise<number> {
    const code = await this.#exited;
    await this.#stderrRead;
    return code;
  }

  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<number> {
    this.process.kill(signal);
    return this.exited();
  }
}
