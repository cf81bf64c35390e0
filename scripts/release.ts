/**
 * `npm run release`: the single executable for every supported platform, in dist/release/,
 * each named cachish-<version>-<target>, with SHA256SUMS beside them (`sha256sum -c SHA256SUMS`
 * checks a download). Bun fetches the runtime of each other platform from the npm registry.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";

const ROOT = join(import.meta.dir, "..");
const OUT = join(ROOT, "dist/release");
export const TARGETS = ["linux-x64", "linux-x64-baseline", "linux-arm64", "darwin-x64", "darwin-arm64"] as const;
const version = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version as string;

rmSync(OUT, { recursive: true, force: true });
mkdirSync(OUT, { recursive: true });
const sums: string[] = [];
for (const target of TARGETS) {
  const outfile = join(OUT, `cachish-${version}-${target}`);
  const build = Bun.spawnSync([process.execPath, join(import.meta.dir, "build.ts"), "--target", `bun-${target}`, "--outfile", outfile], { stdout: "inherit", stderr: "inherit" });
  if (build.exitCode !== 0) throw new Error(`the build for ${target} failed`);
  const digest = new Bun.CryptoHasher("sha256").update(await Bun.file(outfile).arrayBuffer()).digest("hex");
  sums.push(`${digest}  ${basename(outfile)}`);
}
writeFileSync(join(OUT, "SHA256SUMS"), `${sums.join("\n")}\n`);
console.log(`wrote ${TARGETS.length} executables and SHA256SUMS to ${OUT}`);
