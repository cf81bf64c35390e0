import { defineCommand } from "citty";
import { fetchItem } from "../backends";
import { asFailure } from "../backends/failure";
import type { Config } from "../config/types";
import { createLogger } from "../log";
import { SharedTier } from "../store/shared";
import { storeFile } from "../store/sqlite";
import { type LoadResult, loadConfig } from "../config/load";
import { locateConfig } from "../config/locate";
import { formatProblem, type Problem } from "../config/problems";
import { type Summary, summarize } from "../config/summary";
import { UsageError } from "./errors";
import type { Command, Output } from "./run";

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

function table(rows: string[][], indent = "  "): string {
  const widths = rows.reduce<number[]>((w, row) => row.map((cell, i) => Math.max(w[i] ?? 0, cell.length)), []);
  return rows.map((row) => indent + row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ").trimEnd()).join("\n");
}

function describePolicy(policy: Summary["items"][number]["policy"]): string {
  // Those that every item has are always shown; the rest only where they are set.
  const always = ["timeout", "ttl", "stale_on", "max_backoff"] as const;
  const shown = Object.entries(policy).filter(([key, value]) => always.includes(key as never) || (value !== null && !(key === "max_body" && value === "16MiB")));
  return shown.map(([key, value]) => `${key} ${Array.isArray(value) ? staleOn(value) : value}`).join(", ");
}

/** The module (a command's program), and where in its answer the value is: a pointer quoted as JSON, so that `""` (the whole answer) shows. */
function describeSource(item: Summary["items"][number]): string {
  const source = item.program === undefined ? item.module : `${item.module} ${item.program}`;
  return item.select === undefined ? source : `${source} select ${JSON.stringify(item.select)}`;
}

/** `any`, `never` (every failure answers 503), or the kinds in brackets, apart from the commas between keys. */
const staleOn = (kinds: string[]) => (kinds.length === 0 ? "never" : kinds.length === 1 && kinds[0] === "any" ? "any" : `[${kinds.join(", ")}]`);

function renderSummary(s: Summary): string {
  const lines = [
    table([
      ["listen", s.listen],
      ["store", s.store],
      ["log", `${s.log.format}, level ${s.log.level}`],
      ["metrics", s.metrics ? "served at /metrics" : "off"],
      ["shared", s.shared_store ? `PostgreSQL, timeout ${s.shared_store.timeout} (url and key not shown)` : "none"],
    ], ""),
    "",
    "items:",
    s.items.length ? table(s.items.map((i) => [i.path, describeSource(i), describePolicy(i.policy) + (i.public ? "; public" : "")])) : "  (none)",
  ];
  if (s.clients.length) {
    lines.push("", "clients:", table(s.clients.map((c) => [c.name, c.items.length ? c.items.join(", ") : "(no item)"])));
  }
  lines.push("", "readable without a token:", s.public.length ? table(s.public.map((p) => [p])) : "  (none)");
  return lines.join("\n");
}

export type CheckReport = {
  file: string;
  valid: boolean;
  strict: boolean;
  errors: number;
  warnings: number;
  /** Under --strict, every warning has become an error. */
  problems: Problem[];
  summary: Summary | null;
};

export function report(result: LoadResult, strict: boolean): CheckReport {
  const errors = result.problems.filter((p) => p.severity === "error").length;
  const warnings = result.problems.length - errors;
  const valid = errors === 0 && !(strict && warnings > 0);
  return {
    file: result.file,
    valid,
    strict,
    errors,
    warnings,
    problems: result.problems.map((p) => (strict ? { ...p, severity: "error" } : p)),
    summary: valid && result.config ? summarize(result.config, storeFile(result.config.cache_dir)) : null,
  };
}

/** The --json form: positions flattened so that a `jq` line can read them. */
function toJson(checked: CheckReport, probes?: Probe[]): string {
  const problems = checked.problems.map((p) => ({ severity: p.severity, line: p.at?.line ?? null, column: p.at?.column ?? null, message: p.message }));
  return `${JSON.stringify({ ...checked, problems, ...(probes ? { probes } : {}) }, null, 2)}\n`;
}

export type Probe = { path: string; ok: boolean; ms: number; failure?: string; status?: number; reason?: string };

/** Fetches every item once, all at a time, each bounded by its timeout; no value is kept or shown. */
export async function probe(config: Config): Promise<Probe[]> {
  const shared = config.shared_store ? probeShared(config) : undefined;
  const items = Promise.all(
    [...config.items.values()].map(async (item) => {
      const started = performance.now();
      try {
        await fetchItem(item, Date.now());
        return { path: item.path, ok: true, ms: Math.round(performance.now() - started) };
      } catch (error) {
        const failure = asFailure(error);
        return { path: item.path, ok: false, ms: Math.round(performance.now() - started), failure: failure.kind, status: failure.status, reason: failure.message };
      }
    }),
  );
  return [...(shared ? [await shared] : []), ...(await items)];
}

/** Whether the shared tier's database answers, and whether its schema is there (it is created at the first start). */
async function probeShared(config: Config): Promise<Probe> {
  const started = performance.now();
  const tier = new SharedTier(config.shared_store!, createLogger({ format: "logfmt", level: "error" }, () => {}));
  const answer = await tier.probe();
  await tier.close();
  const ms = Math.round(performance.now() - started);
  if (!answer.ok) return { path: "shared_store", ok: false, ms, failure: "connect", reason: answer.reason };
  return { path: "shared_store", ok: true, ms, ...(answer.schema === null ? { reason: "reachable; the schema is created at the first start" } : { reason: `schema version ${answer.schema}` }) };
}

function renderProbes(probes: Probe[]): string {
  const width = Math.max(...probes.map((p) => p.path.length));
  const lines = probes.map((p) =>
    p.ok ? `  probe ${p.path.padEnd(width)}  ok ${p.ms} ms${p.reason ? ` (${p.reason})` : ""}` : `  probe ${p.path.padEnd(width)}  failed (${p.failure}) after ${p.ms} ms: ${p.reason}`,
  );
  return `probes:\n${lines.join("\n")}`;
}

export function checkConfigCommand(io: Output): Command {
  return {
    ...defineCommand({
      meta: { name: "check-config", description: "Validate a configuration file and explain what it serves to whom." },
      args: {
        file: { type: "positional", required: false, description: "The file to check (default: --config, $CACHISH_CONFIG_FILE, /etc/cachish.yml)" },
        config: { type: "string", valueHint: "FILE", description: "The file to check, as for `serve`" },
        strict: { type: "boolean", description: "Treat every warning as an error (for a CI step that guards the file)" },
        json: { type: "boolean", description: "Print the problems and the summary as one JSON document" },
        probe: { type: "boolean", description: "Also fetch every item once and report ok or the failure with its time (no value is printed)" },
      },
      async run({ args }) {
        if (args.file && args.config && args.file !== args.config) {
          throw new UsageError("give the file either as FILE or as --config FILE, not both");
        }
        const file = locateConfig(args.file || args.config);
        const loaded = loadConfig(file);
        const checked = report(loaded, Boolean(args.strict));
        const probes = args.probe && checked.valid && loaded.config ? await probe(loaded.config) : undefined;
        const failedProbes = probes?.filter((p) => !p.ok).length ?? 0;
        const code = !checked.valid || failedProbes > 0 ? 1 : 0;
        if (args.json) {
          io.out(toJson(checked, probes));
          return code;
        }
        for (const problem of checked.problems) io.err(`${formatProblem(file, problem)}\n`);
        const counts = [checked.errors && plural(checked.errors, "error"), checked.warnings && plural(checked.warnings, "warning")].filter(Boolean).join(", ");
        if (!checked.valid) {
          io.err(`${file}: invalid (${counts}${checked.errors === 0 ? ", refused by --strict" : ""})\n`);
          return 1;
        }
        const s = checked.summary!;
        io.out(`${file}: valid, ${plural(s.items.length, "item")}, ${plural(s.clients.length, "client")}${counts ? ` (${counts})` : ""}\n\n${renderSummary(s)}\n`);
        if (probes) {
          io.out(`\n${renderProbes(probes)}\n`);
          if (failedProbes) io.err(`${file}: ${plural(failedProbes, "probe")} failed\n`);
        }
        return code;
      },
    }),
    footer: [
      "EXIT CODES",
      "",
      "  0  the file is valid (warnings may have been printed)",
      "  1  the file is invalid, cannot be read, has warnings under --strict, or a --probe failed",
      "  2  usage error",
    ].join("\n"),
  };
}
