/**
 * Log lines on standard output, logfmt or JSON. Fields are primitives only, so a Secret (or
 * any object that might hold a value) cannot be handed to a log line by mistake: the type
 * checker refuses it. Callers log item paths, client names, kinds and durations, never a
 * token, a parameter or a value.
 *
 * One line per request is written at tens of thousands of requests a second, so lines are
 * gathered and written together at most 50 ms later, and the time stamp is formatted once
 * per millisecond.
 */
import { LogQueue, stdoutSink } from "./stdout";

export type Level = "debug" | "info" | "warn" | "error";
export type Format = "logfmt" | "json";
export type Fields = Record<string, string | number | boolean | null | undefined>;

/** Bytes gathered before a write. */
const FLUSH_AT = 65_536;

/** Bytes of lines that may wait for a stalled reader of standard output (SPEC 5.6: a few MiB); later lines are dropped and counted. */
export const LOG_QUEUE_BYTES = 4 * 1024 * 1024;

const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type Logger = {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  /**
   * The canonical line of a request (SPEC 5.6), at level info: `preset` holds what it shares
   * with other requests answered alike, then the times of this one. One is written per request,
   * so it is built without a field list.
   */
  request(preset: Preset, durationMs: number, upstreamMs: number | undefined): void;
  /** Whether a line of this level would be written (to skip building its fields). */
  enabled(level: Level): boolean;
  /** Changes format and level in place (a reload does this). */
  configure(settings: { format: Format; level: Level }): void;
  /** Writes what is gathered now, and the notice of lines dropped if any (before the process exits). */
  flush(): void;
  /** Lines dropped because the reader of standard output was behind (SPEC 5.6): always 0 for a logger given `write`. */
  dropped(): number;
};

const PLAIN = /^[\x21-\x7e]+$/;
const NEEDS_QUOTES = /["=\\]/;

/**
 * Durations in tenths of a millisecond repeat endlessly, so what is made of one is kept: its
 * index among 0 to 999.9, or -1 for a number that is not kept.
 */
function tenthsIndex(value: number): number {
  const tenths = Math.round(value * 10);
  return tenths >= 0 && tenths < 10_000 && tenths / 10 === value ? tenths : -1;
}

const TENTHS: string[] = [];

function numberText(value: number): string {
  const index = tenthsIndex(value);
  return index < 0 ? String(value) : (TENTHS[index] ??= String(value));
}

const encoder = new TextEncoder();
const NOTHING = new Uint8Array(0);

/** The end of a request line, ` duration_ms=0.4` and its newline, kept per format. */
const ENDS: Record<Format, Uint8Array[]> = { logfmt: [], json: [] };

function durationEnd(format: Format, ms: number): Uint8Array {
  const bytes = () => encoder.encode(`${fieldsText(format, { duration_ms: ms })}${format === "json" ? "}" : ""}\n`);
  const index = tenthsIndex(ms);
  return index < 0 ? bytes() : (ENDS[format][index] ??= bytes());
}

function logfmtValue(value: string | number | boolean | null): string {
  if (typeof value === "number") return numberText(value);
  const text = String(value);
  return text !== "" && PLAIN.test(text) && !NEEDS_QUOTES.test(text) ? text : JSON.stringify(text);
}

function jsonValue(value: string | number | boolean | null): string {
  return typeof value === "number" && Number.isFinite(value) ? numberText(value) : JSON.stringify(value);
}

/** The time stamp is formatted once per millisecond, and the start of a line once per millisecond, level and message. */
let stampMs = -1;
let stampText = "";
function stamp(ms: number): string {
  if (ms !== stampMs) {
    stampMs = ms;
    stampText = new Date(ms).toISOString();
  }
  return stampText;
}

let headFormat: Format | undefined;
let headMs = -1;
let headLevel: Level | undefined;
let headMsg = "";
let headText = "";
function head(format: Format, ms: number, level: Level, msg: string): string {
  if (ms !== headMs || msg !== headMsg || level !== headLevel || format !== headFormat) {
    headFormat = format;
    headMs = ms;
    headLevel = level;
    headMsg = msg;
    headText = format === "json" ? `{"time":"${stamp(ms)}","level":"${level}","msg":${JSON.stringify(msg)}` : `time=${stamp(ms)} level=${level} msg=${logfmtValue(msg)}`;
  }
  return headText;
}

/**
 * Fields that repeat from line to line (a request's method, item, client, outcome), rendered
 * once per format and then copied into each line: a request line is written for every request.
 */
export class Preset {
  #format: Format | undefined;
  #bytes = new Uint8Array(0);
  constructor(readonly fields: Fields) {}
  bytes(format: Format): Uint8Array {
    if (format !== this.#format) {
      this.#format = format;
      this.#bytes = encoder.encode(fieldsText(format, this.fields));
    }
    return this.#bytes;
  }
}

/** The fields of a line, each with its leading separator (` key=value` or `,"key":value`). */
function fieldsText(format: Format, fields: Fields): string {
  let text = "";
  for (const key in fields) {
    const value = fields[key];
    if (value === undefined) continue;
    text += format === "json" ? `,${JSON.stringify(key)}:${jsonValue(value)}` : ` ${key}=${logfmtValue(value)}`;
  }
  return text;
}

function formatLine(format: Format, ms: number, level: Level, msg: string, fields: Fields): string {
  const line = head(format, ms, level, msg) + fieldsText(format, fields);
  return format === "json" ? `${line}}` : line;
}

/**
 * `write`: where batches go, as text (tests, `cachish get`); without it, standard output, as
 * bytes, through a LogQueue of LOG_QUEUE_BYTES. Lines are gathered as bytes in one reused
 * buffer: a request line is copied from kept parts (the time stamp, its Preset, the duration's
 * end), so it costs no string of its own and a batch needs no joining or encoding before its
 * write.
 */
export function createLogger(settings: { format: Format; level: Level }, write?: (text: string) => void): Logger {
  let { format, level } = settings;
  let rank = RANK[level];
  const decoder = new TextDecoder();
  const queue = write ? undefined : new LogQueue(stdoutSink(), LOG_QUEUE_BYTES, (lines) => `${formatLine(format, Date.now(), "warn", "log lines dropped", { lines })}\n`);
  const out: (bytes: Uint8Array) => void = queue ? (bytes) => queue.write(bytes) : (bytes) => write!(decoder.decode(bytes));
  let batch = new Uint8Array(2 * FLUSH_AT);
  let size = 0;
  // The start of request lines, as bytes: encoded when head() gives a new one (once a millisecond).
  let startText = "";
  let startBytes = NOTHING;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (size === 0) return;
    const bytes = batch.subarray(0, size);
    size = 0;
    // The writer uses or copies the bytes before it returns: the buffer is reused.
    out(bytes);
  };
  /** Room for `n` more bytes: what is gathered is written first when they would not fit. */
  const room = (n: number) => {
    if (size + n <= batch.length) return;
    flush();
    if (n > batch.length) batch = new Uint8Array(n);
  };
  const added = () => {
    // Written in one go at most 50 ms later, or at once when much has gathered.
    if (size > FLUSH_AT) flush();
    else if (!timer) timer = setTimeout(flush, 50);
  };
  const addText = (text: string) => {
    room(text.length * 3);
    size += encoder.encodeInto(text, batch.subarray(size)).written;
  };
  const emit = (at: Level) => {
    const atRank = RANK[at];
    return (msg: string, fields: Fields = {}) => {
      if (atRank < rank) return;
      addText(`${formatLine(format, Date.now(), at, msg, fields)}\n`);
      added();
    };
  };
  return {
    request(preset, durationMs, upstreamMs) {
      if (RANK.info < rank) return;
      const text = head(format, Date.now(), "info", "request");
      if (text !== startText) {
        startText = text;
        startBytes = encoder.encode(text);
      }
      const start = startBytes;
      const shared = preset.bytes(format);
      const upstream = upstreamMs === undefined ? NOTHING : encoder.encode(fieldsText(format, { upstream_ms: upstreamMs }));
      const end = durationEnd(format, durationMs);
      // One line is never split between two writes.
      room(start.length + shared.length + upstream.length + end.length);
      batch.set(start, size);
      size += start.length;
      batch.set(shared, size);
      size += shared.length;
      if (upstream.length > 0) {
        batch.set(upstream, size);
        size += upstream.length;
      }
      batch.set(end, size);
      size += end.length;
      added();
    },
    debug: emit("debug"),
    info: emit("info"),
    warn: emit("warn"),
    error: emit("error"),
    enabled: (at) => RANK[at] >= rank,
    configure(next) {
      ({ format, level } = next);
      rank = RANK[level];
    },
    flush() {
      flush();
      queue?.drain();
    },
    dropped: () => queue?.dropped ?? 0,
  };
}
