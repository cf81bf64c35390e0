/**
 * Where an error becomes an operator's words, in a message or a log line: the one place, so
 * that none of them quotes a credential. A failed file, socket or connection is told by its
 * errno, not by its message, which may hold a URL and its credentials.
 */

/** The errnos an operator acts on, in words. */
const ERRNO: Record<string, string> = {
  ENOENT: "no such file",
  EACCES: "permission denied",
  EISDIR: "it is a folder",
  EROFS: "read-only file system",
  EPERM: "operation not permitted (an immutable file? see lsattr)",
  EADDRINUSE: "the address is already in use",
  EADDRNOTAVAIL: "the address is not one of this host's",
};

const codeOf = (error: unknown): string | undefined => {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return typeof code === "string" ? code : undefined;
};

/** The error's message (or the thrown value as text). */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Why a file or a socket could not be used: its errno in words, else its code, else its message. */
export function systemProblem(error: unknown): string {
  const code = codeOf(error);
  return code === undefined ? messageOf(error) : (ERRNO[code] ?? code);
}

/** Why an HTTP connection failed: its code (`ECONNREFUSED`, `ENOTFOUND`, ...), never its message, which names the URL. */
export function connectProblem(error: unknown): string {
  return codeOf(error) ?? (error instanceof Error ? error.name : "connection failed");
}

/** The message with the error's code when the message does not already name it, and any database URL (which holds a password) cut out. */
export function describeError(error: unknown): string {
  const code = codeOf(error);
  const message = messageOf(error).replace(/postgres(ql)?:\/\/\S+/g, "postgres://…");
  return code && !message.includes(code) ? `${message} (${code})` : message;
}

/** 1st, 2nd, 3rd, 4th, ... 11th, 12th, 13th, 21st: a place in the configuration, named without quoting what stands there. */
export function ordinal(n: number): string {
  const teen = n % 100 >= 11 && n % 100 <= 13;
  return `${n}${teen ? "th" : ({ 1: "st", 2: "nd", 3: "rd" } as Record<number, string>)[n % 10] ?? "th"}`;
}
