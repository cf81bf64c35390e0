/**
 * What a request says about the copy its client holds (SPEC 5.8): `If-None-Match` (RFC 9110
 * 13.1.2) and the `wait` preference of `Prefer` (RFC 7240 4.3). Both are read as the Fetch API
 * gives them: several header lines joined by ", ", which is what a list field means.
 */

/** The longest wait a client gets, in seconds (SPEC 5.8). */
export const MAX_WAIT = 300;

/**
 * One list member of If-None-Match: an entity-tag, `W/` allowed, its opaque-tag made of
 * `etagc` (a comma included, so the list is not split on commas first), then the member's end.
 */
const MEMBER = /[ \t]*(?:W\/)?("[\x21\x23-\x7e\x80-\xff]*")[ \t]*(?:,|$)/y;
/** A member that is not an entity-tag (it can match nothing): up to the next comma. */
const OTHER = /[^,]*(?:,|$)/y;

/**
 * Whether a value whose ETag is `etag` matches `If-None-Match` (weak comparison: `W/` is not
 * compared), or undefined without the header. `*` matches any value. A member that is not an
 * entity-tag matches nothing: at worst the client gets the value it may already hold.
 */
export function ifNoneMatch(header: string | null): ((etag: string) => boolean) | undefined {
  if (header === null) return undefined;
  if (header.trim() === "*") return () => true;
  const tags: string[] = [];
  for (let at = 0; at < header.length; ) {
    MEMBER.lastIndex = at;
    const member = MEMBER.exec(header);
    if (member) {
      tags.push(member[1]!);
      at = MEMBER.lastIndex;
      continue;
    }
    OTHER.lastIndex = at;
    OTHER.exec(header);
    at = OTHER.lastIndex;
  }
  // One string, each tag between newlines (no etagc), kept by a long poll for its whole wait:
  // at most the header's size, where a Set of a hostile header's ~2,000 tags cost ~200 KiB.
  const joined = `\n${tags.join("\n")}\n`;
  return (etag) => joined.includes(`\n${etag}\n`);
}

/**
 * A field value split on `separator` outside quoted-strings (RFC 9110 5.6.4), each part trimmed:
 * a comma inside another preference's quoted value does not start a preference.
 */
function split(text: string, separator: string): string[] {
  const parts: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted && c === "\\") i++;
    else if (c === '"') quoted = !quoted;
    else if (!quoted && c === separator) {
      parts.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  parts.push(text.slice(start).trim());
  return parts;
}

/**
 * The seconds of `Prefer: wait=N`, capped at MAX_WAIT; 0 when there is no wait preference or
 * it is malformed (not delta-seconds). Preference names are case-insensitive, their parameters
 * (after `;`) are ignored, and only the first `wait` counts (RFC 7240 2).
 */
export function preferredWait(header: string | null): number {
  if (header === null) return 0;
  for (const preference of split(header, ",")) {
    // Cut at the first `=` by hand: a regular expression that trims the name backtracks, and a
    // 16 KiB header of spaces (Bun's largest) held the event loop for a third of a second.
    const token = split(preference, ";")[0]!;
    const equals = token.indexOf("=");
    const name = (equals < 0 ? token : token.slice(0, equals)).trimEnd();
    if (name.toLowerCase() !== "wait") continue;
    const value = equals < 0 ? undefined : token.slice(equals + 1).trimStart();
    return value !== undefined && /^\d+$/.test(value) ? Math.min(Number(value), MAX_WAIT) : 0;
  }
  return 0;
}
