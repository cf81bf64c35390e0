/**
 * The daemon's metrics in Prometheus' text format (SPEC 5.5): requests by item, status and
 * cache outcome; upstream fetches by item and outcome; fetch durations; the age of each stored
 * value; whether each upstream is failing now; log lines dropped for a stalled reader. Labels
 * carry item paths, statuses and kinds, never a value or a token.
 */

type Labels = Record<string, string>;

const escape = (value: string) => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
const labelText = (labels: Labels) => {
  const entries = Object.entries(labels);
  return entries.length ? `{${entries.map(([k, v]) => `${k}="${escape(v)}"`).join(",")}}` : "";
};

class Counter {
  readonly #values = new Map<string, { labels: Labels; value: number }>();
  constructor(readonly name: string, readonly help: string) {}
  inc(labels: Labels, by = 1): void {
    const key = labelText(labels);
    const entry = this.#values.get(key);
    if (entry) entry.value += by;
    else this.#values.set(key, { labels, value: by });
  }
  render(): string[] {
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`, ...[...this.#values.values()].map((e) => `${this.name}${labelText(e.labels)} ${e.value}`)];
  }
}

/** Seconds, for upstream fetches: from a fast local answer to a timeout. */
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

class Histogram {
  readonly #series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(readonly name: string, readonly help: string) {}
  observe(labels: Labels, seconds: number): void {
    const key = labelText(labels);
    let series = this.#series.get(key);
    if (!series) this.#series.set(key, (series = { labels, counts: BUCKETS.map(() => 0), sum: 0, count: 0 }));
    BUCKETS.forEach((bound, i) => {
      if (seconds <= bound) series.counts[i]!++;
    });
    series.sum += seconds;
    series.count++;
  }
  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const s of this.#series.values()) {
      BUCKETS.forEach((bound, i) => lines.push(`${this.name}_bucket${labelText({ ...s.labels, le: String(bound) })} ${s.counts[i]}`));
      lines.push(`${this.name}_bucket${labelText({ ...s.labels, le: "+Inf" })} ${s.count}`);
      lines.push(`${this.name}_sum${labelText(s.labels)} ${s.sum}`, `${this.name}_count${labelText(s.labels)} ${s.count}`);
    }
    return lines;
  }
}

export type ItemState = { path: string; ageSeconds: number | null; failing: boolean };

/** Requests by item, status and outcome: counted on every request, so in nested maps, not label strings. */
class RequestCounter {
  readonly #counts = new Map<string, Map<number, Map<string, number>>>();
  inc(item: string, status: number, cache: string): void {
    let byStatus = this.#counts.get(item);
    if (!byStatus) this.#counts.set(item, (byStatus = new Map()));
    let byCache = byStatus.get(status);
    if (!byCache) byStatus.set(status, (byCache = new Map()));
    byCache.set(cache, (byCache.get(cache) ?? 0) + 1);
  }
  render(): string[] {
    const name = "cachish_requests_total";
    const lines = [`# HELP ${name} Requests for items, by item, HTTP status and cache outcome (fresh, hit, stale, unavailable, or none when no value was asked for).`, `# TYPE ${name} counter`];
    for (const [item, byStatus] of this.#counts) {
      for (const [status, byCache] of byStatus) {
        for (const [cache, count] of byCache) lines.push(`${name}${labelText({ item, status: String(status), cache })} ${count}`);
      }
    }
    return lines;
  }
}

export class Metrics {
  readonly requests = new RequestCounter();
  readonly fetches = new Counter("cachish_upstream_fetches_total", "Upstream fetches by item and outcome (ok, or the kind of failure).");
  readonly notModifieds = new Counter("cachish_upstream_not_modified_total", "Upstream fetches answered 304 Not Modified, by item: the stored value was still the upstream's, and no body came.");
  readonly saves = new Counter("cachish_shared_fetches_saved_total", "Upstream fetches saved by the shared tier: a value of the fleet was fresh enough, or another host fetched it.");
  /** Whether the shared tier answered its last call; undefined without `shared_store`. */
  sharedUp: (() => boolean) | undefined;
  /** Clients waiting for a change of the item's value now (long polls, SPEC 5.8). */
  waitingClients: (path: string) => number = () => 0;
  /** Log lines dropped so far because the reader of standard output was behind (the logger counts them). */
  logLinesDropped: () => number = () => 0;
  readonly fetchSeconds = new Histogram("cachish_upstream_fetch_duration_seconds", "How long upstream fetches took, by item.");

  /** A request for `item` answered with `status` and `cache` outcome. */
  requested(item: string, status: number, cache: string): void {
    this.requests.inc(item, status, cache);
  }

  saved(item: string): void {
    this.saves.inc({ item });
  }

  /** A fetch of `item` the upstream answered 304 (it counts as `ok` among fetches too). */
  notModified(item: string): void {
    this.notModifieds.inc({ item });
  }

  fetched(item: string, outcome: string, seconds: number): void {
    this.fetches.inc({ item, outcome });
    this.fetchSeconds.observe({ item }, seconds);
  }

  /** The text of /metrics; `items` gives the state of each item at the time of the scrape. */
  render(items: ItemState[]): string {
    const gauge = (name: string, help: string, values: [Labels, number][]) => [`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, ...values.map(([l, v]) => `${name}${labelText(l)} ${v}`)];
    return [
      ...this.requests.render(),
      ...this.fetches.render(),
      ...this.notModifieds.render(),
      ...this.fetchSeconds.render(),
      ...gauge(
        "cachish_stored_value_age_seconds",
        "Seconds since the stored value of each item was fetched (items with no stored value are left out).",
        items.filter((i) => i.ageSeconds !== null).map((i) => [{ item: i.path }, i.ageSeconds!]),
      ),
      ...gauge("cachish_upstream_failing", "1 while the last fetch of the item's upstream failed, else 0.", items.map((i) => [{ item: i.path }, i.failing ? 1 : 0])),
      ...gauge("cachish_waiting_clients", "Clients waiting for a change of the item's value now (long polls: If-None-Match with Prefer: wait).", items.map((i) => [{ item: i.path }, this.waitingClients(i.path)])),
      "# HELP cachish_log_lines_dropped_total Log lines dropped because the reader of standard output (the journal, a pipe) was behind.",
      "# TYPE cachish_log_lines_dropped_total counter",
      `cachish_log_lines_dropped_total ${this.logLinesDropped()}`,
      ...(this.sharedUp ? [...gauge("cachish_shared_store_up", "1 while the shared tier (PostgreSQL) answers, else 0.", [[{}, this.sharedUp() ? 1 : 0]]), ...this.saves.render()] : []),
      "",
    ].join("\n");
  }
}
