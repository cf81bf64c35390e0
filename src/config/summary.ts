/**
 * What a configuration amounts to, as check-config shows it (as text or JSON): never a token,
 * a credential or any other value that could be a secret. Of the parameters, only `select`
 * (where in the upstream's answer the value is) and a command's program are shown, each as
 * `[secret]` where a secret reference gave it.
 */
import { POLICY_FIELDS } from "./keys";
import { formatListen } from "./listen";
import type { Secret } from "./secret";
import type { Config, Item, Policy } from "./types";
import { formatDuration, formatSize } from "./units";

export type Summary = {
  file: string;
  listen: string;
  store: string;
  log: { format: string; level: string };
  metrics: boolean;
  /** The shared tier, without its URL or key. */
  shared_store: { timeout: string } | null;
  /** `select`: only where the item sets it; `program`: a `Command`'s program (argv[0]: never its arguments, which may hold anything). */
  items: { path: string; module: string; select?: string; program?: string; public: boolean; policy: ShownPolicy; clients: string[] }[];
  clients: { name: string; items: string[] }[];
  public: string[];
};

/** Durations and sizes as a user writes them; `stale_on` as its list of kinds (`[]`: never stale). */
export type ShownPolicy = Record<Exclude<keyof Policy, "stale_on">, string | null> & { stale_on: string[] };

function formatPolicy(policy: Policy): ShownPolicy {
  const shown = {} as ShownPolicy;
  for (const key of Object.keys(POLICY_FIELDS) as (keyof Policy)[]) {
    if (key === "stale_on") {
      shown.stale_on = [...policy.stale_on];
      continue;
    }
    const value = policy[key];
    // A secret (a proxy's URL may hold credentials): that there is one is all a summary says.
    const shape = POLICY_FIELDS[key].shape;
    if (shape.type === "string" && shape.secret) shown[key] = value === null ? null : "set";
    else shown[key] = value === null ? null : shape.type === "size" ? formatSize(value as number) : formatDuration(value as number);
  }
  return shown;
}

function selectOf(item: Item): { select?: string } {
  // A pointer given by a secret reference shows as `[secret]`, as the program does.
  const { select } = item.parameters as { select?: string | Secret };
  return select === undefined ? {} : { select: String(select) };
}

/** `store`: the store's file, as the store names it. */
export function summarize(config: Config, store: string): Summary {
  const items = [...config.items.values()];
  return {
    file: config.file,
    listen: formatListen(config.listen),
    store,
    log: { ...config.log },
    metrics: config.metrics,
    shared_store: config.shared_store ? { timeout: formatDuration(config.shared_store.timeout) } : null,
    items: items.map((item) => ({
      path: item.path,
      module: item.module,
      ...selectOf(item),
      // A secret reference shows as `[secret]`.
      ...(item.module === "Command" ? { program: String(item.parameters.argv[0]) } : {}),
      public: item.disable_auth,
      policy: formatPolicy(item.policy),
      clients: config.clients.filter((c) => c.items.has(item.path)).map((c) => c.name),
    })),
    clients: config.clients.map((c) => ({ name: c.name, items: [...c.items] })),
    public: items.filter((item) => item.disable_auth).map((item) => item.path),
  };
}
