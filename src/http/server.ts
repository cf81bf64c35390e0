/**
 * The daemon's HTTP side on Bun.serve: route (404/405), auth (401/400/403), resolve, answer,
 * and one canonical log line per request (SPEC 5.1, 5.2, 5.5, 5.6).
 */
import { chmodSync, existsSync, lstatSync, unlinkSync } from "node:fs";
import type { Server } from "bun";
import type { Client, Item, Listen } from "../config/types";
import { type Logger, Preset } from "../log";
import type { Cell, Metrics } from "../metrics";
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

/**
 * The path of a request target, percent-decoded as 1.x (Werkzeug) matched it; the query is
 * ignored, and runs of `/` count as one (SPEC 5.1: 1.x served `//database-url`, a base URL ending
 * in `/` joined with a path, and redirected `/a//b` to `/a/b`).
 */
function pathOf(url: string): string | undefined {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return "/";
  const query = url.indexOf("?", start);
  const raw = query < 0 ? url.slice(start) : url.slice(start, query);
  try {
    // Decoded first, then collapsed: `/%2F/value` is `/value` too.
    return (raw.includes("%") ? decodeURIComponent(raw) : raw).replace(/\/{2,}/g, "/");
  } catch {
    return undefined;
  }
}

const shown = (path: string) => (path.length > 200 ? `${path.slice(0, 200)}...` : path);

/** Tenths of a millisecond, as the log writes them: 0.1, 2, 13.5. */
const durationOf = (started: number) => Math.round((performance.now() - started) * 10) / 10;

/**
 * What requests for an item that were answered alike have in common: their log fields,
 * rendered once, and their metrics counter. Kept per item, so a reload starts afresh.
 */
type Shape = { preset: Preset; cell: Cell | undefined };
type ByClient = Record<Scheme, Map<string, Shape>>;
/** GET answers from memory (hits, and stale values by failure kind) are found without building a key. */
type Shapes = { hits: ByClient; stale: Map<string, ByClient>; others: Map<string, Shape> };
const byClient = (): ByClient => ({ bearer: new Map(), basic: new Map(), none: new Map() });
/** Methods are the client's to choose: beyond this many kinds of answer for one item, lines are rendered each time. */
const MAX_SHAPES = 64;

type Handler = (request: Request, server: Server<unknown>) => Response | Promise<Response>;

export function handler(routes: Routes) {
  const shapesOf = new WeakMap<Item, Shapes>();

  /** The metrics and the log line of a request for an item; most of them are hits, answered alike. */
  const itemDone = (response: Response, started: number, method: string, item: Item, client: string, scheme: Scheme, outcome: Outcome | undefined): Response => {
    const metrics = routes.metrics;
    const logging = routes.log.enabled("info");
    if (!metrics && !logging) return response;
    const status = response.status;
    const kind = outcome ? outcome.kind : "none";
    const collapsed = outcome !== undefined && outcome.kind !== "hit" && outcome.collapsed ? true : undefined;
    const failure = outcome && (outcome.kind === "stale" || outcome.kind === "unavailable") ? outcome.detail : undefined;
    let shapes = shapesOf.get(item);
    if (!shapes) shapesOf.set(item, (shapes = { hits: byClient(), stale: new Map(), others: new Map() }));
    let shapeMap: Map<string, Shape>;
    let key = client;
    if (method === "GET" && kind === "hit") {
      shapeMap = shapes.hits[scheme];
    } else if (method === "GET" && kind === "stale" && !collapsed && failure !== undefined) {
      let byFailure = shapes.stale.get(failure);
      if (!byFailure) shapes.stale.set(failure, (byFailure = byClient()));
      shapeMap = byFailure[scheme];
    } else {
      shapeMap = shapes.others;
      key = `${method} ${status} ${kind} ${scheme} ${client} ${collapsed} ${failure}`;
    }
    let shape = shapeMap.get(key);
    if (!shape) {
      // The log says `-` where no value was asked for; the metrics label says `none`.
      shape = { preset: new Preset({ method, path: shown(item.path), status, client, auth: scheme, cache: outcome ? kind : "-", collapsed, failure }), cell: undefined };
      if (shapeMap.size < MAX_SHAPES) shapeMap.set(key, shape);
    }
    if (metrics) (shape.cell ??= metrics.requestCell(item.path, status, kind)).value++;
    if (logging) {
      const upstream = outcome && outcome.kind !== "hit" ? outcome.upstreamMs : undefined;
      routes.log.request(shape.preset, durationOf(started), upstream);
    }
    return response;
  };

  /** The log line of a request for no item (the daemon's own paths, 404, 400). */
  const done = (response: Response, started: number, method: string, path: string | undefined): Response => {
    if (!routes.log.enabled("info")) return response;
    routes.log.info("request", {
      method,
      path: path === undefined ? "(undecodable)" : shown(path),
      status: response.status,
      client: "-",
      auth: "none",
      cache: "-",
      duration_ms: durationOf(started),
    });
    return response;
  };

  /** A request for `path` (already decoded); `pathOf(request.url)` when Bun's router did not match it. */
  const answerAt = (request: Request, server: Server<unknown>, started: number, path: string | undefined): Response | Promise<Response> => {
    const method = request.method;
    if (path === undefined) return done(problem(400, "bad request: the path is not valid percent-encoding"), started, method, path);
    const item = routes.resolver.item(path);
    if (!item) {
      if (!OWN_PATHS.has(path)) return done(problem(404, "not found: no item is configured at this path"), started, method, path);
      if (method !== "GET" && method !== "HEAD") return done(problem(405, "method not allowed: use GET or HEAD", { Allow: "GET, HEAD" }), started, method, path);
      if (path === "/metrics") {
        if (!routes.metrics) return done(problem(404, "not found: metrics are turned off (`metrics: false`)"), started, method, path);
        return done(new Response(routes.metrics.render(routes.resolver.states()), { headers: { Server: SERVER, "Content-Type": "text/plain; version=0.0.4; charset=utf-8" } }), started, method, path);
      }
      if (path === "/-/ready" && !routes.ready()) return done(problem(503, "not ready"), started, method, path);
      return done(problem(200, "ok"), started, method, path);
    }
    if (method === "OPTIONS") return itemDone(new Response(null, { status: 200, headers: { Allow: ALLOW, Server: SERVER } }), started, method, item, "-", "none", undefined);
    if (method !== "GET" && method !== "HEAD") return itemDone(problem(405, "method not allowed: use GET or HEAD", { Allow: ALLOW }), started, method, item, "-", "none", undefined);
    let client = "-";
    let scheme: Scheme = "none";
    if (!item.disable_auth) {
      const auth = authenticate(request.headers.get("authorization"), path, routes.clients());
      scheme = auth.scheme;
      if (!auth.ok) {
        const extra: Record<string, string> = auth.status === 401 ? { "WWW-Authenticate": 'Bearer realm="cachish"' } : {};
        return itemDone(problem(auth.status, auth.message, extra), started, method, item, client, scheme, undefined);
      }
      client = auth.client.name;
    }
    // A hit within ttl is answered at once, without a promise: the hot path.
    const hit = routes.resolver.peek(path);
    if (hit) return itemDone(answer(hit, routes.clock.now(), method === "HEAD"), started, method, item, client, scheme, hit);
    // Bun closes a connection idle for 10 s; this one waits on the upstream, for as long as
    // the item's timeout allows.
    server.timeout(request, 0);
    return routes.resolver.resolve(path).then((outcome) => itemDone(answer(outcome, routes.clock.now(), method === "HEAD"), started, method, item, client, scheme, outcome));
  };

  return {
    fetch: (request: Request, server: Server<unknown>) => answerAt(request, server, performance.now(), pathOf(request.url)),
    /**
     * Bun's router matches a request whose raw path is exactly an item's (a query string
     * aside) without building its URL: one route per item whose path it reads literally.
     * Every other request (percent-encoded, dot segments, a path with `:` or `*`) goes to
     * `fetch`, which decodes it and finds the same item.
     */
    routes(): Record<string, Handler> {
      const table: Record<string, Handler> = {};
      for (const path of routes.resolver.paths()) {
        if (ROUTABLE.test(path)) table[path] = (request, server) => answerAt(request, server, performance.now(), path);
      }
      return table;
    },
  };
}

/** Paths Bun's router takes literally: no parameters (`:`), wildcards (`*`), escapes, empty or dot segments, or trailing slash. */
const ROUTABLE = /^(?:\/(?!\.{1,2}(?:\/|$))[A-Za-z0-9._~-]+)+$/;

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

export type Listener = {
  server: Server<unknown>;
  /** After a reload changed the items: routes for the new set. */
  reroute(): void;
};

export function listen(address: Listen, routes: Routes): Listener {
  const http = handler(routes);
  const error = (error: Error) => {
    routes.log.error("internal error while answering", { cause: error.message });
    return problem(500, "internal error");
  };
  // Routes are made from the items of the moment: again at each reload.
  const options = () => ({ fetch: http.fetch, routes: http.routes(), error });
  let server: Server<unknown>;
  if (address.kind === "unix") {
    server = Bun.serve({ unix: address.path, ...options() });
    // Who may connect is decided by tokens, as on TCP, and by the socket's folder.
    chmodSync(address.path, 0o666);
  } else {
    server = Bun.serve({ hostname: address.host, port: address.port, ...options() });
  }
  return { server, reroute: () => server.reload(options()) };
}
