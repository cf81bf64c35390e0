/**
 * The worker thread that makes values from upstream bodies (value.ts says why). One message
 * in, one out: the value's bytes handed back without a copy, or the failure as plain data.
 */
import { asFailure } from "./failure";
import { type Made, makeValue } from "./value";

declare const self: Worker;

/** A body this large leaves garbage worth collecting at once (SPEC 5.3: a few times its size at most). */
const COLLECT_AFTER = 1024 * 1024;

self.onmessage = (event: MessageEvent<{ id: number; body: Uint8Array | null; keys: readonly string[] | undefined; charset: string | undefined; select: string | undefined }>) => {
  const message = event.data;
  const large = message.body!.byteLength > COLLECT_AFTER;
  let made: Made;
  try {
    made = { id: message.id, value: makeValue(message.body!, message.keys, message.charset, message.select) };
  } catch (error) {
    const failure = asFailure(error);
    made = { id: message.id, failure: { kind: failure.kind, message: failure.message } };
  }
  // The body and its text are garbage now: collected before the value goes to the store, whose
  // write holds a copy of its own, so that the two do not add up.
  message.body = null;
  if (large) Bun.gc(true);
  self.postMessage(made, "value" in made ? [made.value.buffer as ArrayBuffer] : []);
};
