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
import { stdoutWriter } from "./stdout";

export type Level = "debug" | "info" | "warn" | "error";
export type Format = "logfmt" | "json";
export type Fields = Record<string, string | number | boolean | null | undefined>;

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
  /** Writes what is gathered now (before the process exits). */
  flush(): void;
};

const PLAIN = /^[\x21-\x7e]+$/;
const NEEDS_QUOTES = /["=\\]/;

/** Durations in tenths of a millisecond repeat endlessly; their text is kept (0 to 999.9). */
const TENTHS: string[] = [];

function numberText(value: number): string {
  const tenths = Math.round(value * 10);
  if (tenths >= 0 && tenths < 10_000 && tenths / 10 === value) return (TENTHS[tenths] ??= String(value));
  return String(value);
}

/** The end of a request line, ` duration_ms=0.4` and its newline, kept per format for 0 to 999.9 ms. */
const ENDS: Record<Format, string[]> = { logfmt: [], json: [] };

function durationEnd(format: Format, ms: number): string {
  const tenths = Math.round(ms * 10);
  const text = () => (format === "json" ? `,"duration_ms":${numberText(ms)}}\n` : ` duration_ms=${numberText(ms)}\n`);
  if (tenths >= 0 && tenths < 10_000 && tenths / 10 === ms) return (ENDS[format][tenths] ??= text());
  return text();
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
  #text = "";
  constructor(readonly fields: Fields) {}
  text(format: Format): string {
    if (format !== this.#format) {
      this.#format = format;
      this.#text = fieldsText(format, this.fields);
    }
    return this.#text;
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

export function formatLine(format: Format, ms: number, level: Level, msg: string, fields: Fields): string {
  const line = head(format, ms, level, msg) + fieldsText(format, fields);
  return format === "json" ? `${line}}` : line;
}

export function createLogger(settings: { format: Format; level: Level }, write: (text: string) => void = stdoutWriter()): Logger {
  let { format, level } = settings;
  let rank = RANK[level];
  // Lines gathered as a list and joined once: appending to one string builds a rope that
  // costs more to take apart than the lines cost to write.
  const pending: string[] = [];
  let size = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (pending.length === 0) return;
    const text = pending.join("");
    pending.length = 0;
    size = 0;
    write(text);
  };
  const emit = (at: Level) => {
    const atRank = RANK[at];
    return (msg: string, fields: Fields = {}) => {
      if (atRank < rank) return;
      add(`${formatLine(format, Date.now(), at, msg, fields)}\n`);
    };
  };
  const add = (line: string) => {
    pending.push(line);
    size += line.length;
    // Written in one go at most 50 ms later, or at once when much has gathered.
    if (size > 65_536) flush();
    else if (!timer) timer = setTimeout(flush, 50);
  };
  return {
    request(preset, durationMs, upstreamMs) {
      if (RANK.info < rank) return;
      // Its parts go to the list as they are (all kept strings, most of the time): joined
      // once at the write, a line costs no string of its own.
      const start = head(format, Date.now(), "info", "request");
      const shared = preset.text(format);
      const upstream = upstreamMs === undefined ? "" : (format === "json" ? ',"upstream_ms":' : " upstream_ms=") + numberText(upstreamMs);
      const end = durationEnd(format, durationMs);
      pending.push(start, shared, upstream, end);
      size += start.length + shared.length + upstream.length + end.length;
      if (size > 65_536) flush();
      else if (!timer) timer = setTimeout(flush, 50);
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
    flush,
  };
}
