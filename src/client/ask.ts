/**
 * The two ways `cachish get` asks for a value: a running daemon over HTTP (TCP or a unix
 * socket), or, with `--config`, the resolver and store of that configuration in this process.
 */
import { loadConfig } from "../config/load";
import { connectProblem } from "../error-text";
import { openResolver } from "../open";
import { createLogger } from "../log";
import { StoreError } from "../store/store";
import { type Answer, fromOutcome, fromResponse } from "./answer";

export const DEFAULT_SERVER = "http://127.0.0.1:2469";

/**
 * `poll`: a watcher's question (SPEC 5.8): 304 while the value's bytes are those of `etag`; with
 * `waitSeconds`, a long poll (answered once they differ, or 304 after that long). `signal`: a
 * watcher told to stop stops asking.
 */
export type Poll = { etag: string; waitSeconds?: number };

export async function askDaemon(server: string, path: string, token: string | undefined, timeoutMs: number, poll?: Poll, signal?: AbortSignal): Promise<Answer> {
  const headers: Record<string, string> = token === undefined ? {} : { Authorization: `Bearer ${token}` };
  if (poll) headers["If-None-Match"] = poll.etag;
  if (poll?.waitSeconds) headers.Prefer = `wait=${poll.waitSeconds}`;
  const timeout = AbortSignal.timeout(timeoutMs);
  const unix = server.startsWith("unix:") ? server.slice("unix:".length) : undefined;
  const url = `${unix ? "http://localhost" : server.replace(/\/+$/, "")}${encodeURI(path)}`;
  try {
    const response = await fetch(url, { headers, signal: signal ? AbortSignal.any([timeout, signal]) : timeout, ...(unix ? { unix } : {}) } as RequestInit);
    return await fromResponse(response, path);
  } catch (error) {
    const name = (error as { name?: string }).name;
    if (name === "TimeoutError") return { kind: "unavailable", why: `the daemon at ${server} did not answer within ${Math.round(timeoutMs / 1000)} s` };
    return { kind: "unavailable", why: `the daemon at ${server} cannot be reached (${connectProblem(error)})` };
  }
}

/** Resolves the item through the same resolver and store as the daemon, no token needed. */
export async function askLocal(file: string, path: string, report: (text: string) => void): Promise<Answer> {
  const loaded = loadConfig(file);
  if (!loaded.config) {
    const errors = loaded.problems.filter((p) => p.severity === "error").length;
    return { kind: "error", why: `the configuration ${file} is invalid (${errors} error${errors === 1 ? "" : "s"}); \`cachish check-config ${file}\` explains it` };
  }
  if (!loaded.config.items.has(path)) return { kind: "error", why: `${file} has no item ${path}` };
  // Only errors of the store reach stderr; an upstream failure is told by the answer itself.
  const log = createLogger({ format: "logfmt", level: "error" }, report);
  let opened;
  try {
    opened = await openResolver(loaded.config, log);
  } catch (error) {
    log.flush();
    if (error instanceof StoreError) return { kind: "error", why: error.message };
    throw error;
  }
  try {
    return fromOutcome(await opened.resolver.resolve(path), Date.now());
  } finally {
    // A background fetch the answer started (stale_after: 0s) finishes before the store closes.
    await opened.resolver.stop();
    await opened.store.close();
    log.flush();
  }
}
