/**
 * The daemon's HTTP side on Bun.serve: route (404/405), auth (401/400/403), resolve, answer,
 * and one canonical log line per request (SPEC 5.1, 5.2, 5.5, 5.6).
 */
import { chmodSync, existsSync, lstatSync, unlinkSync } from "node:fs";
import type { Server } from "bun";
import type { Client, Listen } from "../config/types";
import type { Logger } from "../log";
import type { Metrics } from "../metrics";
import type { Clock, Outcome, Resolver } from "../resolver";
import { ALLOW, answer, problem, SERVER } from "./answer";
import { authenticate, type Scheme } from "./auth";

export type Routes = {
  resolver: Resolver;
  clients: () => readonly Client[];
  log: Logger;
  clock: Clock;
  /** False until the store is open and the configuration loaded, and again while stopping. */
  ready: () => boolean;
  /** Served at /metrics when present; /metrics is a 404 otherwise (`metrics: false`). */
  metrics?: Metrics;
};

const OWN_PATHS = new Set(["/-/healthy", "/-/ready", "/metrics"]);

/** The path of a request target, percent-decoded as 1.x (Werkzeug) matched it; the query is ignored. */
function pathOf(url: string): string | undefined {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return "/";
  const query = url.indexOf("?", start);
  const raw = query < 0 ? url.slice(start) : url.slice(start, query);
  if (!raw.includes("%")) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

const shown = (path: string) => (path.length > 200 ? `${path.slice(0, 200)}...` : path);

export function handler(routes: Routes) {
  return (request: Request, server: Server<unknown>): Response | Promise<Response> => {
    const started = performance.now();
    const method = request.method;
    const path = pathOf(request.url);
    let client = "-";
    let scheme: Scheme = "none";
    let outcome: Outcome | undefined;
    let itemPath: string | undefined;
    const finish = (response: Response): Response => {
      if (itemPath !== undefined) routes.metrics?.request(itemPath, response.status, outcome ? outcome.kind : "none");
      if (!routes.log.enabled("info")) return response;
      const upstream = outcome && outcome.kind !== "hit" ? outcome.upstreamMs : undefined;
      routes.log.info("request", {
        method,
        path: path === undefined ? "(undecodable)" : shown(path),
        status: response.status,
        client,
        auth: scheme,
        cache: outcome ? outcome.kind : "-",
        collapsed: outcome && outcome.kind !== "hit" && outcome.collapsed ? true : undefined,
        failure: outcome && (outcome.kind === "stale" || outcome.kind === "unavailable") ? outcome.detail : undefined,
        upstream_ms: upstream,
        duration_ms: Math.round((performance.now() - started) * 10) / 10,
      });
      return response;
    };

    if (path === undefined) return finish(problem(400, "bad request: the path is not valid percent-encoding"));
    if (OWN_PATHS.has(path)) {
      if (method !== "GET" && method !== "HEAD") return finish(problem(405, "method not allowed: use GET or HEAD", { Allow: "GET, HEAD" }));
      if (path === "/metrics") {
        if (!routes.metrics) return finish(problem(404, "not found: metrics are turned off (`metrics: false`)"));
        return finish(new Response(routes.metrics.render(routes.resolver.states()), { headers: { Server: SERVER, "Content-Type": "text/plain; version=0.0.4; charset=utf-8" } }));
      }
      if (path === "/-/ready" && !routes.ready()) return finish(problem(503, "not ready"));
      return finish(problem(200, "ok"));
    }
    const item = routes.resolver.item(path);
    if (!item) return finish(problem(404, "not found: no item is configured at this path"));
    itemPath = path;
    if (method === "OPTIONS") return finish(new Response(null, { status: 200, headers: { Allow: ALLOW, Server: SERVER } }));
    if (method !== "GET" && method !== "HEAD") return finish(problem(405, "method not allowed: use GET or HEAD", { Allow: ALLOW }));
    if (!item.disable_auth) {
      const auth = authenticate(request.headers.get("authorization"), path, routes.clients());
      scheme = auth.scheme;
      if (!auth.ok) {
        const extra: Record<string, string> = auth.status === 401 ? { "WWW-Authenticate": 'Bearer realm="cachish"' } : {};
        return finish(problem(auth.status, auth.message, extra));
      }
      client = auth.client.name;
    }
    // A hit within ttl is answered at once, without a promise: the hot path.
    outcome = routes.resolver.peek(path);
    if (outcome) return finish(answer(outcome, routes.clock.now(), method === "HEAD"));
    // Bun closes a connection idle for 10 s; this one waits on the upstream, for as long as
    // the item's timeout allows.
    server.timeout(request, 0);
    return routes.resolver.resolve(path).then((resolved) => {
      outcome = resolved;
      return finish(answer(resolved, routes.clock.now(), method === "HEAD"));
    });
  };
}

/**
 * Before listening on a unix socket: a socket file left by a crash is removed, unless a
 * process still answers on it; anything that is not a socket is left alone and refused.
 */
export async function clearStaleSocket(path: string): Promise<string | undefined> {
  if (!existsSync(path)) return undefined;
  if (!lstatSync(path).isSocket()) return `${path} exists and is not a socket; remove it or choose another \`listen\``;
  const alive = await Bun.connect({ unix: path, socket: { data() {}, open(socket) { socket.end(); } } }).then(
    () => true,
    () => false,
  );
  if (alive) return `another process is listening on ${path}`;
  unlinkSync(path);
  return undefined;
}

export function listen(address: Listen, routes: Routes): Server<unknown> {
  const fetch = handler(routes);
  const error = (error: Error) => {
    routes.log.error("internal error while answering", { cause: error.message });
    return problem(500, "internal error");
  };
  if (address.kind === "unix") {
    const server = Bun.serve({ unix: address.path, fetch, error });
    // Who may connect is decided by tokens, as on TCP, and by the socket's folder.
    chmodSync(address.path, 0o666);
    return server;
  }
  return Bun.serve({ hostname: address.host, port: address.port, fetch, error });
}
