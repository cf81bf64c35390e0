/**
 * The bench's measuring tools: load at a fixed number of connections (by wrk when it is
 * installed, else by fetch loops in this process), bursts of new connections, the wait for a
 * first 200, and a process's resident memory.
 */
import { existsSync, readFileSync } from "node:fs";

export const WRK = Bun.which("wrk");
export const CONNECTIONS = 50;

export type Load = { rps: number; p50: number; p99: number; requests: number; errors: number };

function wrkMs(text: string, label: string): number {
  const m = new RegExp(`^\\s*${label}\\s+([\\d.]+)(us|ms|s)\\s*$`, "m").exec(text);
  if (!m) return Number.NaN;
  return Number(m[1]) * (m[2] === "us" ? 0.001 : m[2] === "s" ? 1000 : 1);
}

export async function load(url: string, seconds: number, headers: Record<string, string> = {}): Promise<Load> {
  if (WRK) {
    const args = [WRK, "-t1", `-c${CONNECTIONS}`, `-d${seconds}s`, "--latency", ...Object.entries(headers).flatMap(([k, v]) => ["-H", `${k}: ${v}`]), url];
    const child = Bun.spawn(args, { stdout: "pipe", stderr: "pipe" });
    const text = await new Response(child.stdout).text();
    await child.exited;
    const requests = Number(/(\d+) requests in/.exec(text)?.[1] ?? 0);
    const errors = Number(/Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0) + Number(/Socket errors: .*?(\d+) timeout/.exec(text)?.[1] ?? 0);
    return { rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? 0), p50: wrkMs(text, "50%"), p99: wrkMs(text, "99%"), requests, errors };
  }
  const latencies: number[] = [];
  let errors = 0;
  const end = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (performance.now() < end) {
        const started = performance.now();
        const res = await fetch(url, { headers });
        await res.arrayBuffer();
        if (res.status !== 200) errors++;
        latencies.push(performance.now() - started);
      }
    }),
  );
  return { rps: latencies.length / seconds, ...percentiles(latencies), requests: latencies.length, errors };
}

export function percentiles(latencies: number[]): { p50: number; p99: number } {
  const sorted = [...latencies].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  return { p50: at(0.5), p99: at(0.99) };
}

/** `n` requests at once, each on its own connection; their latencies, and how many were not 200. */
export async function burst(url: string, n = 200): Promise<{ p50: number; p99: number; errors: number }> {
  const answers = await Promise.all(
    Array.from({ length: n }, async () => {
      const started = performance.now();
      const res = await fetch(url, { keepalive: false } as RequestInit);
      await res.arrayBuffer();
      return { ms: performance.now() - started, ok: res.status === 200 };
    }),
  );
  return { ...percentiles(answers.map((a) => a.ms)), errors: answers.filter((a) => !a.ok).length };
}

export async function until200(url: string, limitMs = 10_000): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < limitMs) {
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.status === 200) return performance.now() - started;
    } catch {}
    await Bun.sleep(2);
  }
  return Number.NaN;
}

/**
 * The resident memory of a process and its children (nginx's workers), in MB: all of it (RSS),
 * and its anonymous part (heap, stacks, JIT code). The rest is pages of the executable file,
 * shared with the page cache: how many of those a process maps depends on how much of the
 * file the page cache holds (the kernel maps cached pages around each fault), so RSS reads a
 * few MB higher right after a build has written the binary than after a cold start.
 */
export type Memory = { rss: number; anon: number };
export function memoryMB(pid: number): Memory {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kB = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024;
  const children = existsSync(`/proc/${pid}/task/${pid}/children`) ? readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean) : [];
  return children.map((child) => memoryMB(Number(child))).reduce((sum, m) => ({ rss: sum.rss + m.rss, anon: sum.anon + m.anon }), { rss: kB("VmRSS"), anon: kB("RssAnon") });
}
