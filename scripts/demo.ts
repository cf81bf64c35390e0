/**
 * `npm start`: the daemon on the demo configuration (examples/cachish.yml), with a small demo
 * upstream on 127.0.0.1:2470 standing in for Heroku, an IP-ranges JSON and a Hawk API, so that
 * every item answers on a machine without network access. Stop it with Ctrl-C; stop the demo
 * upstream alone (press u then Enter) to watch cachish answer from its store.
 */
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..");
const HEROKU_TOKEN = "not-a-real-heroku-token";

let upstreamUp = true;
const upstream = Bun.serve({
  hostname: "127.0.0.1",
  port: 2470,
  fetch(request) {
    if (!upstreamUp) return new Response("demo upstream is down", { status: 503 });
    const { pathname } = new URL(request.url);
    if (pathname === "/heroku/apps/my-heroku-app/config-vars") {
      if (request.headers.get("authorization") !== `Bearer ${HEROKU_TOKEN}`) return new Response("unauthorized", { status: 401 });
      return Response.json({ DATABASE_URL: `postgres://demo:demo@127.0.0.1:5432/demo?fetched=${new Date().toISOString()}`, SECRET_KEY: "never-handed-out" });
    }
    if (pathname === "/ip-ranges.json") return Response.json({ syncToken: String(Date.now()), prefixes: [{ ip_prefix: "192.0.2.0/24" }, { ip_prefix: "198.51.100.0/24" }] });
    if (pathname === "/partner/settings") {
      if (!request.headers.get("authorization")?.startsWith("Hawk ")) return new Response("unauthorized", { status: 401 });
      return Response.json({ theme: "dark", limits: { requests: 100 } });
    }
    return new Response("not found", { status: 404 });
  },
});

const daemon = Bun.spawn([join(ROOT, "dist/cachish"), "serve", "--config", join(ROOT, "examples/cachish.yml")], { stdio: ["ignore", "inherit", "inherit"] });

console.error(`
demo upstream on ${upstream.url.origin}; cachish on http://127.0.0.1:2469. Try:

  curl -i http://127.0.0.1:2469/ip-ranges
  curl -i -H 'Authorization: Bearer demo-web-token' http://127.0.0.1:2469/database-url
  curl -i -u demo-worker-token: http://127.0.0.1:2469/partner-settings

Type u and Enter to take the demo upstream down (or up again); Ctrl-C stops everything.
`);

process.on("SIGINT", () => daemon.kill("SIGINT"));
process.on("SIGTERM", () => daemon.kill("SIGTERM"));
(async () => {
  for await (const line of console) {
    if (line.trim() === "u") {
      upstreamUp = !upstreamUp;
      console.error(`demo upstream is ${upstreamUp ? "up" : "down"}`);
    }
  }
})();

const code = await daemon.exited;
await upstream.stop(true);
process.exit(code);
