import { isAbsolute, resolve } from "node:path";
import type { Listen } from "./types";

const HOSTNAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/**
 * `HOST:PORT`, `[IPV6]:PORT` or `unix:PATH`, or a sentence saying what is wrong. The host is
 * never left out: a daemon holding credentials must not end up on every interface by accident.
 * Port 0 asks the system for a free port (the ready log line tells which).
 */
export function parseListen(text: string, baseDir: string): Listen | string {
  if (text.startsWith("unix:")) {
    const path = text.slice("unix:".length);
    if (path === "") return "`unix:` needs a socket path, e.g. `unix:/run/cachish/cachish.sock`";
    return { kind: "unix", path: isAbsolute(path) ? path : resolve(baseDir, path) };
  }
  const m = /^(?:\[([^\]]*)\]|([^:]*)):(\d{1,5})$/.exec(text);
  if (!m) return "expected `HOST:PORT` (e.g. `127.0.0.1:2469`, `[::1]:2469`) or `unix:/path/to/socket`";
  const port = Number(m[3]);
  if (port > 65535) return "the port is out of range (0 to 65535)";
  if (m[1] !== undefined) {
    if (!/^[0-9a-f:.]+$/i.test(m[1]) || !m[1].includes(":")) return "the host in `[...]` is not an IPv6 address";
    return { kind: "tcp", host: m[1], port };
  }
  const host = m[2]!;
  if (host === "") return "the host is missing: write `127.0.0.1:PORT` for this machine only, or `0.0.0.0:PORT` for every interface";
  if (!HOSTNAME.test(host)) return "the host is not a host name or IPv4 address";
  return { kind: "tcp", host, port };
}

export function formatListen(listen: Listen): string {
  if (listen.kind === "unix") return `unix:${listen.path}`;
  return listen.host.includes(":") ? `[${listen.host}]:${listen.port}` : `${listen.host}:${listen.port}`;
}
