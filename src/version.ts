import pkg from "../package.json" with { type: "json" };

/** Bundled into the binary at build time: the binary never reads package.json at run time. */
export const VERSION: string = pkg.version;

/** Set by scripts/build.ts (`define`); absent when running from source. */
declare const CACHISH_BUILD: { commit: string; date: string; target: string } | undefined;

/** What exactly is running, for a bug report. */
export function buildInfo(): { version: string; commit: string; build_date: string; target: string; bun: string } {
  const build = typeof CACHISH_BUILD === "undefined" ? undefined : CACHISH_BUILD;
  return {
    version: VERSION,
    commit: build?.commit ?? "unknown (not a build)",
    build_date: build?.date ?? "unknown (not a build)",
    target: build?.target ?? `${process.platform}-${process.arch}`,
    bun: Bun.version,
  };
}
