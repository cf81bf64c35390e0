/**
 * An item's value from an upstream's body: decoded, parsed, its `field`/`config_key` keys
 * picked, written as 1.x wrote it, and encoded. Each step is linear in the body's size, but a
 * body of megabytes still takes tens to hundreds of milliseconds of JavaScript (more on its
 * first run, before the JIT has compiled the parser). The daemon answers every client on one
 * thread, so this runs on a worker thread of its own (value-worker.ts): a large value never
 * holds up other clients, `/-/healthy` included (SPEC 5.3).
 */
import { ordinal } from "../error-text";
import { encodeJson, JsonSyntaxError, parseJson, pickKeys } from "../json";
import { resolvePointer, type Unresolved } from "../pointer";
import { type FailureKind, UpstreamFailure } from "./failure";

/**
 * The body as text, in the charset its `Content-Type` names (UTF-8 when it names none, or one
 * this runtime does not know); bytes not valid in it become U+FFFD, as 1.x (Python's requests)
 * read them (SPEC 5.3). Python's names are normalised as Python does; where the TextDecoder
 * (WHATWG's rules) reads a charset otherwise than Python, Python's reading is made here:
 * ISO-8859-1 is Latin-1, every byte its own code point (WHATWG: windows-1252); ASCII has no byte
 * above 0x7F (WHATWG: windows-1252); windows-1252 leaves five bytes undefined (WHATWG: C1 controls).
 */
function decode(body: Uint8Array, charset: string | undefined): string {
  const name = charset === undefined ? "utf_8" : pythonName(charset);
  const latin1 = () => Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("latin1");
  if (LATIN_1.has(name)) return latin1();
  if (ASCII.has(name)) return latin1().replace(/[\x80-\xff]/g, "\ufffd");
  if (CP1252.has(name)) return new TextDecoder("windows-1252").decode(body).replace(/[\x81\x8d\x8f\x90\x9d]/g, "\ufffd");
  try {
    return new TextDecoder(name.replace(/_/g, "-") as ConstructorParameters<typeof TextDecoder>[0]).decode(body);
  } catch {
    return new TextDecoder("utf-8").decode(body);
  }
}

/** A charset's name as Python's `encodings.normalize_encoding` makes it: lowercase, runs of other than letters, digits and `.` as one `_`. */
const pythonName = (charset: string) => charset.toLowerCase().replace(/[^a-z0-9.]+/g, "_").replace(/^_+|_+$/g, "");
// Python's aliases (encodings/aliases.py) of the three.
const LATIN_1 = new Set(["latin_1", "latin1", "latin", "l1", "iso8859_1", "iso_8859_1", "8859", "cp819", "ibm819", "iso_ir_100", "csisolatin1", "iso_8859_1_1987"]);
const ASCII = new Set(["ascii", "us_ascii", "us", "646", "ansi_x3.4_1968", "ansi_x3_4_1968", "ansi_x3.4_1986", "cp367", "csascii", "ibm367", "iso646_us", "iso_646.irv_1991", "iso_ir_6"]);
const CP1252 = new Set(["cp1252", "windows_1252"]);

/**
 * The value as bytes: the part of the answer `select` points at (all of it without one), then
 * its `keys`; or an UpstreamFailure (`invalid-json`, `missing-field`) saying why not.
 */
export function makeValue(body: Uint8Array, keys: readonly string[] | undefined, charset?: string, select?: string): Uint8Array {
  const text = decode(body, charset);
  let parsed;
  try {
    parsed = parseJson(text);
  } catch (error) {
    if (error instanceof JsonSyntaxError) throw new UpstreamFailure("invalid-json", `the answer is not JSON: ${error.message}`);
    throw error;
  }
  // Neither the pointer nor the keys are quoted: they are the configuration's text (SPEC 3), their place in it says which.
  if (select !== undefined) {
    const selected = resolvePointer(parsed, select);
    if (!selected.ok) {
      throw new UpstreamFailure("missing-field", `nothing in the answer is where \`select\` points: its ${ordinal(selected.step)} reference token ${UNRESOLVED[selected.within]}`);
    }
    parsed = selected.value;
  }
  if (keys) {
    const picked = pickKeys(parsed, keys);
    if (!picked.ok) {
      const which = picked.missing.map((key) => ordinal(keys.indexOf(key) + 1)).join(", ");
      const what = parsed.type === "object" ? `has no key named by the ${which} of \`field\`/\`config_key\`` : "is not an object";
      throw new UpstreamFailure("missing-field", `${select === undefined ? "the answer" : "the part of the answer `select` points at"} ${what}`);
    }
    parsed = picked.value;
  }
  return encodeJson(parsed);
}

/** Why a pointer stopped, by the type of the value it stopped in: never more of the answer than that. */
const UNRESOLVED: Record<Unresolved["within"], string> = {
  object: "names no member of an object",
  array: "names no element of an array (an index is `0` or digits without a leading zero; `-` is past the end)",
  string: "looks into a string, not an object or an array",
  number: "looks into a number, not an object or an array",
  literal: "looks into `true`, `false` or `null`, not an object or an array",
};

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
export function makeValueOffThread(body: Uint8Array, keys: readonly string[] | undefined, charset?: string, select?: string): Promise<Uint8Array> {
  const id = nextId++;
  const made = new Promise<Uint8Array>((resolve, reject) => pending.set(id, { resolve, reject }));
  const target = thread();
  target.ref();
  try {
    // A view of part of a buffer is copied first: handing over the buffer would take the rest too.
    const sent = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength ? body : body.slice();
    target.postMessage({ id, body: sent, keys, charset, select }, [sent.buffer as ArrayBuffer]);
  } catch (error) {
    pending.get(id)?.reject(error instanceof Error ? error : new Error(String(error)));
    pending.delete(id);
    if (pending.size === 0) target.unref();
  }
  return made;
}

/** Ends the worker thread (a test does, as a thread that dies would); values it was making fail, and a later one starts a new thread. */
export function stopValueThread(): void {
  if (worker) lost(worker, "the worker thread was stopped");
}
