import { defineCommand } from "citty";
import { buildInfo } from "../version";
import type { Command, Output } from "./run";

export function versionCommand(io: Output): Command {
  return defineCommand({
    meta: { name: "version", description: "Print the version, git commit, build date, target and Bun version (for bug reports)." },
    args: { json: { type: "boolean", description: "As one JSON object" } },
    run({ args }) {
      const info = buildInfo();
      io.out(args.json ? `${JSON.stringify(info)}\n` : `cachish ${info.version} (commit ${info.commit}, built ${info.build_date}, ${info.target}, Bun ${info.bun})\n`);
      return 0;
    },
  }) as Command;
}
