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
export type Level = "debug" | "info" | "warn" | "error";
export type Format = "logfmt" | "json";
export type Fields = Record<string, string | number | boolean | null | undefined>;

const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type Logger = {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  /** Whether a line of this level would be written (to skip building its fields). */
  enabled(level: Level): boolean;
  /** Changes format and level in place (a reload does this). */
  configure(settings: { format: Format; level: Level }): void;
  /** Writes what is gathered now (before the process exits). */
  flush(): void;
};

const PLAIN = /^[\x21-\x7e]+$/;
const NEEDS_QUOTES = /["=\\]/;

/** Request lines repeat the same few words (methods, paths, client names): their quoted form is kept. */
const quoted = new Map<string, string>();

function logfmtValue(value: string | number | boolean | null): string {
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  const text = String(value);
  let shown = quoted.get(text);
  if (shown === undefined) {
    shown = text !== "" && PLAIN.test(text) && !NEEDS_QUOTES.test(text) ? text : JSON.stringify(text);
    if (quoted.size < 4096) quoted.set(text, shown);
  }
  return shown;
}

let stampMs = -1;
let stampText = "";
function stamp(ms: number): string {
  if (ms !== stampMs) {
    stampMs = ms;
    stampText = new Date(ms).toISOString();
  }
  return stampText;
}

export function formatLine(format: Format, ms: number, level: Level, msg: string, fields: Fields): string {
  if (format === "json") {
    const entries: Record<string, unknown> = { time: stamp(ms), level, msg };
    for (const key in fields) if (fields[key] !== undefined) entries[key] = fields[key];
    return JSON.stringify(entries);
  }
  let line = `time=${stamp(ms)} level=${level} msg=${logfmtValue(msg)}`;
  for (const key in fields) {
    const value = fields[key];
    if (value !== undefined) line += ` ${key}=${logfmtValue(value)}`;
  }
  return line;
}

export function createLogger(settings: { format: Format; level: Level }, write: (text: string) => void = (text) => process.stdout.write(text)): Logger {
  let { format, level } = settings;
  let pending = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (pending === "") return;
    const text = pending;
    pending = "";
    write(text);
  };
  const emit = (at: Level) => (msg: string, fields: Fields = {}) => {
    if (RANK[at] < RANK[level]) return;
    pending += `${formatLine(format, Date.now(), at, msg, fields)}\n`;
    // Written in one go at most 50 ms later, or at once when much has gathered.
    if (pending.length > 65_536) flush();
    else if (!timer) timer = setTimeout(flush, 50);
  };
  return {
    debug: emit("debug"),
    info: emit("info"),
    warn: emit("warn"),
    error: emit("error"),
    enabled: (at) => RANK[at] >= RANK[level],
    configure(next) {
      ({ format, level } = next);
    },
    flush,
  };
}
