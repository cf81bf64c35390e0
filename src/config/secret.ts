import { readFileSync } from "node:fs";
import { systemProblem } from "../error-text";

/**
 * A value that must never reach a log, an error message or check-config's output. Everything
 * that prints goes through String(), JSON.stringify() or Bun's inspector; each of them sees
 * only "[secret]". The one way to the value is reveal(), called where it is sent upstream or
 * compared.
 */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return "[secret]";
  }
  toJSON(): string {
    return "[secret]";
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return "[secret]";
  }
}

/** The text of a parameter that is a Secret only where a secret reference gave it (a command's word, a pointer). */
export function revealed(value: string | Secret): string;
export function revealed(value: string | Secret | undefined): string | undefined;
export function revealed(value: string | Secret | undefined): string | undefined {
  return value instanceof Secret ? value.reveal() : value;
}

/** Where a secret reference points, as `{env: NAME}`, `{file: PATH}` or `{credential: NAME}` says. */
export type SecretRef = { kind: "env" | "file" | "credential"; name: string };

export const SECRET_REF_KINDS = ["env", "file", "credential"] as const;

export type Resolved = { ok: true; value: string } | { ok: false; problem: string };

/**
 * Reads a secret reference. The problem it returns names neither the reference (a scalar of
 * the file: its position points at it) nor the content. `baseDir` anchors relative `{file:}` paths, like a relative `cache_dir`.
 */
export function resolveSecretRef(ref: SecretRef, env: Record<string, string | undefined>, baseDir: string): Resolved {
  if (ref.kind === "env") {
    const value = env[ref.name];
    if (value === undefined) return { ok: false, problem: "the environment variable it names is not set" };
    if (value === "") return { ok: false, problem: "the environment variable it names is empty" };
    return { ok: true, value };
  }
  let path: string;
  if (ref.kind === "file") {
    path = ref.name.startsWith("/") ? ref.name : `${baseDir}/${ref.name}`;
  } else {
    const dir = env.CREDENTIALS_DIRECTORY;
    if (ref.name.includes("/") || ref.name === "" || ref.name === "." || ref.name === "..") {
      return { ok: false, problem: "a credential's name must be a plain file name, as in LoadCredential=NAME:..." };
    }
    if (!dir) {
      return { ok: false, problem: "CREDENTIALS_DIRECTORY is not set (systemd sets it when the unit has LoadCredential=NAME:...)" };
    }
    path = `${dir}/${ref.name}`;
  }
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    return { ok: false, problem: `the ${ref.kind === "file" ? "file" : "credential"} it names cannot be read: ${systemProblem(error)}` };
  }
  const value = text.replace(/\r?\n$/, "");
  if (value === "") return { ok: false, problem: `the ${ref.kind === "file" ? "file" : "credential"} it names is empty` };
  return { ok: true, value };
}
