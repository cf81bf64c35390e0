/**
 * Log lines on standard output, logfmt or JSON. Fields are primitives only, so a Secret (or
 * any object that might hold a value) cannot be handed to a log line by mistake: the type
 * checker refuses it. Callers log item paths, client names, kinds and durations, never a
 * token, a parameter or a value.
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
  /** Changes format and level in place (a reload does this). */
  configure(settings: { format: Format; level: Level }): void;
};

function logfmtValue(value: string | number | boolean | null): string {
  const text = String(value);
  return text !== "" && /^[\x21-\x7e]+$/.test(text) && !/["=\\]/.test(text) ? text : JSON.stringify(text);
}

export function formatLine(format: Format, time: Date, level: Level, msg: string, fields: Fields): string {
  const entries = Object.entries(fields).filter((entry): entry is [string, string | number | boolean | null] => entry[1] !== undefined);
  if (format === "json") return JSON.stringify({ time: time.toISOString(), level, msg, ...Object.fromEntries(entries) });
  return [`time=${time.toISOString()}`, `level=${level}`, `msg=${logfmtValue(msg)}`, ...entries.map(([k, v]) => `${k}=${logfmtValue(v)}`)].join(" ");
}

export function createLogger(settings: { format: Format; level: Level }, write: (line: string) => void = (line) => process.stdout.write(`${line}\n`)): Logger {
  let { format, level } = settings;
  const emit = (at: Level) => (msg: string, fields: Fields = {}) => {
    if (RANK[at] >= RANK[level]) write(formatLine(format, new Date(), at, msg, fields));
  };
  return {
    debug: emit("debug"),
    info: emit("info"),
    warn: emit("warn"),
    error: emit("error"),
    configure(next) {
      ({ format, level } = next);
    },
  };
}
