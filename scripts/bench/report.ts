/** The bench's table: one row per workload and metric, a column per server, and cachish's ratio to each other server. */

export type Row = { workload: string; metric: string; better: "higher" | "lower"; cachish: number; nginx?: number; floor?: number };

const fmt = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? "-" : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

/** Above 1, cachish does better: the other's time, count or size over cachish's, or cachish's rate over the other's. */
function ratio(row: Row, other: number | undefined): string {
  if (other === undefined || other === 0 || Number.isNaN(other)) return "-";
  return `${(row.better === "higher" ? row.cachish / other : other / Math.max(row.cachish, 1e-9)).toFixed(2)}x`;
}

export function table(rows: Row[], vs: { nginx: boolean; floor: boolean }): string {
  const header = ["workload", "metric", "cachish", ...(vs.nginx ? ["nginx", "cachish ahead by"] : []), ...(vs.floor ? ["bare Bun.serve", "cachish / bare"] : [])];
  const cells = [
    header,
    ...rows.map((r) => [
      r.workload,
      r.metric,
      fmt(r.cachish),
      ...(vs.nginx ? [fmt(r.nginx), ratio(r, r.nginx)] : []),
      ...(vs.floor ? [fmt(r.floor), ratio(r, r.floor)] : []),
    ]),
  ];
  const widths = header.map((_, i) => Math.max(...cells.map((row) => row[i]!.length)));
  const line = (row: string[]) => `| ${row.map((cell, i) => cell.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(cells[0]!), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...cells.slice(1).map(line)].join("\n");
}
