/**
 * An item's value from an upstream's body: decoded, parsed, its `field`/`config_key` keys
 * picked, written as 1.x wrote it, and encoded. Each step is linear in the body's size, but a
 * body of megabytes still takes tens to hundreds of milliseconds of JavaScript (more on its
 * first run, before the JIT has compiled the parser). The daemon answers every client on one
 * thread, so this runs on a worker thread of its own (value-worker.ts): a large value never
 * holds up other clients, `/-/healthy` included (SPEC 5.3).
 */
import { encodeJson, JsonSyntaxError, parseJson, pickKeys } from "../json";
import { type FailureKind, UpstreamFailure } from "./failure";

/**
 * The body as text, in the charset its `Content-Type` names (UTF-8 when it names none, or one
 * this runtime does not know); bytes not valid in it become U+FFFD, as 1.x (Python's requests)
 * read them (SPEC 5.3). ISO-8859-1 is Python's Latin-1, every byte its own code point: the
 * TextDecoder's label for it means windows-1252, which differs in 0x80-0x9F.
 */
function decode(body: Uint8Array, charset: string | undefined): string {
  const label = charset?.trim().toLowerCase();
  if (label && LATIN_1.has(label)) return Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("latin1");
  try {
    return new TextDecoder((label ?? "utf-8") as ConstructorParameters<typeof TextDecoder>[0]).decode(body);
  } catch {
    return new TextDecoder("utf-8").decode(body);
  }
}
const LATIN_1 = new Set(["iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1", "iso_8859-1", "8859", "cp819", "ibm819"]);

/** The value as bytes, or an UpstreamFailure (`invalid-json`, `missing-field`) saying why not. */
export function makeValue(body: Uint8Array, keys: readonly string[] | undefined, charset?: string): Uint8Array {
  const text = decode(body, charset);
  let parsed;
  try {
    parsed = parseJson(text);
  } catch (error) {
    if (error instanceof JsonSyntaxError) throw new UpstreamFailure("invalid-json", `the answer is not JSON: ${error.message}`);
    throw error;
  }
  if (keys) {
    const picked = pickKeys(parsed, keys);
    if (!picked.ok) {
      // The keys are not quoted: they are the configuration's text (SPEC 3), their place in it says which.
      const which = picked.missing.map((key) => ordinal(keys.indexOf(key) + 1)).join(", ");
      const what = parsed.type === "object" ? `has no key named by the ${which} of \`field\`/\`config_key\`` : "is not an object";
      throw new UpstreamFailure("missing-field", `the answer ${what}`);
    }
    parsed = picked.value;
  }
  return encodeJson(parsed);
}

/** 1st, 2nd, 3rd, 4th, ... 11th, 12th, 13th, 21st. */
function ordinal(n: number): string {
  const teen = n % 100 >= 11 && n % 100 <= 13;
  return `${n}${teen ? "th" : ({ 1: "st", 2: "nd", 3: "rd" } as Record<number, string>)[n % 10] ?? "th"}`;
}

/** What the worker answers: the value, or the failure as plain data (an Error does not cross threads as itself). */
export type Made = { id: number; value: Uint8Array } | { id: number; failure: { kind: FailureKind; message: string } };

/**
 * The worker's file: beside this one when run from source (the tests), and where the build puts
 * it in the binary (scripts/build.ts bundles it as a second entrypoint, under its path from src/).
 * Never a path relative to the working folder: Bun would load such a file from disk.
 */
const WORKER = import.meta.url.startsWith("file:///$bunfs/") ? "/$bunfs/root/backends/value-worker.ts" : new URL("./value-worker.ts", import.meta.url).href;

let worker: Worker | undefined;
let nextId = 0;
const pending = new Map<number, { resolve(value: Uint8Array): void; reject(error: Error): void }>();

/** Every value the worker was making fails, and the next one starts a new worker. */
function lost(gone: Worker, why: string): void {
  if (worker !== gone) return;
  worker = undefined;
  for (const waiting of pending.values()) waiting.reject(new UpstreamFailure("internal", `the value could not be made: ${why}`));
  pending.clear();
  gone.terminate();
}

function thread(): Worker {
  if (worker) return worker;
  const started = new Worker(WORKER);
  started.onmessage = (event: MessageEvent<Made>) => {
    const made = event.data;
    const waiting = pending.get(made.id);
    pending.delete(made.id);
    // Referenced only while a value is being made: a command (`get --config`) still exits.
    if (pending.size === 0) started.unref();
    if ("value" in made) waiting?.resolve(made.value);
    else waiting?.reject(new UpstreamFailure(made.failure.kind, made.failure.message));
  };
  // A bug of ours in the worker, or a worker that ended (out of memory, terminated): Bun tells
  // the first with `error`, the second only with `close`.
  started.onerror = (event) => lost(started, event.message);
  started.addEventListener("close", () => lost(started, "the worker thread ended"));
  worker = started;
  return started;
}

/** makeValue on the worker thread; the body is handed over, not copied (it is unusable here afterwards). */
export function makeValueOffThread(body: Uint8Array, keys: readonly string[] | undefined, charset?: string): Promise<Uint8Array> {
  const id = nextId++;
  const made = new Promise<Uint8Array>((resolve, reject) => pending.set(id, { resolve, reject }));
  const target = thread();
  target.ref();
  try {
    // A view of part of a buffer is copied first: handing over the buffer would take the rest too.
    const sent = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength ? body : body.slice();
    target.postMessage({ id, body: sent, keys, charset }, [sent.buffer as ArrayBuffer]);
  } catch (error) {
    pending.get(id)?.reject(error instanceof Error ? error : new Error(String(error)));
    pending.delete(id);
    if (pending.size === 0) target.unref();
  }
  return made;
}

/** Ends the worker thread (at stop, or in a test); values it was making fail, and a later one starts a new thread. */
export function stopValueThread(): void {
  if (worker) lost(worker, "the worker thread was stopped");
}
