/**
 * What refreshing an unchanged value costs its upstream (issue 17's target: no body after the
 * first). One dist/cachish, two items with `refresh: 1s` over the same value (~200 KB, shaped
 * like AWS's ip-ranges.json) that does not change while it runs: one from an upstream that
 * sends an ETag and answers 304 to a matching If-None-Match (RFC 9110 13.1), one from an
 * upstream that sends no validator, for comparison.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ipRanges } from "../../test/support/large";
import { conditional } from "../../test/support/upstream";
import { BINARY, freePort, launch } from "./servers";

/** What one upstream saw: its requests, those that asked with If-None-Match, its 304s, and the body bytes it sent after its first answer. */
export type UpstreamCost = { requests: number; conditional: number; notModified: number; bytesAfterFirst: number };

export async function revalidationCost(dir: string, seconds: number): Promise<{ valueBytes: number; etag: UpstreamCost; plain: UpstreamCost; counted: number }> {
  const value = ipRanges(200_000);
  const valueBytes = Buffer.byteLength(value);
  const cost = { etag: newCost(), plain: newCost() };
  const withEtag = conditional(() => ({ body: value, etag: '"ip-ranges-1700000000"' }));
  const upstream = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    fetch(request) {
      const sendsEtag = new URL(request.url).pathname === "/etag";
      const seen = sendsEtag ? cost.etag : cost.plain;
      const response = sendsEtag ? withEtag(request) : new Response(value, { headers: { "Content-Type": "application/json" } });
      seen.requests++;
      if (request.headers.has("if-none-match")) seen.conditional++;
      if (response.status === 304) seen.notModified++;
      else if (seen.requests > 1) seen.bytesAfterFirst += valueBytes;
      return response;
    },
  });
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const item = (path: string) => [`  ${path}:`, "    module: JsonHttp", "    disable_auth: true", "    refresh: 1s", `    parameters: {url: "http://127.0.0.1:${upstream.port}${path}"}`];
  writeFileSync(join(dir, "cachish.yml"), [`listen: 127.0.0.1:${port}`, "cache_dir: store", "items:", ...item("/etag"), ...item("/plain"), ""].join("\n"));
  const url = `http://127.0.0.1:${port}`;
  const daemon = await launch([BINARY, "serve", "--config", join(dir, "cachish.yml")], `${url}/-/ready`, "SIGTERM", Bun.file(join(dir, "log.txt")), `dist/cachish did not start; see ${dir}/log.txt`);
  await Bun.sleep(seconds * 1000);
  // The daemon's own count, beside the upstream's.
  const metrics = await (await fetch(`${url}/metrics`)).text();
  await daemon.stop();
  await upstream.stop(true);
  const counted = Number(/^cachish_upstream_not_modified_total\{item="\/etag"\} (\d+)$/m.exec(metrics)?.[1] ?? 0);
  return { valueBytes, ...cost, counted };
}

const newCost = (): UpstreamCost => ({ requests: 0, conditional: 0, notModified: 0, bytesAfterFirst: 0 });
