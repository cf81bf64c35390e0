/** How an error is told in a log line or a message: its own words, never a credential. */

/** The error's message (or the thrown value as text). */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The message with the error's code when the message does not already name it, and any database URL (which holds a password) cut out. */
export function describeError(error: unknown): string {
  const code = (error as { code?: string }).code;
  const message = messageOf(error).replace(/postgres(ql)?:\/\/\S+/g, "postgres://…");
  return code && !message.includes(code) ? `${message} (${code})` : message;
}
