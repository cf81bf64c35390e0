/**
 * Builds the single executable dist/cachish. `npm run build` takes the defaults chosen in the
 * README ("Building"); the flags exist to measure the alternatives again:
 *   bun scripts/build.ts [--outfile F] [--no-minify] [--no-bytecode] [--no-sourcemap] [--jit-policy N] [--no-smol] [--target T]
 */
import { rm } from "node:fs/promises";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    outfile: { type: "string", default: "dist/cachish" },
    target: { type: "string" },
    minify: { type: "boolean", default: true },
    bytecode: { type: "boolean", default: true },
    sourcemap: { type: "boolean", default: true },
    "jit-policy": { type: "string", default: "100" },
    smol: { type: "boolean", default: true },
  },
  allowNegative: true,
});

/** What `cachish version --json` reports: the commit (with `-dirty` for uncommitted changes) and the day. */
function commit(): string {
  const run = (args: string[]) => Bun.spawnSync(["git", ...args], { cwd: import.meta.dir, stderr: "ignore" });
  const head = run(["rev-parse", "--short=12", "HEAD"]);
  if (head.exitCode !== 0) return "unknown";
  const dirty = run(["status", "--porcelain", "--untracked-files=no"]).stdout.toString().trim() !== "";
  return `${head.stdout.toString().trim()}${dirty ? "-dirty" : ""}`;
}

const build = {
  commit: commit(),
  // SOURCE_DATE_EPOCH, when set, makes the build reproducible.
  date: new Date(process.env.SOURCE_DATE_EPOCH ? Number(process.env.SOURCE_DATE_EPOCH) * 1000 : Date.now()).toISOString(),
  target: values.target ?? `bun-${process.platform}-${process.arch}`,
};

const result = await Bun.build({
  // The worker that makes values from upstream bodies is an entrypoint of its own (src/backends/value.ts).
  entrypoints: ["src/cli/main.ts", "src/backends/value-worker.ts"],
  // Top-level await in main.ts needs ESM, and bytecode needs the format said explicitly.
  format: "esm",
  define: { CACHISH_BUILD: JSON.stringify(build) },
  // keepNames: a stack trace in a bug report should name our functions, not `e`.
  minify: values.minify ? { whitespace: true, syntax: true, identifiers: true, keepNames: true } : false,
  bytecode: values.bytecode,
  // Embedded in the binary, so a stack trace names src/ files and lines without shipping them.
  // The .map file written beside it is not needed and is removed below.
  sourcemap: values.sourcemap ? "linked" : "none",
  compile: {
    outfile: values.outfile,
    ...(values.target ? { target: values.target as Bun.Build.CompileTarget } : {}),
    // A daemon must not change behaviour with the folder it is started from.
    autoloadDotenv: false,
    autoloadBunfig: false,
    autoloadTsconfig: false,
    autoloadPackageJson: false,
    // Start-up code (config parsing, opening the store) runs once: compiling it costs more than
    // interpreting it. 100 times the usual tier-up thresholds until `serve` is ready (it calls
    // Bun.unsafe.setJITPolicy(1) then): measured 8-12 ms sooner to the first answer and 4 MB less.
    jitPolicy: Number(values["jit-policy"]),
    // Bun's --smol (a smaller heap, collected more often): 2-5 MB less, idle and under load,
    // for no measurable CPU per request (14.2-14.4 us a hit either way, measured with wrk).
    ...(values.smol ? { execArgv: ["--smol"] } : {}),
  },
});

if (!result.success) {
  for (const log of result.logs) console.error(log);
  process.exit(1);
}
// The source maps are embedded; the files written beside the binary are not needed.
for (const output of result.outputs) if (output.path.endsWith(".map")) await rm(output.path, { force: true });
console.log(`built ${values.outfile}`);
