/**
 * Every key of cachish.yml, described once (see describe.ts for what reads this).
 * Wording here is user-facing: it is the README's configuration reference and the
 * descriptions an editor shows from the JSON Schema.
 */
import type { Field, ObjectShape, Shape } from "./describe";

const secretString: Shape = { type: "string", refs: true, secret: true };
const paramString: Shape = { type: "string", refs: true };
const url: Shape = { type: "string", format: "http-url", refs: true };
const keyList: Shape = { type: "one-or-list", of: paramString };

/** The keys that an item may set for itself and `defaults` may set for every item. */
export const POLICY_FIELDS = {
  timeout: {
    shape: { type: "duration", min: 1 }, default: "5s", inherits: true, since: "2.0",
    doc: "The longest a whole upstream fetch may take: connecting, the answer and its body.",
  },
  ttl: {
    shape: { type: "duration" }, default: "0s", inherits: true, since: "2.0",
    doc: "A stored value younger than this is served without asking the upstream.",
  },
  max_stale: {
    shape: { type: "duration" }, nullable: true, inherits: true, since: "2.0", defaultDoc: "none (any age)",
    doc: "A stored value older than this is never served.",
  },
  stale_after: {
    shape: { type: "duration" }, nullable: true, inherits: true, since: "2.0", defaultDoc: "none",
    doc: "When the upstream has not answered after this long and a value is stored, answer from the store now; the fetch goes on and updates the store. `0s` answers from the store at once whenever the value is past `ttl`, and fetches in the background (stale-while-revalidate).",
  },
  stale_on: {
    shape: { type: "one-or-list", of: { type: "string", format: "stale-kind" }, emptyAllowed: true }, default: "any", inherits: true, since: "2.0",
    defaultDoc: "`[any]`",
    doc: "The failures after which the stored value may be answered (stale, `X-Cache: hit`): `any` (every failure, as 1.x), or a list of `connect`, `timeout`, `status-5xx`, `status-4xx`, `status-NNN` (one status, e.g. `status-503`), `invalid-json`, `too-large`, `missing-field`, `command`. After any other failure the answer is 503 `Upstream failure` (its `Cache-Status` `detail` names the failure), also through the backoff window that follows, and the stored value is kept: a later success, or a failure in the list, serves again. `[]`: no failure is answered stale. `lease` and `internal` (ours, not the upstream's) say nothing of the value: they leave the upstream's last verdict as it was. A value younger than `ttl` is a hit whatever failed. For secrets, `[connect, timeout, status-5xx]`: a 401, 403 or 404 says the credential or the secret was revoked.",
  },
  max_backoff: {
    shape: { type: "duration" }, default: "30s", inherits: true, since: "2.0",
    doc: "After a failed fetch the upstream is left alone for 1 s, doubling with each further failure up to this; meanwhile requests are answered from the store. `0s` asks the upstream on every request, as 1.x did.",
  },
  refresh: {
    shape: { type: "duration", min: 1 }, nullable: true, inherits: true, since: "2.0", defaultDoc: "none",
    doc: "Fetch in the background at this interval (and once at start), so clients always find a recent value.",
  },
  proxy: {
    shape: { type: "string", format: "http-url", refs: true, secret: true }, nullable: true, inherits: true, since: "2.0", defaultDoc: "none",
    doc: "`http://HOST:PORT` (credentials in the URL allowed; a secret reference works): the proxy for this item's upstream requests. No proxy is ever taken from the environment: `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY` (in either case) are ignored, as 1.x ignored them.",
  },
  max_body: {
    // At most 1 GiB: a body is held in memory whole (and a buffer of more than 4 GiB cannot even be reserved).
    shape: { type: "size", min: 1, max: 1024 ** 3 }, default: "16MiB", inherits: true, since: "2.0",
    doc: "A larger upstream body is a failure. At most `1GiB`.",
  },
} satisfies Record<string, Field>;

const fieldParam: Field = {
  shape: keyList, since: "1.x",
  doc: "Only these top-level keys of the JSON answer, or of the part `select` points at (a string or a list); the value is then an object holding exactly them, in this order.",
};

/** Shared by every module that reads a JSON answer (the named keys come from the part it points at). */
export const selectParam: Field = {
  shape: { type: "string", format: "json-pointer", refs: true, refSecret: true }, since: "2.0",
  doc: "A JSON Pointer (RFC 6901) to the part of the JSON answer that makes the value, e.g. `/data/data` for a Vault KV v2 secret; `field` then picks keys from that part. `~1` stands for `/` and `~0` for `~` in a key; an array element is named by its index (`/items/0`). `\"\"` is the whole answer. A pointer that finds nothing is a `missing-field` failure.",
};

export const MODULES: Record<string, ObjectShape> = {
  JsonHttp: {
    type: "object", unknown: "error",
    fields: {
      url: { shape: url, required: true, since: "1.x", doc: "The `http://` or `https://` URL to `GET`." },
      select: selectParam,
      field: fieldParam,
      headers: {
        shape: { type: "map", keyFormat: "header-name", keyDoc: "header name", values: secretString },
        since: "2.0", doc: "Extra request headers, a map of names to strings.",
      },
    },
  },
  Heroku: {
    type: "object", unknown: "error",
    fields: {
      api_token: { shape: secretString, required: true, since: "1.x", doc: "A Heroku API token that can read the app's config vars." },
      app: { shape: paramString, required: true, since: "1.x", doc: "The Heroku app's name or id." },
      config_key: {
        shape: keyList, required: true, since: "1.x",
        doc: "The config var to hand out (a string), or several (a list); the value is an object of exactly these.",
      },
      api_url: { shape: url, default: "https://api.heroku.com", since: "2.0", doc: "The Heroku Platform API's base URL." },
    },
  },
  Hawk: {
    type: "object", unknown: "error",
    fields: {
      secret_id: { shape: secretString, required: true, since: "1.x", doc: "The Hawk credentials' id." },
      secret: { shape: secretString, required: true, since: "1.x", doc: "The Hawk credentials' key." },
      url: { shape: url, required: true, since: "1.x", doc: "The `http://` or `https://` URL to `GET`, signed with Hawk 1.1." },
      algorithm: {
        shape: { type: "enum", values: ["sha256", "sha1"] }, default: "sha256", since: "1.x",
        doc: "The Hawk MAC algorithm.",
      },
      select: selectParam,
      field: fieldParam,
    },
  },
  Command: {
    type: "object", unknown: "error",
    fields: {
      argv: {
        shape: { type: "list", of: { type: "string", refs: true, refSecret: true }, first: { type: "string", format: "program", refs: true, refSecret: true } },
        required: true, since: "2.0",
        doc: "The program and its arguments, run without a shell: the program is a name looked up in `PATH` or an absolute path. The value is what it prints on standard output (JSON) when it exits 0. A secret reference works for any element, but other users of the host can see a process's arguments: give secrets in `env`.",
      },
      env: {
        shape: { type: "map", keyFormat: "env-name", keyDoc: "variable name", values: secretString },
        since: "2.0",
        doc: "The program's whole environment besides `PATH` (cachish's own, unless set here): nothing else of cachish's is passed, not even `HOME`. Each value is a secret: it is removed from the line of standard error that is logged.",
      },
      select: selectParam,
      field: { ...fieldParam, since: "2.0" },
    },
  },
};

export const ITEM: ObjectShape = {
  type: "object", unknown: "warning",
  fields: {
    module: {
      shape: { type: "enum", values: Object.keys(MODULES), caseSensitive: true }, required: true, since: "1.x",
      doc: "What fetches the value: `JsonHttp`, `Heroku`, `Hawk` or `Command` (case-sensitive).",
    },
    parameters: {
      shape: { type: "variant", discriminator: "module", variants: MODULES }, required: true, since: "1.x",
      doc: "The module's parameters (below). Any string here may be a secret reference.",
    },
    disable_auth: {
      shape: { type: "boolean" }, default: false, since: "1.x",
      doc: "`true`: anyone who can reach the daemon may read this item, without a token.",
    },
    ...POLICY_FIELDS,
  },
};

export const CLIENT: ObjectShape = {
  type: "object", unknown: "warning",
  exactlyOne: [["token", "token_sha256"]],
  notMappingHint:
    "this client entry is in the pre-1.1 form `TOKEN: /path`; rewrite it as `NAME: {token: TOKEN, url: /path}` with a name of your choice (the token is not shown here)",
  fields: {
    token: { shape: secretString, since: "1.x", doc: "The client's token (or a secret reference to it)." },
    token_sha256: {
      shape: { type: "string", format: "sha256-hex" }, since: "2.0",
      doc: "The lowercase hex SHA-256 of the token, instead of `token`, so the file does not hold the token itself.",
    },
    url: {
      shape: { type: "one-or-list", of: { type: "string" }, emptyWarning: "this client can read nothing (1.x started with it)" }, required: true, since: "1.x",
      doc: "The item paths this client may read: an fnmatch glob (`*`, `?`, `[a-z]`, `[!x]`), or a list of them (an empty list, as 1.x allowed: none).",
    },
  },
};

export const LOG: ObjectShape = {
  type: "object", unknown: "error",
  fields: {
    format: { shape: { type: "enum", values: ["logfmt", "json"] }, default: "logfmt", since: "2.0", doc: "`logfmt` or `json` lines." },
    level: { shape: { type: "enum", values: ["debug", "info", "warn", "error"] }, default: "info", since: "2.0", doc: "The least severe level written." },
  },
};

export const SHARED_STORE: ObjectShape = {
  type: "object", unknown: "error",
  fields: {
    url: {
      shape: { type: "string", format: "postgres-url", refs: true, secret: true }, required: true, since: "2.0",
      doc: "The PostgreSQL database the fleet shares: `postgres://USER:PASSWORD@HOST:PORT/DATABASE` (a secret reference works, and is advised).",
    },
    key: {
      shape: { type: "string", format: "aes-256-key", refs: true, secret: true }, required: true, since: "2.0",
      doc: "32 random bytes in base64 (`openssl rand -base64 32`), the same on every host: values are encrypted with it (AES-256-GCM) before they reach the database.",
    },
    timeout: {
      shape: { type: "duration", min: 1 }, default: "2s", since: "2.0",
      doc: "The longest any request waits on the database.",
    },
  },
};

export const TOP: ObjectShape = {
  type: "object", unknown: "error",
  fields: {
    items: {
      // Not required: 1.x started without it (an empty file, the one its package writes); a warning says so.
      shape: { type: "map", keyFormat: "item-path", keyDoc: "item path", values: ITEM }, nullable: true, since: "1.x",
      doc: "The values cachish serves: each URL path (starting with `/`) and what to fetch for it. Without it (or empty), the daemon serves nothing, as 1.x did.",
    },
    auth: {
      shape: { type: "map", keyDoc: "client name", values: CLIENT }, since: "1.x",
      doc: "The clients: each name with its token and the item paths it may read.",
    },
    cache_dir: {
      shape: { type: "string" }, since: "1.x", defaultDoc: "`$CACHE_DIRECTORY` when systemd sets it, else `/var/cache/cachish`",
      doc: "The folder of the store (`cachish.sqlite`); a relative path is taken from the configuration file's folder.",
    },
    log_config: {
      shape: { type: "any" }, since: "1.x",
      ignoredBecause: "log_config is 1.x's Python logging setup and is ignored; use `log: {format: logfmt|json, level: ...}` instead",
      doc: "1.x's Python logging setup: accepted, ignored, warned about. See `log`.",
    },
    listen: {
      shape: { type: "string", format: "listen" }, default: "127.0.0.1:2469", since: "2.0",
      doc: "Where the daemon listens: `HOST:PORT` (`[::1]:2469` for IPv6), or `unix:/path/to/socket`.",
    },
    defaults: {
      shape: { type: "object", unknown: "error", fields: POLICY_FIELDS }, since: "2.0",
      doc: "Policy keys (`timeout`, `ttl`, ...) applied to every item that does not set its own.",
    },
    log: { shape: LOG, since: "2.0", doc: "How the daemon logs to standard output." },
    metrics: { shape: { type: "boolean" }, default: true, since: "2.0", doc: "Serve Prometheus metrics at `/metrics`." },
    shared_store: {
      shape: SHARED_STORE, since: "2.0",
      doc: "A PostgreSQL tier shared by a fleet of hosts, behind each host's own store (see \"Running a fleet\").",
    },
  },
};

/** Paths the daemon answers itself; an item may not take them. */
export const RESERVED_PATHS = { exact: ["/metrics"], prefix: "/-/" };
