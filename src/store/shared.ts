/**
 * The fleet's tier (SPEC 5.7): a PostgreSQL database, through Bun's built-in client, behind
 * each host's own store. It only ever adds: every call is bounded by `timeout`, a database
 * that is slow, down or gone makes a call answer "nothing" instead of failing, and cachish
 * starts and serves without it, connecting when it can.
 *
 * - Values are sealed with AES-256-GCM under the fleet's key, bound to their item path and
 *   fetch time: whoever reads the database reads no value, and a row altered or moved to
 *   another path does not open (it is ignored and logged). The upstream's validators of a
 *   value (SPEC 5.8) are sealed beside it, bound to it, so that they travel with it.
 * - Newest wins: a write replaces a row only with a newer value, then NOTIFYs the fleet.
 * - One fetch per fleet: a host takes an item's lease for its fetch's timeout; a lease whose
 *   holder died expires by itself.
 */
// Types only: reading Bun.SQL loads Bun's PostgreSQL and MySQL clients (~3 ms and some MB at
// start), which a daemon without `shared_store` never needs. The constructor reads it.
import type { SQL } from "bun";
import { hostname } from "node:os";
import type { SharedStore } from "../config/types";
import type { Logger } from "../log";
import { describeError } from "../error-text";
import { type KeptValidators, type Stored, storedOf } from "./store";

/**
 * 1: cachish_values (path, fetched_at, sealed), cachish_leases (path, holder, expires_at).
 * 2: and cachish_values.validators, sealed (NULL when the upstream sent none), added in place.
 */
export const SCHEMA_VERSION = 2;
const CHANNEL = "cachish_values";
/** Taken while creating the schema, so that hosts starting together do not race. */
const SCHEMA_LOCK = 0x63616368;

const TIMED_OUT = Symbol("timed out");

export type LeaseAnswer = "mine" | "held" | "unavailable";

/**
 * node:crypto costs 7 MB of memory to load: only a daemon with a shared store loads it, at
 * its first value. (WebCrypto would do, but is asynchronous where these are not.)
 */
const nodeCrypto = (): typeof import("node:crypto") => require("node:crypto");

function seal(key: Uint8Array, additional: string, plain: Uint8Array): Uint8Array {
  const { createCipheriv } = nodeCrypto();
  const nonce = crypto.getRandomValues(new Uint8Array(12));
  const cipher = createCipheriv("aes-256-gcm", key, nonce);
  cipher.setAAD(Buffer.from(additional));
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([nonce, body, cipher.getAuthTag()]);
}

/** What was sealed, or undefined when it does not open (altered, moved, or another key). */
function unseal(key: Uint8Array, additional: string, sealed: Uint8Array): Uint8Array | undefined {
  if (sealed.length < 12 + 16) return undefined;
  try {
    const decipher = nodeCrypto().createDecipheriv("aes-256-gcm", key, sealed.subarray(0, 12));
    decipher.setAAD(Buffer.from(additional));
    decipher.setAuthTag(sealed.subarray(sealed.length - 16));
    return new Uint8Array(Buffer.concat([decipher.update(sealed.subarray(12, sealed.length - 16)), decipher.final()]));
  } catch {
    return undefined;
  }
}

/** A value is bound to its path and fetch time (as schema 1 bound it: its hosts still open it). */
const valueBinding = (path: string, fetchedAt: number) => `cachish/v1\n${path}\n${fetchedAt}`;

/**
 * Validators are bound to the value they came with: altered, or taken from another row, they
 * do not open (a forged ETag could make a host keep an old value for ever). Sealed, not in the
 * clear: an ETag is often a digest of the value, which may be guessed from it.
 */
const validatorsBinding = (path: string, stored: Stored) => `cachish/validators\n${path}\n${stored.fetchedAt}\n${Buffer.from(stored.sha256).toString("hex")}`;

function keptValidators(opened: Uint8Array | undefined): KeptValidators | undefined {
  if (!opened) return undefined;
  let read: Partial<Record<keyof KeptValidators, unknown>>;
  try {
    read = JSON.parse(new TextDecoder().decode(opened)) ?? {};
  } catch {
    return undefined;
  }
  const { basis, etag, lastModified } = read;
  if (typeof basis !== "string" || (typeof etag !== "string" && typeof lastModified !== "string")) return undefined;
  return { basis, ...(typeof etag === "string" ? { etag } : {}), ...(typeof lastModified === "string" ? { lastModified } : {}) };
}

type Row = { fetched_at: string; sealed: Uint8Array; validators: Uint8Array | null };

export class SharedTier {
  readonly #sql: SQL;
  readonly #key: Uint8Array;
  readonly #timeout: number;
  readonly #log: Logger;
  /** Who holds a lease: this process on this host. */
  readonly holder = `${hostname()}:${process.pid}:${Buffer.from(crypto.getRandomValues(new Uint8Array(4))).toString("hex")}`;
  #schema: Promise<boolean> | undefined;
  #up = false;
  #closed = false;
  #listening: { unlisten(): Promise<void> } | undefined;
  #onValue: ((path: string, stored: Stored) => void) | undefined;

  constructor(settings: SharedStore, log: Logger) {
    this.#key = new Uint8Array(Buffer.from(settings.key.reveal(), "base64"));
    this.#timeout = settings.timeout;
    this.#log = log;
    this.#sql = new Bun.SQL(settings.url.reveal(), { max: 4, idleTimeout: 60, connectionTimeout: Math.max(1, Math.ceil(settings.timeout / 1000)) });
  }

  /** Whether the last call reached the database. */
  get up(): boolean {
    return this.#up;
  }

  /**
   * Connects in the background and listens for the fleet's new values; after every (re)connect
   * it catches up on what it missed. `onValue` gets each value that opens.
   */
  start(onValue: (path: string, stored: Stored) => void): void {
    this.#onValue = onValue;
    void this.#listen();
  }

  async #listen(): Promise<void> {
    for (let pause = 500; !this.#closed && !this.#listening; pause = Math.min(pause * 2, 30_000)) {
      try {
        if (!(await this.#ensureSchema())) throw new Error("the schema is not there");
        this.#listening = await this.#sql.listen(
          CHANNEL,
          (payload) => void this.#heard(payload),
          () => void this.#catchUp(),
        );
        this.#log.info("shared store connected", { schema_version: SCHEMA_VERSION });
      } catch (error) {
        this.#setUp(false, error);
        await Bun.sleep(pause);
      }
    }
  }

  async #heard(payload: string): Promise<void> {
    const path = payload.slice(0, payload.lastIndexOf(" "));
    const value = await this.read(path);
    if (value && this.#onValue) this.#onValue(path, value);
  }

  async #catchUp(): Promise<void> {
    const rows = await this.#bounded(() => this.#sql`SELECT path, fetched_at, sealed, validators FROM cachish_values` as Promise<(Row & { path: string })[]>);
    if (rows === undefined) return;
    for (const row of rows) {
      const stored = this.#open(row.path, row);
      if (stored && this.#onValue) this.#onValue(row.path, stored);
    }
  }

  /** Creates the schema when missing, once; false when the database cannot be reached. */
  #ensureSchema(): Promise<boolean> {
    this.#schema ??= this.#bounded(async () => {
      await this.#sql.begin(async (tx) => {
        await tx`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK})`;
        await tx`CREATE TABLE IF NOT EXISTS cachish_schema (version integer NOT NULL)`;
        await tx`CREATE TABLE IF NOT EXISTS cachish_values (path text PRIMARY KEY, fetched_at bigint NOT NULL, sealed bytea NOT NULL)`;
        await tx`CREATE TABLE IF NOT EXISTS cachish_leases (path text PRIMARY KEY, holder text NOT NULL, expires_at timestamptz NOT NULL)`;
        const [row] = (await tx`SELECT max(version) AS version FROM cachish_schema`) as { version: number | null }[];
        const version = row?.version ?? 0;
        if (version > SCHEMA_VERSION) throw new Error(`the shared store has schema ${version}, newer than this cachish knows (${SCHEMA_VERSION})`);
        if (version < SCHEMA_VERSION) {
          // In place: the rows of schema 1 stay, and open as values without validators.
          await tx`ALTER TABLE cachish_values ADD COLUMN IF NOT EXISTS validators bytea`;
          await tx`INSERT INTO cachish_schema (version) VALUES (${SCHEMA_VERSION})`;
        }
      });
      return true;
    }).then((done) => {
      if (!done) this.#schema = undefined;
      return done === true;
    });
    return this.#schema;
  }

  #open(path: string, row: Row): Stored | undefined {
    const fetchedAt = Number(row.fetched_at);
    const value = unseal(this.#key, valueBinding(path, fetchedAt), new Uint8Array(row.sealed));
    if (!value) {
      // Altered, moved from another path, or sealed with another key: never served.
      this.#log.error("a row of the shared store does not open; it is ignored", { item: path });
      return undefined;
    }
    const stored = storedOf(value, fetchedAt);
    if (row.validators === null) return stored;
    const validators = keptValidators(unseal(this.#key, validatorsBinding(path, stored), new Uint8Array(row.validators)));
    if (!validators) {
      // The value is sound: without validators, its next fetch is unconditional.
      this.#log.warn("the validators of a row of the shared store do not open; its value is taken without them", { item: path, cause: "a host of an older cachish wrote the value, or the row was altered" });
      return stored;
    }
    return { ...stored, validators };
  }

  /** The fleet's value of `path`, or undefined (none, it does not open, or the database did not answer in time). */
  async read(path: string): Promise<Stored | undefined> {
    if (!(await this.#ensureSchema())) return undefined;
    const rows = await this.#bounded(() => this.#sql`SELECT fetched_at, sealed, validators FROM cachish_values WHERE path = ${path}` as Promise<Row[]>);
    const row = rows?.[0];
    return row ? this.#open(path, row) : undefined;
  }

  /** Offers a value to the fleet: kept only if newer than the database's, then announced. */
  async write(path: string, stored: Stored): Promise<void> {
    if (!(await this.#ensureSchema())) return;
    const sealed = seal(this.#key, valueBinding(path, stored.fetchedAt), stored.value);
    const validators = stored.validators ? seal(this.#key, validatorsBinding(path, stored), new TextEncoder().encode(JSON.stringify(stored.validators))) : null;
    await this.#bounded(async () => {
      const kept = await this.#sql`
        INSERT INTO cachish_values (path, fetched_at, sealed, validators) VALUES (${path}, ${stored.fetchedAt}, ${sealed}, ${validators})
        ON CONFLICT (path) DO UPDATE SET fetched_at = excluded.fetched_at, sealed = excluded.sealed, validators = excluded.validators
        WHERE cachish_values.fetched_at < excluded.fetched_at
        RETURNING path`;
      if (kept.length > 0) await this.#sql`SELECT pg_notify(${CHANNEL}, ${`${path} ${stored.fetchedAt}`})`;
    });
  }

  /** Takes the item's lease for `ms`, unless a live holder has it; "unavailable" when the database did not answer. */
  async lease(path: string, ms: number): Promise<LeaseAnswer> {
    if (!(await this.#ensureSchema())) return "unavailable";
    const rows = await this.#bounded(
      () =>
        this.#sql`
        INSERT INTO cachish_leases (path, holder, expires_at) VALUES (${path}, ${this.holder}, now() + ${ms} * interval '1 millisecond')
        ON CONFLICT (path) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
        WHERE cachish_leases.expires_at < now() OR cachish_leases.holder = excluded.holder
        RETURNING holder` as Promise<unknown[]>,
    );
    if (rows === undefined) return "unavailable";
    return rows.length > 0 ? "mine" : "held";
  }

  async release(path: string): Promise<void> {
    await this.#bounded(() => this.#sql`DELETE FROM cachish_leases WHERE path = ${path} AND holder = ${this.holder}`);
  }

  /** For `check-config --probe`: whether the database answers, and the schema version it has. */
  async probe(): Promise<{ ok: true; schema: number | null } | { ok: false; reason: string }> {
    try {
      const answer = await Promise.race([
        (async () => {
          const [table] = (await this.#sql`SELECT to_regclass('cachish_schema') AS name`) as { name: string | null }[];
          if (!table?.name) return { ok: true as const, schema: null };
          const [row] = (await this.#sql`SELECT max(version) AS version FROM cachish_schema`) as { version: number | null }[];
          return { ok: true as const, schema: row?.version ?? null };
        })(),
        Bun.sleep(this.#timeout).then(() => ({ ok: false as const, reason: `no answer within ${this.#timeout} ms` })),
      ]);
      return answer;
    } catch (error) {
      return { ok: false, reason: describeError(error) };
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.race([(async () => {
      await this.#listening?.unlisten().catch(() => {});
      await this.#sql.close({ timeout: 1 });
    })(), Bun.sleep(this.#timeout)]);
  }

  /** Runs a database call within `timeout`; undefined when it failed or took longer. */
  async #bounded<T>(call: () => Promise<T>): Promise<T | undefined> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const result = await Promise.race([call(), new Promise<typeof TIMED_OUT>((resolve) => (timer = setTimeout(() => resolve(TIMED_OUT), this.#timeout)))]);
      if (result === TIMED_OUT) {
        this.#setUp(false, new Error(`no answer within ${this.#timeout} ms`));
        return undefined;
      }
      this.#setUp(true);
      return result;
    } catch (error) {
      this.#setUp(false, error);
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  #setUp(up: boolean, error?: unknown): void {
    if (up !== this.#up) {
      if (up) this.#log.info("shared store reachable");
      else this.#log.warn("shared store unreachable; serving from the local store", { cause: describeError(error) });
    }
    this.#up = up;
  }
}
