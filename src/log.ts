/**
 * Log lines on standard output, logfmt or JSON (SPEC 5.6). Fields are primitives only, so a
 * Secret (or any object that might hold a value) cannot be handed to a log line by mistake: the
 * type checker refuses it. Callers log item paths, client names, kinds and durations, never a
 * token, a parameter or a value.
 */
import { LogQueue, stdoutSink } from "./stdout";

export type Level = "debug" | "info" | "warn" | "error";
export type Format = "logfmt" | "json";
export type Fields = Record<string, string | number | boolean | null | undefined>;

/** Bytes of lines that may wait for a stalled reader of standard output (SPEC 5.6: a few MiB); later lines are dropped and counted. */
export const LOG_QUEUE_BYTES = 4 * 1024 * 1024;

const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type Logger = {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  /** Changes format and level in place (a reload does this). */
  configure(settings: { format: Format; level: Level }): void;
  /** Writes the lines gathered now, and the notice of lines dropped if any (before the process exits). */
  flush(): void;
  /** Lines dropped because the reader of standard output was behind (SPEC 5.6): always 0 for a logger given `write`. */
  dropped(): number;
};

/** A logfmt value that needs no quotes: printable ASCII (! to ~) but `"`, `=` and `\`. */
const BARE = /^[!#-<>-[\]-~]+$/;

function logfmtValue(value: string | number | boolean | null): string {
  if (typeof value !== "string") return String(value);
  return BARE.test(value) ? value : JSON.stringify(value);
}

/** One line and its newline: time, level and message, then each field that is not undefined, in order. */
export function formatLine(format: Format, level: Level, msg: string, fields: Fields, time = new Date()): string {
  const stamp = time.toISOString();
  let line = format === "json" ? `{"time":"${stamp}","level":"${level}","msg":${JSON.stringify(msg)}` : `time=${stamp} level=${level} msg=${logfmtValue(msg)}`;
  for (const key in fields) {
    const value = fields[key];
    if (value === undefined) continue;
    // JSON has no NaN or Infinity: JSON.stringify writes them as null.
    line += format === "json" ? `,${JSON.stringify(key)}:${JSON.stringify(value)}` : ` ${key}=${logfmtValue(value)}`;
  }
  return format === "json" ? `${line}}\n` : `${line}\n`;
}

/**
 * `write`: where each line goes (tests, `cachish get`); without it, standard output through a
 * LogQueue of LOG_QUEUE_BYTES.
 */
export function createLogger(settings: { format: Format; level: Level }, write?: (line: string) => void): Logger {
  let { format, level } = settings;
  const queue = write ? undefined : new LogQueue(stdoutSink(), LOG_QUEUE_BYTES, (lines) => formatLine(format, "warn", "log lines dropped", { lines }));
  const out = write ?? ((line: string) => queue!.push(line));
  const at =
    (lineLevel: Level) =>
    (msg: string, fields: Fields = {}) => {
      if (RANK[lineLevel] >= RANK[level]) out(formatLine(format, lineLevel, msg, fields));
    };
  return {
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
    configure(next) {
      ({ format, level } = next);
    },
    flush: () => queue?.drain(),
    dropped: () => queue?.dropped ?? 0,
  };
}
