/**
 * The bare server of `npm run bench -- --vs floor`: a compiled `Bun.serve` that answers every
 * request with one fixed answer and does nothing else, the ceiling of what the runtime does on
 * this machine. The bench gives it the body and headers of a cachish hit, so that the two send
 * the same bytes:  floor PORT '{"body": "...", "headers": {"Content-Type": "application/json", ...}}'
 */
const [port, answer] = process.argv.slice(2);
const { body, headers } = JSON.parse(answer!) as { body: string; headers: Record<string, string> };
Bun.serve({ hostname: "127.0.0.1", port: Number(port), fetch: () => new Response(body, { headers }) });
