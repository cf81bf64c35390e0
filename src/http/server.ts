/**
 * The daemon's HTTP side on Bun.serve: route (404/405), auth (401/400/403), resolve, answer
 * (a 304 for a client that holds the value, a wait for one that asks to wait for a change),
 * and one canonical log line per request (SPEC 5.1, 5.2, 5.5, 5.6, 5.8).
 */
import { chmodSync, existsSync, lstatSync, unlinkSync } from "node:fs";
import type { Server } from "bun";
import type { Client, Item, Listen } from "../config/types";
import type { Logger } from "../log";
import type { Metrics } from "../metrics";
import type { Clock, Outcome, Resolver } from "../resolver";
import { ALLOW, answer, etagOf, notModified, problem, SERVER } from "./answer";
import { authenticate, type Scheme } from "./auth";
import { ifNoneMatch, preferredWait } from "./conditions";
import type { Watch } from "./watch";

export type Routes = {
  resolver: Pick<Resolver, "item" | "peek" | "resolve" | "states">;
  clients: () => readonly Client[];
  log: Logger;
  clock: Pick<Clock, "now">;
  /** False until the store is open and the configuration loaded, and again while stopping. */
  ready: () => boolean;
  /** Served at /metrics when present; /metrics is a 404 otherwise (`metrics: false`). */
  metrics?: Metrics;
  /** Where long polls wait for a change (SPEC 5.8). */
  watch: Pick<Watch, "wait" | "current" | "releases">;
};

/** What the handler needs of Bun's server: to lift the idle timeout of a request that waits on the upstream or for a change. */
type Connections = Pick<Server<unknown>, "timeout">;

type Handler = (request: Request, server: Connections) => Response | Promise<Response>;

/**
 * The path a request names (SPEC 5.1), or undefined when it is not valid percent-encoding.
 * Bun's `request.url` is absolute and already a WHATWG URL (dot segments resolved): its path
 * runs from the first `/` after the host to a `?` or `#`. It is percent-decoded, then runs of
 * `/` count as one (1.x served `//database-url`, and redirected `/a//b` to `/a/b`), so
 * `/%2F/value` is `/value` too.
 */
export function pathOf(url: string): string | undefined {
  const path = url.slice(url.indexOf("/", url.indexOf("//") + 2));
  const end = path.search(/[?#]/);
  const raw = end < 0 ? path : path.slice(0, end);
  try {
    return decodeURIComponent(raw).replace(/\/{2,}/g, "/");
  } catch {
    return undefined;
  }
}

/** A path as the log shows it: a client may send a long one. */
const shown = (path: string) => (path.length > 200 ? `${path.slice(0, 200)}...` : path);

/**
 * The status a request is logged and counted with when its client left while it waited for a
 * change (nginx's "client closed request"): nothing is sent.
 */
const GONE = 499;

/**
 * What the client says it holds (If-None-Match), how long it would wait for a change (Prefer:
 * wait), and the watch's count of releases when it was let in (a reload answers it at once).
 */
type Conditions = { matches: ((etag: string) => boolean) | undefined; wait: number; since: number };

/** Who asked for what, as the request's log line names it. */
type Asked = { started: number; method: string; path: string; item?: Item; client: string; auth: Scheme };

export function handler(routes: Routes): Handler {
  /** The request's log line and, for an item, its count in the metrics (SPEC 5.5, 5.6). */
  const done = (asked: Asked, response: Response, outcome?: Outcome): Response => {
    const status = response.status;
    if (asked.item) routes.metrics?.requested(asked.item.path, status, outcome?.kind ?? "none");
    routes.log.info("request", {
      method: asked.method,
      path: asked.path,
      status,
      client: asked.client,
      auth: asked.auth,
      // The log says `-` where no value was asked for; the metrics label says `none`.
      cache: outcome?.kind ?? "-",
      collapsed: outcome && outcome.kind !== "hit" && outcome.collapsed ? true : undefined,
      failure: outcome?.kind === "stale" || outcome?.kind === "unavailable" ? outcome.detail : undefined,
      upstream_ms: outcome?.kind === "hit" ? undefined : outcome?.upstreamMs,
      // Tenths of a millisecond: finer than a request's cost, no noise of float digits in the log.
      duration_ms: Math.round((performance.now() - asked.started) * 10) / 10,
    });
    return response;
  };

  /** The daemon's own paths (SPEC 5.5), reached when no item has the path. */
  const ownPath = (method: string, path: string): Response => {
    if (path !== "/-/healthy" && path !== "/-/ready" && path !== "/metrics") return problem(404, "not found: no item is configured at this path");
    if (method !== "GET" && method !== "HEAD") return problem(405, "method not allowed: use GET or HEAD", { Allow: "GET, HEAD" });
    if (path === "/metrics") {
      if (!routes.metrics) return problem(404, "not found: metrics are turned off (`metrics: false`)");
      return new Response(routes.metrics.render(routes.resolver.states()), { headers: { Server: SERVER, "Content-Type": "text/plain; version=0.0.4; charset=utf-8" } });
    }
    if (path === "/-/ready" && !routes.ready()) return problem(503, "not ready");
    return problem(200, "ok");
  };

  /**
   * The answer to a GET or HEAD whose value is resolved (SPEC 5.8): the value, or 304 when
   * If-None-Match matches it; with `Prefer: wait=N` as well, the request waits until the value
   * no longer matches (200) or N seconds pass (304). A 503 is answered at once.
   */
  const reply = (request: Request, server: Connections, asked: Asked, item: Item, conditions: Conditions, outcome: Outcome): Response | Promise<Response> => {
    const head = asked.method === "HEAD";
    if (outcome.kind === "unavailable" || !conditions.matches?.(etagOf(outcome.sha256))) return done(asked, answer(outcome, routes.clock.now(), head), outcome);
    if (conditions.wait === 0) return done(asked, notModified(outcome, routes.clock.now()), outcome);
    // A long poll outlives Bun's 10 s idle timeout.
    server.timeout(request, 0);
    const applied = { "Preference-Applied": `wait=${conditions.wait}` };
    return routes.watch.wait(item.path, outcome, conditions.matches, conditions.wait * 1000, conditions.since, request.signal).then((ended) => {
      if (ended.kind === "gone") return done(asked, new Response(null, { status: GONE }), outcome);
      const now = routes.clock.now();
      return done(asked, ended.kind === "changed" ? answer(ended.outcome, now, head, applied) : notModified(ended.outcome, now, applied), ended.outcome);
    });
  };

  /** SPEC 5.1 in its order: 404 (before any auth), OPTIONS and 405, auth, then the value. */
  return (request, server) => {
    const started = performance.now();
    const method = request.method;
    const path = pathOf(request.url);
    if (path === undefined) {
      const asked = { started, method, path: "(undecodable)", client: "-", auth: "none" } as const;
      return done(asked, problem(400, "bad request: the path is not valid percent-encoding"));
    }
    const item = routes.resolver.item(path);
    const asked: Asked = { started, method, path: shown(path), item, client: "-", auth: "none" };
    if (!item) return done(asked, ownPath(method, path));
    if (method === "OPTIONS") return done(asked, new Response(null, { status: 200, headers: { Allow: ALLOW, Server: SERVER } }));
    if (method !== "GET" && method !== "HEAD") return done(asked, problem(405, "method not allowed: use GET or HEAD", { Allow: ALLOW }));
    if (!item.disable_auth) {
      const auth = authenticate(request.headers.get("authorization"), path, routes.clients());
      asked.auth = auth.scheme;
      if (!auth.ok) return done(asked, problem(auth.status, auth.message, auth.status === 401 ? { "WWW-Authenticate": 'Bearer realm="cachish"' } : {}));
      asked.client = auth.client.name;
    }
    const conditions: Conditions = { matches: ifNoneMatch(request.headers.get("if-none-match")), wait: preferredWait(request.headers.get("prefer")), since: routes.watch.releases };
    // A long poll for the value held here waits without a fetch: the watch refreshes the item
    // (at once if it is older than the interval), so thousands of clients asking again and
    // again cost one fetch per interval, not one each. Before peek(), which starts a fetch
    // behind a stale answer (`stale_after: 0s`, a retry after a backoff window).
    if (conditions.matches && conditions.wait > 0) {
      const current = routes.watch.current(path);
      if (current && conditions.matches(etagOf(current.sha256))) return reply(request, server, asked, item, conditions, current);
    }
    // What needs no fetch (a hit, a stale value, a 503 in a backoff window) is answered from memory at once, without a promise: most requests are these.
    const hit = routes.resolver.peek(path);
    if (hit) return reply(request, server, asked, item, conditions, hit);
    // Bun closes a connection idle for 10 s; this one waits on the upstream, for as long as
    // the item's timeout allows.
    server.timeout(request, 0);
    return routes.resolver.resolve(path).then((outcome) => reply(request, server, asked, item, conditions, outcome));
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

export type Listener = { server: Server<unknown> };

export function listen(address: Listen, routes: Routes): Listener {
  const fetch = handler(routes);
  const error = (error: Error) => {
    routes.log.error("internal error while answering", { cause: error.message });
    return problem(500, "internal error");
  };
  if (address.kind === "tcp") return { server: Bun.serve({ hostname: address.host, port: address.port, fetch, error }) };
  const server = Bun.serve({ unix: address.path, fetch, error });
  // Who may connect is decided by tokens, as on TCP, and by the socket's folder.
  chmodSync(address.path, 0o666);
  return { server };
}
