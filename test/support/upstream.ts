/**
 * An upstream written for the tests: a real HTTP server on 127.0.0.1 whose answer for each
 * path the test sets, and which remembers every request that reached it.
 */
import type { Server } from "bun";

export type Seen = { method: string; path: string; headers: Record<string, string> };

/** What the upstream does for a path: answer, or hang until released, or drop the connection. */
export type Behaviour =
  | { status?: number; body: string | Uint8Array; headers?: Record<string, string>; delayMs?: number }
  | { hang: true }
  | ((request: Request) => Response | Promise<Response>);

export class Upstream {
  readonly seen: Seen[] = [];
  readonly #routes = new Map<string, Behaviour>();
  readonly #hanging = new Set<() => void>();
  readonly server: Server<unknown>;

  constructor() {
    this.server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      idleTimeout: 0,
      fetch: async (request) => {
        const url = new URL(request.url);
        this.seen.push({ method: request.method, path: url.pathname + url.search, headers: Object.fromEntries(request.headers) });
        const behaviour = this.#routes.get(url.pathname);
        if (!behaviour) return new Response("no such test route", { status: 404 });
        if (typeof behaviour === "function") return behaviour(request);
        if ("hang" in behaviour) {
          await new Promise<void>((resolve) => this.#hanging.add(resolve));
          return new Response("released", { status: 500 });
        }
        if (behaviour.delayMs) await Bun.sleep(behaviour.delayMs);
        return new Response(behaviour.body, { status: behaviour.status ?? 200, headers: { "Content-Type": "application/json", ...behaviour.headers } });
      },
    });
  }

  get url(): string {
    return `http://127.0.0.1:${this.server.port}`;
  }

  on(path: string, behaviour: Behaviour): this {
    this.#routes.set(path, behaviour);
    return this;
  }

  json(path: string, value: unknown): this {
    return this.on(path, { body: typeof value === "string" ? value : JSON.stringify(value) });
  }

  requests(path: string): Seen[] {
    return this.seen.filter((s) => s.path.split("?")[0] === path);
  }

  async close(): Promise<void> {
    for (const release of this.#hanging) release();
    await this.server.stop(true);
  }
}

/** A port on 127.0.0.1 where nothing listens: connections are refused. */
export async function closedPort(): Promise<number> {
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
  const port = server.port!;
  await server.stop(true);
  return port;
}

/** What a resource is now: its body and the validators it sends (`on304`: the headers of its 304s, when not those). */
export type Resource = { body: string; etag?: string; lastModified?: string; on304?: Record<string, string> };

/**
 * A resource that answers conditional requests as RFC 9110 13.1 says: 304 without a body when
 * If-None-Match names its ETag (weak comparison) or, without If-None-Match, when it was not
 * modified after If-Modified-Since; else 200 with its body and validators.
 */
export function conditional(now: () => Resource): (request: Request) => Response {
  return (request) => {
    const { body, etag, lastModified, on304 } = now();
    const headers: Record<string, string> = { "Content-Type": "application/json", ...(etag ? { ETag: etag } : {}), ...(lastModified ? { "Last-Modified": lastModified } : {}) };
    const weak = (tag: string) => tag.trim().replace(/^W\//, "");
    const tags = request.headers.get("if-none-match");
    const since = request.headers.get("if-modified-since");
    const unchanged =
      tags !== null ? etag !== undefined && tags.split(",").some((tag) => weak(tag) === weak(etag)) : since !== null && lastModified !== undefined && Date.parse(lastModified) <= Date.parse(since);
    return unchanged ? new Response(null, { status: 304, headers: on304 ?? headers }) : new Response(body, { headers });
  };
}
